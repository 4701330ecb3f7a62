// The worker's command line (worker/options.hpp).
//
// "Everything after "--" (or the first positional argument) is the command. Throws UsageError
// for an unusable command line, including no handler or more than one."

#include "options.hpp"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <variant>
#include <vector>

namespace taskpipe {
namespace {

using Argv = std::vector<std::string>;

Parsed<WorkerOptions> parse(std::initializer_list<const char*> args) {
    std::vector<const char*> argv{"worker"};
    argv.insert(argv.end(), args);
    return parse_worker_options(static_cast<int>(argv.size()), argv.data());
}

TEST(WorkerOptions, CommandAfterDoubleDashKeepsItsExactArgv) {
    const auto parsed = parse({"--", "grep", "-v", "--count", "-c", "4", "{}", "--", ""});
    const auto* command = std::get_if<CommandHandler>(&parsed.options.handler);
    ASSERT_NE(command, nullptr);
    EXPECT_EQ(command->argv, (Argv{"grep", "-v", "--count", "-c", "4", "{}", "--", ""}));
}

TEST(WorkerOptions, OptionsBeforeDoubleDashStillApply) {
    const auto parsed = parse({"-c", "3", "-v", "ipc:///tmp/v", "--", "wc", "-c"});
    EXPECT_EQ(parsed.options.concurrency, 3u);
    EXPECT_EQ(parsed.options.ventilator, "ipc:///tmp/v");
    const auto* command = std::get_if<CommandHandler>(&parsed.options.handler);
    ASSERT_NE(command, nullptr);
    EXPECT_EQ(command->argv, (Argv{"wc", "-c"}));
}

TEST(WorkerOptions, CommandWithoutDoubleDash) {
    const auto parsed = parse({"echo", "hello", "{}"});
    const auto* command = std::get_if<CommandHandler>(&parsed.options.handler);
    ASSERT_NE(command, nullptr);
    EXPECT_EQ(command->argv, (Argv{"echo", "hello", "{}"}));
}

TEST(WorkerOptions, FileNamesTurnsOnTheGuard) {
    const auto guarded = parse({"--file-names", "--", "rm", "{}"});
    const auto* command = std::get_if<CommandHandler>(&guarded.options.handler);
    ASSERT_NE(command, nullptr);
    EXPECT_TRUE(command->file_names);
    const auto plain = parse({"--", "rm", "{}"});
    EXPECT_FALSE(std::get<CommandHandler>(plain.options.handler).file_names);
}

TEST(WorkerOptions, ShellGivesShellHandler) {
    const auto parsed = parse({"--shell", "echo \"$1\" | wc -c"});
    const auto* shell = std::get_if<ShellHandler>(&parsed.options.handler);
    ASSERT_NE(shell, nullptr);
    EXPECT_EQ(shell->script, "echo \"$1\" | wc -c");
}

TEST(WorkerOptions, BuiltinGivesBuiltinHandler) {
    for (const char* name : {"echo", "sleep", "fail", "spin"}) {
        SCOPED_TRACE(name);
        const auto parsed = parse({"--builtin", name});
        const auto* builtin = std::get_if<BuiltinHandler>(&parsed.options.handler);
        ASSERT_NE(builtin, nullptr);
        EXPECT_EQ(builtin->name, name);
    }
}

TEST(WorkerOptions, NoHandlerIsAUsageError) { EXPECT_THROW(parse({}), UsageError); }

TEST(WorkerOptions, TwoHandlersAreAUsageError) {
    EXPECT_THROW(parse({"--builtin", "echo", "--shell", "cat"}), UsageError);
    EXPECT_THROW(parse({"--builtin", "echo", "--", "cat"}), UsageError);
    EXPECT_THROW(parse({"--shell", "cat", "--", "cat"}), UsageError);
}

TEST(WorkerOptions, UnknownBuiltinIsAUsageError) {
    EXPECT_THROW(parse({"--builtin", "nope"}), UsageError);
    EXPECT_THROW(parse({"--builtin="}), UsageError);
}

TEST(WorkerOptions, UnknownOptionIsAUsageError) {
    EXPECT_THROW(parse({"--nope", "--builtin", "echo"}), UsageError);
}

TEST(WorkerOptions, DefaultConcurrencyIsAtLeastOne) {
    EXPECT_GE(parse({"--builtin", "echo"}).options.concurrency, 1u);
}

TEST(WorkerOptions, ConcurrencyIsSet) {
    EXPECT_EQ(parse({"-c", "16", "--builtin", "echo"}).options.concurrency, 16u);
    EXPECT_EQ(parse({"--concurrency", "1", "--builtin", "echo"}).options.concurrency, 1u);
}

TEST(WorkerOptions, ConcurrencyBelowOneIsAUsageError) {
    EXPECT_THROW(parse({"-c", "0", "--builtin", "echo"}), UsageError);
    EXPECT_THROW(parse({"--concurrency=-2", "--builtin", "echo"}), UsageError);
    EXPECT_THROW(parse({"-c", "two", "--builtin", "echo"}), UsageError);
}

TEST(WorkerOptions, DefaultEndpoints) {
    const auto parsed = parse({"--builtin", "echo"});
    EXPECT_EQ(parsed.options.ventilator, "tcp://localhost:5557");
    EXPECT_EQ(parsed.options.sink, "tcp://localhost:5558");
}

TEST(WorkerOptions, EndpointsShortAndLong) {
    auto parsed =
        parse({"-v", "tcp://10.0.0.1:7000", "-s", "ipc:///tmp/sink", "--builtin", "echo"});
    EXPECT_EQ(parsed.options.ventilator, "tcp://10.0.0.1:7000");
    EXPECT_EQ(parsed.options.sink, "ipc:///tmp/sink");
    parsed = parse({"--ventilator", "inproc://v", "--sink", "inproc://s", "--builtin", "echo"});
    EXPECT_EQ(parsed.options.ventilator, "inproc://v");
    EXPECT_EQ(parsed.options.sink, "inproc://s");
}

TEST(WorkerOptions, BadEndpointIsAUsageError) {
    // The worker only connects: a wildcard host or port is no place to connect to.
    EXPECT_THROW(parse({"-v", "tcp://*:5557", "--builtin", "echo"}), UsageError);
    EXPECT_THROW(parse({"-s", "tcp://localhost:*", "--builtin", "echo"}), UsageError);
    EXPECT_THROW(parse({"-s", "udp://localhost:5558", "--builtin", "echo"}), UsageError);
}

TEST(WorkerOptions, HelpAndVersionAreEarlyOutput) {
    const auto help = parse({"--help"});
    EXPECT_NE(help.early_output.find("--builtin"), std::string::npos) << help.early_output;
    const auto version = parse({"--version"});
    EXPECT_NE(version.early_output.find(TASKPIPE_VERSION), std::string::npos);
}

TEST(WorkerOptions, MaxOutputIsSet) {
    EXPECT_EQ(parse({"--max-output", "10", "--builtin", "echo"}).options.max_output, 10u);
    EXPECT_THROW(parse({"--max-output=-1", "--builtin", "echo"}), UsageError);
}

// README: "what it left running in its group ... gets SIGKILL"; "--keep-leftovers: leftovers then
// run on".
TEST(WorkerOptions, LeftoversAreKilledUnlessKeepLeftoversIsGiven) {
    EXPECT_TRUE(parse({"--builtin", "echo"}).options.kill_leftovers);
    EXPECT_FALSE(parse({"--keep-leftovers", "--", "sh", "-c", "x"}).options.kill_leftovers);
    EXPECT_THROW(parse({"--keep-leftovers=yes", "--builtin", "echo"}), UsageError);
}

}  // namespace
}  // namespace taskpipe
