#include "taskpipe/log.hpp"

#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>

#include "taskpipe/wall_clock.hpp"

namespace taskpipe {

namespace {

constexpr std::string_view kClearLine = "\r\x1b[K";
constexpr std::array<std::string_view, 4> kLevelNames = {"error", "warning", "info", "debug"};

std::mutex g_mutex;  // guards the two strings and keeps lines whole
std::string g_program = "taskpipe";
std::string g_status;
std::atomic<LogLevel> g_level{LogLevel::info};

void write_all(std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(STDERR_FILENO, bytes.data(), bytes.size());
        if (n <= 0) return;  // nowhere to report a broken stderr
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

}  // namespace

std::string format_utc(std::uint64_t micros) {
    const auto seconds = static_cast<time_t>(micros / 1'000'000);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char text[64];
    std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", utc.tm_year + 1900,
                  utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                  static_cast<unsigned>(micros / 1000 % 1000));
    return text;
}

void set_program_name(std::string_view name) {
    std::lock_guard lock(g_mutex);
    g_program = name;
}

std::string program_name() {
    std::lock_guard lock(g_mutex);
    return g_program;
}

void set_log_level(LogLevel level) { g_level = level; }
bool log_enabled(LogLevel level) { return level <= g_level.load(); }

std::optional<LogLevel> log_level_from_string(std::string_view text) {
    for (std::size_t i = 0; i < kLevelNames.size(); ++i) {
        if (text == kLevelNames[i]) return static_cast<LogLevel>(i);
    }
    return std::nullopt;
}

void log(LogLevel level, std::string_view message) {
    if (!log_enabled(level)) return;
    const std::string time = format_utc(unix_micros());
    const std::string_view name = kLevelNames[static_cast<std::size_t>(level)];
    std::lock_guard lock(g_mutex);
    std::string line;
    line.reserve(kClearLine.size() + time.size() + g_program.size() + name.size() + message.size() +
                 g_status.size() + 5);
    if (!g_status.empty()) line.append(kClearLine);
    line.append(time).append(" ").append(g_program).append(" ").append(name).append(": ");
    line.append(message).push_back('\n');
    line.append(g_status);
    write_all(line);
}

void set_status_line(std::string_view status) {
    std::lock_guard lock(g_mutex);
    if (status.empty() && g_status.empty()) return;
    g_status = status;
    std::string bytes(kClearLine);
    bytes.append(status);
    write_all(bytes);
}

}  // namespace taskpipe
