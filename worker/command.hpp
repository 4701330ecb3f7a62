// How a worker turns a task's payload into the argv of a process: GNU parallel's replacement
// strings and xargs' rules, with no shell unless the user asked for one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace taskpipe {

// `worker -- COMMAND ARG...`: each replacement string inside an argument is replaced, as GNU
// parallel defines them (man parallel), with P the payload and N the task's id:
//
//   {}    P                                      dir/sub/photo.jpg
//   {.}   P without its extension                dir/sub/photo
//   {/}   P without its directory part           photo.jpg
//   {//}  P's directory, as dirname(1) gives it  dir/sub
//   {/.}  {/} without its extension              photo
//   {#}   N, the task's id (its input line)      7
//
// The extension is the last '.' after the last '/' and what follows it, so ".bashrc" has no
// name left ("{.}" is empty) and "dir.d/file" none to lose, as in parallel. When no argument
// holds a replacement string the payload is appended as the last argument, as xargs does.
//
// `file_names` (worker --file-names) is the guard against option injection: an argument that
// would start with a '-' coming from the payload gets "./" in front, so that a payload named
// "-rf" reaches `rm` as the file "./-rf". Meant for payloads that are relative file names.
struct CommandHandler {
    std::vector<std::string> argv;
    bool file_names = false;
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

// The argv to execute for the task `task_id` with `payload`. Throws std::invalid_argument when
// the payload cannot be an argument (it holds a NUL byte). Not for BuiltinHandler.
std::vector<std::string> build_argv(const CommandHandler& handler, std::string_view payload,
                                    std::uint64_t task_id);
std::vector<std::string> build_argv(const ShellHandler& handler, std::string_view payload,
                                    std::uint64_t task_id);

// The parts of a payload that the replacement strings stand for (see CommandHandler).
std::string without_extension(std::string_view path);  // {.}
std::string base_name(std::string_view path);          // {/}
std::string dir_name(std::string_view path);           // {//}

// A warning when `handler` hands a replacement string to an interpreter as program text
// (`sh -c 'echo {}'`, `python3 -c 'print("{}")'`): a payload such as "; rm -rf ~" then runs
// as code. Nothing when the command is not such an interpreter call.
std::optional<std::string> payload_as_code_warning(const CommandHandler& handler);

}  // namespace taskpipe
