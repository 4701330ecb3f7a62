// taskpipe: the one command. `taskpipe run` is built in; `taskpipe COMMAND` runs the program
// taskpipe-COMMAND (dispatch.hpp). See README.md and taskpipe(1).
#include <iostream>
#include <span>
#include <string>

#include "dispatch.hpp"
#include "run.hpp"
#include "taskpipe/log.hpp"
#include "taskpipe/program.hpp"

namespace {

// `taskpipe help COMMAND` shows what `taskpipe COMMAND --help` shows.
int dispatch(std::span<const char* const> args) {
    using namespace taskpipe;
    const std::string command = args.empty() ? "" : args[0];
    if (command.empty()) {
        std::cerr << general_help();
        return kExitUsage;
    }
    if (command == "--help" || command == "-h") {
        std::cout << general_help();
        return kExitOk;
    }
    if (command == "--version" || command == "-V") {
        std::cout << "taskpipe " TASKPIPE_VERSION "\n";
        return kExitOk;
    }
    if (command == "help") {
        if (args.size() < 2) {
            std::cout << general_help();
            return kExitOk;
        }
        const char* const help[] = {args[1], "--help"};
        return dispatch(help);
    }
    if (!find_subcommand(command) || command == "help") {
        throw UsageError("'" + command + "' is not a taskpipe command");
    }
    if (command == "run") {
        set_program_name("run");
        return run_command(static_cast<int>(args.size()), args.data());
    }
    const std::string program = "taskpipe-" + command;
    exec_program(program_path(program), program, args.subspan(1));
}

}  // namespace

int main(int argc, char* argv[]) {
    return taskpipe::run_program("taskpipe", [&] {
        return dispatch(std::span<const char* const>(argv + 1, static_cast<std::size_t>(argc - 1)));
    });
}
