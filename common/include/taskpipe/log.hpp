// Diagnostics on stderr, one line each: "program: message" or "program: warning: message".
// stdout is never written here; it carries results only. Thread-safety: each call writes its
// line with a single write(2).
#pragma once

#include <string_view>

namespace taskpipe {

void set_program_name(std::string_view name);
std::string_view program_name();

void log_info(std::string_view message);
void log_warning(std::string_view message);
void log_error(std::string_view message);

}  // namespace taskpipe
