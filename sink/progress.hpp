// The sink's progress report while a batch runs.
//
// On a terminal: one line at the bottom of stderr, redrawn about five times a second and cut to
// the terminal's width: done/total (the total once the ventilator's input has ended, "N+" read
// so far before that), failed, rate, ETA and live workers. Elsewhere: the same text as a plain
// log line every `interval`. Off: nothing. Not thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <string>

#include "stats.hpp"

namespace taskpipe {

// The progress text for `stats`, at most `width` columns (a bar is added when there is room and
// `bar` is set). `rate` is recent tasks per second, or negative when not known yet.
std::string progress_text(const StatsSnapshot& stats, double rate, std::size_t width, bool bar);

class ProgressReport {
  public:
    using Clock = std::chrono::steady_clock;
    enum class Mode { off, terminal, log };

    // `terminal` only when stderr is one; see choose().
    ProgressReport(Mode mode, std::chrono::milliseconds interval);
    // off when quiet, terminal when stderr is a terminal, log otherwise.
    static Mode choose(bool quiet);

    // Called from the sink's loop; shows progress when it is due.
    void update(const Stats& stats, Clock::time_point now);
    // Removes the terminal line (before the summary).
    void finish();

  private:
    double rate(Clock::time_point now, std::uint64_t finished);

    Mode mode_;
    std::chrono::milliseconds interval_;
    Clock::time_point next_;
    struct Sample {
        Clock::time_point when;
        std::uint64_t finished;
    };
    std::deque<Sample> samples_;  // the last few seconds, for the recent rate
};

}  // namespace taskpipe
