// How a worker turns a task's payload into the argv of a process: GNU parallel's and xargs'
// rules, with no shell unless the user asked for one.
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace taskpipe {

// `worker -- COMMAND ARG...`: every "{}" inside an argument is replaced by the payload; when no
// argument contains "{}" the payload is appended as the last argument.
struct CommandHandler {
    std::vector<std::string> argv;
};

// `worker --shell SCRIPT`: /bin/sh -c SCRIPT sh PAYLOAD, so the payload is $1 and never part
// of the script's text.
struct ShellHandler {
    std::string script;
};

// `worker --builtin NAME`: an in-process handler (builtin.hpp).
struct BuiltinHandler {
    std::string name;
};

using HandlerSpec = std::variant<CommandHandler, ShellHandler, BuiltinHandler>;

// The argv to execute for `payload`. Throws std::invalid_argument when the payload cannot be
// an argument (it holds a NUL byte). Not for BuiltinHandler.
std::vector<std::string> build_argv(const CommandHandler& handler, std::string_view payload);
std::vector<std::string> build_argv(const ShellHandler& handler, std::string_view payload);

}  // namespace taskpipe
