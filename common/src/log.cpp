#include "taskpipe/log.hpp"

#include <unistd.h>

#include <string>

namespace taskpipe {

namespace {

std::string g_program = "taskpipe";

void write_line(std::string_view level, std::string_view message) {
    std::string line;
    line.reserve(g_program.size() + level.size() + message.size() + 4);
    line.append(g_program).append(": ").append(level).append(message).push_back('\n');
    std::string_view rest = line;
    while (!rest.empty()) {
        const ssize_t n = ::write(STDERR_FILENO, rest.data(), rest.size());
        if (n <= 0) return;
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
}

}  // namespace

void set_program_name(std::string_view name) { g_program = name; }
std::string_view program_name() { return g_program; }

void log_info(std::string_view message) { write_line("", message); }
void log_warning(std::string_view message) { write_line("warning: ", message); }
void log_error(std::string_view message) { write_line("error: ", message); }

}  // namespace taskpipe
