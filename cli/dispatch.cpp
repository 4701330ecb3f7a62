#include "dispatch.hpp"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "taskpipe/sockets.hpp"

namespace taskpipe {

namespace {

constexpr std::array kSubcommands{
    Subcommand{"run", "run a batch on this host (and others with -S) in one command"},
    Subcommand{"ventilator", "read tasks and send them to the workers"},
    Subcommand{"worker", "run tasks and send their results to the sink"},
    Subcommand{"sink", "receive the results and write each task's output once"},
    Subcommand{"submit", "submit tasks to a service (ventilator --serve), or ask about them"},
    Subcommand{"hosts", "keep a worker running on each of many hosts, over ssh"},
    Subcommand{"keygen", "write a CURVE key pair, for --curve-key"},
    Subcommand{"help", "show a command's options: taskpipe help COMMAND"},
};

bool is_executable_file(const std::string& path) {
    std::error_code error;
    return std::filesystem::is_regular_file(path, error) && access(path.c_str(), X_OK) == 0;
}

}  // namespace

std::span<const Subcommand> subcommands() { return kSubcommands; }

const Subcommand* find_subcommand(std::string_view name) {
    for (const Subcommand& s : kSubcommands) {
        if (s.name == name) return &s;
    }
    return nullptr;
}

std::string general_help() {
    std::string text =
        "Usage: taskpipe COMMAND [OPTIONS] [ARGS...]\n"
        "\n"
        "A brokerless task pipeline on ZeroMQ: a ventilator reads tasks, workers on any number\n"
        "of hosts run them, and a sink writes each task's output exactly once.\n"
        "\n"
        "  seq 1 10 | taskpipe run -j 4 --shell 'echo \"$1 squared is $(($1 * $1))\"'\n"
        "\n"
        "Commands:\n";
    for (const Subcommand& s : kSubcommands) {
        text += "  " + std::string(s.name) + std::string(12 - s.name.size(), ' ') +
                std::string(s.summary) + "\n";
    }
    text +=
        "\n"
        "Options:\n"
        "  -h [ --help ]         print this help and exit\n"
        "  -V [ --version ]      print the version and exit\n"
        "\n"
        "'taskpipe COMMAND --help' and 'taskpipe help COMMAND' list a command's options;\n"
        "'man taskpipe-COMMAND' is its manual. Exit status: 0 every task ok, 1 some tasks\n"
        "failed, 2 usage or start-up error, 3 interrupted.\n";
    return text;
}

std::string own_directory() {
    std::error_code error;
    const auto exe = std::filesystem::read_symlink("/proc/self/exe", error);
    return error ? std::string() : exe.parent_path().string();
}

std::optional<std::string> find_program(std::string_view program, const std::string& directory,
                                        std::string_view path) {
    if (!directory.empty()) {
        std::string candidate = directory + "/" + std::string(program);
        if (is_executable_file(candidate)) return candidate;
    }
    while (!path.empty()) {
        const auto colon = path.find(':');
        std::string dir(path.substr(0, colon));
        path = colon == std::string_view::npos ? std::string_view() : path.substr(colon + 1);
        std::string candidate = (dir.empty() ? "." : dir) + "/" + std::string(program);
        if (is_executable_file(candidate)) return candidate;
    }
    return std::nullopt;
}

std::string program_path(std::string_view program) {
    const char* path = std::getenv("PATH");
    const std::string directory = own_directory();
    if (auto found = find_program(program, directory, path ? path : "")) return *found;
    throw StartupError("cannot find the program " + std::string(program) + " (neither in " +
                       (directory.empty() ? "this program's directory" : directory) +
                       " nor in PATH)");
}

void exec_program(const std::string& path, const std::string& program,
                  std::span<const char* const> args) {
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(program.c_str()));
    for (const char* arg : args) argv.push_back(const_cast<char*>(arg));
    argv.push_back(nullptr);
    execv(path.c_str(), argv.data());
    throw StartupError("cannot run " + path + ": " + std::strerror(errno));
}

}  // namespace taskpipe
