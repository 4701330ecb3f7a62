// taskpipe, the one command (taskpipe(1)): "`taskpipe help COMMAND` and `taskpipe COMMAND --help`
// agree", every command is found beside taskpipe, and a command it does not know is a usage
// error.

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "support/binaries.hpp"
#include "support/process.hpp"

namespace taskpipe::testing {
namespace {

using namespace std::chrono_literals;

constexpr auto kExitTimeout = 30s;

struct Output {
    int status = -1;
    std::string out;
    std::string err;
};

Output taskpipe(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {taskpipe_path()};
    argv.insert(argv.end(), args.begin(), args.end());
    Process process(std::move(argv));
    const auto status = process.wait_for_exit(deadline_in(kExitTimeout));
    return {status.value_or(-1), process.stdout_text(), process.stderr_text()};
}

const std::vector<std::string> kCommands = {"run",    "ventilator", "worker", "sink",
                                            "submit", "hosts",      "keygen"};

TEST(Cli, HelpCommandAndDashDashHelpAgreeForEveryCommand) {
    for (const std::string& command : kCommands) {
        SCOPED_TRACE(command);
        const Output help = taskpipe({"help", command});
        const Output dashes = taskpipe({command, "--help"});
        EXPECT_EQ(help.status, 0) << help.err;
        EXPECT_EQ(dashes.status, 0) << dashes.err;
        EXPECT_EQ(help.out, dashes.out);
        EXPECT_TRUE(help.out.starts_with("Usage: taskpipe " + command + " ")) << help.out;
        EXPECT_EQ(help.err, "");
    }
}

TEST(Cli, GeneralHelpListsEveryCommand) {
    const Output help = taskpipe({"--help"});
    ASSERT_EQ(help.status, 0) << help.err;
    for (const std::string& command : kCommands) {
        EXPECT_NE(help.out.find("\n  " + command + " "), std::string::npos) << command;
    }
    EXPECT_EQ(taskpipe({"help"}).out, help.out);
}

// The installed names: taskpipe-worker --version says taskpipe-worker.
TEST(Cli, EveryCommandNamesItselfInItsVersion) {
    for (const std::string& command : kCommands) {
        SCOPED_TRACE(command);
        const Output version = taskpipe({command, "--version"});
        EXPECT_EQ(version.status, 0) << version.err;
        EXPECT_TRUE(version.out.starts_with("taskpipe-" + command + " (taskpipe) ")) << version.out;
    }
    EXPECT_TRUE(taskpipe({"--version"}).out.starts_with("taskpipe "));
}

TEST(Cli, ArgumentsReachTheCommandUnchanged) {
    // The worker is the program that exits 2 on this, with its own message.
    const Output output = taskpipe({"worker", "--concurrency", "0", "--builtin", "echo"});
    EXPECT_EQ(output.status, 2);
    EXPECT_NE(output.err.find("worker error: --concurrency must be between 1 and 4096"),
              std::string::npos)
        << output.err;
}

TEST(Cli, AnUnknownCommandOrNoneIsAUsageError) {
    const Output unknown = taskpipe({"frobnicate"});
    EXPECT_EQ(unknown.status, 2);
    EXPECT_NE(unknown.err.find("taskpipe error: 'frobnicate' is not a taskpipe command"),
              std::string::npos)
        << unknown.err;
    const Output none = taskpipe({});
    EXPECT_EQ(none.status, 2);
    EXPECT_NE(none.err.find("Usage: taskpipe COMMAND"), std::string::npos) << none.err;
    EXPECT_EQ(none.out, "");
}

// taskpipe submit: a command line it cannot use is a usage error (status 2) that says what is
// wrong, before it connects to any head (none runs here), and prints nothing on stdout.
TEST(Cli, SubmitRefusesABadCommandLineWithAClearError) {
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"--status", "abc"}, "'abc' is not a task id"},
        {{"--cancel", "0"}, "'0' is not a task id"},
        {{"--head", "bogus", "x"}, "--head: endpoint 'bogus' has no transport"},
        {{"--key", "k", "a", "b"}, "--key names one task; 2 payloads given"},
        {{"--status", "--cancel", "1"}, "give --status or --cancel, not both"},
        {{"--at", "tomorrow", "x"}, "--at 'tomorrow' is not a time"},
        {{"--status"}, "--status needs the ids of the tasks"},
        {{"--cancel", "--wait", "1"}, "--cancel answers at once: no --wait"},
        {{"-0", "payload"}, "-0 and --whole say how to read stdin"},
    };
    for (const auto& [args, message] : cases) {
        std::vector<std::string> argv = {"submit"};
        argv.insert(argv.end(), args.begin(), args.end());
        SCOPED_TRACE(message);
        const Output output = taskpipe(argv);
        EXPECT_EQ(output.status, 2);
        EXPECT_NE(output.err.find("submit error: " + message), std::string::npos) << output.err;
        EXPECT_EQ(output.out, "");
    }
}

}  // namespace
}  // namespace taskpipe::testing
