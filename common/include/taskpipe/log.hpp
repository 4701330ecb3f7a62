// Diagnostics on stderr, one line each, in one form for every program:
//
//     2026-11-24T10:15:02.345Z sink warning: task 17 failed (exit code 3)
//
// that is the time (UTC), the program, the level and the message. Lines below the level set
// with set_log_level() are not written. stdout is never written here; it carries results only.
//
// On a terminal a program may keep a status line (the sink's progress) at the bottom: log lines
// are written above it and it is drawn again after each.
// Thread-safety: every function may be called from any thread; each line is written whole.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace taskpipe {

enum class LogLevel { error, warning, info, debug };

void set_program_name(std::string_view name);
std::string program_name();

void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);
// "error", "warning", "info" or "debug"; nothing for any other text.
std::optional<LogLevel> log_level_from_string(std::string_view text);

void log(LogLevel level, std::string_view message);
inline void log_error(std::string_view message) { log(LogLevel::error, message); }
inline void log_warning(std::string_view message) { log(LogLevel::warning, message); }
inline void log_info(std::string_view message) { log(LogLevel::info, message); }
inline void log_debug(std::string_view message) { log(LogLevel::debug, message); }

// Shows `line` (no newline) at the bottom of stderr, replacing the previous status line; an
// empty line removes it. Only for a stderr that is a terminal: it draws with "\r" and ESC[K.
void set_status_line(std::string_view line);

}  // namespace taskpipe
