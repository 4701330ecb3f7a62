#include "command.hpp"

#include <stdexcept>

namespace taskpipe {

namespace {

constexpr std::string_view kPlaceholder = "{}";

void check_payload(std::string_view payload) {
    if (payload.find('\0') != std::string_view::npos) {
        throw std::invalid_argument("the payload holds a NUL byte, which no argument can hold");
    }
}

std::string substitute(std::string_view arg, std::string_view payload) {
    std::string out;
    std::size_t from = 0;
    for (std::size_t at; (at = arg.find(kPlaceholder, from)) != std::string_view::npos;) {
        out.append(arg, from, at - from).append(payload);
        from = at + kPlaceholder.size();
    }
    out.append(arg, from);
    return out;
}

}  // namespace

std::vector<std::string> build_argv(const CommandHandler& handler, std::string_view payload) {
    check_payload(payload);
    std::vector<std::string> argv;
    argv.reserve(handler.argv.size() + 1);
    bool substituted = false;
    for (const std::string& arg : handler.argv) {
        if (arg.find(kPlaceholder) == std::string::npos) {
            argv.push_back(arg);
        } else {
            argv.push_back(substitute(arg, payload));
            substituted = true;
        }
    }
    if (!substituted) argv.emplace_back(payload);
    return argv;
}

std::vector<std::string> build_argv(const ShellHandler& handler, std::string_view payload) {
    check_payload(payload);
    return {"/bin/sh", "-c", handler.script, "sh", std::string(payload)};
}

}  // namespace taskpipe
