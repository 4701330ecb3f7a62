#include "progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "taskpipe/log.hpp"

namespace taskpipe {

namespace {

constexpr auto kTerminalInterval = std::chrono::milliseconds(200);
constexpr auto kRateWindow = std::chrono::seconds(5);
constexpr std::size_t kDefaultWidth = 80;
constexpr std::size_t kBarMinWidth = 100;  // below this the line has no room for a bar

std::size_t terminal_width() {
    winsize size{};
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
    return kDefaultWidth;
}

std::string duration_text(double seconds) {
    const auto s = static_cast<long long>(std::llround(seconds));
    char text[32];
    if (s >= 3600) {
        std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
    } else {
        std::snprintf(text, sizeof text, "%lld:%02lld", s / 60, s % 60);
    }
    return text;
}

std::string rate_text(double rate) {
    char text[32];
    std::snprintf(text, sizeof text, rate >= 100 ? "%.0f/s" : "%.1f/s", rate);
    return text;
}

}  // namespace

// A service never ends: what it has done, what waits, and how fast it goes.
std::vector<std::string> service_parts(const StatsSnapshot& s, double rate) {
    std::vector<std::string> parts = {std::to_string(s.done()) + " done"};
    if (const std::uint64_t failed = s.unsuccessful(); failed > 0) {
        parts.push_back(std::to_string(failed) + " failed");
    }
    parts.push_back(std::to_string(s.queued) + " queued");
    parts.push_back(std::to_string(s.in_flight) + " in flight");
    if (s.delayed > 0) parts.push_back(std::to_string(s.delayed) + " delayed");
    parts.push_back(rate >= 0 ? rate_text(rate) : "-/s");
    const std::size_t live = s.live_workers();
    parts.push_back(std::to_string(live) + (live == 1 ? " worker" : " workers"));
    return parts;
}

std::string progress_text(const StatsSnapshot& s, double rate, std::size_t width, bool bar) {
    if (s.service) {
        const std::vector<std::string> parts = service_parts(s, rate);
        std::string text = parts.front();
        for (std::size_t i = 1; i < parts.size() && text.size() + 2 + parts[i].size() <= width;
             ++i) {
            text += ", " + parts[i];
        }
        if (text.size() > width) text.resize(width);
        return text;
    }
    const std::uint64_t done = s.done();
    // Until the ventilator's input has ended, the size of an input file stands in for the total.
    // 0: not known yet.
    const std::uint64_t total = s.total.value_or(s.expected);
    const bool known = s.total || s.expected > 0;
    // The parts, most important first: a narrow terminal drops whole parts from the end.
    std::vector<std::string> parts;
    std::string count = std::to_string(done) + "/";
    count += known ? std::to_string(total) : std::to_string(std::max(s.read, done)) + "+";
    if (total > 0) count += " (" + std::to_string(std::min(done, total) * 100 / total) + "%)";
    parts.push_back(count + " done");
    if (const std::uint64_t failed = s.unsuccessful(); failed > 0) {
        parts.push_back(std::to_string(failed) + " failed");
    }
    parts.push_back(
        known && rate > 0
            ? "ETA " + duration_text(static_cast<double>(total - std::min(done, total)) / rate)
            : "ETA -");
    parts.push_back(rate >= 0 ? rate_text(rate) : "-/s");
    const std::size_t live = s.live_workers();
    parts.push_back(std::to_string(live) + (live == 1 ? " worker" : " workers"));

    std::string text = parts.front();
    for (std::size_t i = 1; i < parts.size() && text.size() + 2 + parts[i].size() <= width; ++i) {
        text += ", " + parts[i];
    }
    if (bar && total > 0 && width >= kBarMinWidth && text.size() + 14 <= width) {
        const std::size_t cells = std::min<std::size_t>(40, width - text.size() - 4);
        const auto filled = static_cast<std::size_t>(std::min(done, total) * cells / total);
        text = "[" + std::string(filled, '#') + std::string(cells - filled, '.') + "] " + text;
    }
    if (text.size() > width) text.resize(width);
    return text;
}

ProgressReport::ProgressReport(Mode mode, std::chrono::milliseconds interval)
    : mode_(mode),
      interval_(mode == Mode::terminal ? kTerminalInterval : interval),
      next_(Clock::now() + interval_) {}

ProgressReport::Mode ProgressReport::choose(bool quiet) {
    if (quiet) return Mode::off;
    return isatty(STDERR_FILENO) ? Mode::terminal : Mode::log;
}

double ProgressReport::rate(Clock::time_point now, std::uint64_t finished) {
    samples_.push_back({now, finished});
    while (samples_.size() > 2 && now - samples_[1].when >= kRateWindow) samples_.pop_front();
    const Sample& oldest = samples_.front();
    const double seconds = std::chrono::duration<double>(now - oldest.when).count();
    if (seconds < 0.5) return -1;
    return static_cast<double>(finished - oldest.finished) / seconds;
}

void ProgressReport::update(const Stats& stats, Clock::time_point now) {
    if (mode_ == Mode::off || now < next_) return;
    next_ = now + interval_;
    const StatsSnapshot snapshot = stats.snapshot();
    const double recent = rate(now, snapshot.finished());
    if (mode_ == Mode::terminal) {
        // One column short of the width: writing the last column makes some terminals wrap.
        set_status_line(progress_text(snapshot, recent, terminal_width() - 1, true));
    } else {
        log_info("progress: " + progress_text(snapshot, recent, 1000, false));
    }
}

void ProgressReport::finish() {
    if (mode_ == Mode::terminal) set_status_line("");
    mode_ = Mode::off;
}

}  // namespace taskpipe
