// `taskpipe COMMAND ...`, git-style: `run` is built in, every other command is the program
// taskpipe-COMMAND, looked up beside this executable (the install's bin directory, or build/bin)
// and then in PATH, and executed in place of this process.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace taskpipe {

struct Subcommand {
    std::string_view name;
    std::string_view summary;
};

// Every command, in the order `taskpipe --help` lists them.
std::span<const Subcommand> subcommands();
const Subcommand* find_subcommand(std::string_view name);

// `taskpipe --help`.
std::string general_help();

// The directory holding this executable (from /proc/self/exe); empty if unknown.
std::string own_directory();

// The path of `program`: `directory`/`program` if executable there, else the first match in
// the colon-separated `path` list; nothing if neither has it.
std::optional<std::string> find_program(std::string_view program, const std::string& directory,
                                        std::string_view path);

// find_program with this executable's directory and $PATH; throws StartupError naming what is
// missing.
std::string program_path(std::string_view program);

// Replaces this process with `path`, argv[0] `program`, and the given arguments; throws
// StartupError if that fails.
[[noreturn]] void exec_program(const std::string& path, const std::string& program,
                               std::span<const char* const> args);

}  // namespace taskpipe
