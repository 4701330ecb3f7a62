// Command lines: "Exit codes are documented and stable (0 ok, 1 some tasks failed, 2 usage or
// start-up error)", and "one top-level catch prints `program: what went wrong` to stderr".
#include <gtest/gtest.h>

#include <cctype>
#include <ostream>
#include <string>
#include <vector>

#include "support/binaries.hpp"
#include "support/pipeline.hpp"
#include "support/process.hpp"
#include "support/results.hpp"

namespace taskpipe::testing {
namespace {

using namespace std::chrono_literals;

constexpr auto kExitTimeout = 10s;

std::string path_of(const std::string& program) {
    if (program == "ventilator") return ventilator_path();
    if (program == "worker") return worker_path();
    return sink_path();
}

// "A bad command line, a bad endpoint, an address in use: exit status 2 and one line
// `TIME program error: ...` on stderr, never an uncaught exception or an abort."
void expect_usage_error(Process& process, const std::string& program, const std::string& says) {
    ASSERT_EQ(process.wait_for_exit(deadline_in(kExitTimeout)), 2) << process.describe();
    const std::string err = process.stderr_text();
    const auto lines = split_lines(err);
    ASSERT_EQ(lines.size(), 1u) << err;
    EXPECT_TRUE(is_log_line(lines[0], program, "error")) << err;
    EXPECT_NE(lines[0].find(says), std::string::npos) << "expected '" << says << "' in: " << err;
    EXPECT_EQ(err.find("terminate called"), std::string::npos) << err;
    EXPECT_EQ(process.stdout_text(), "");
}

struct BadCommandLine {
    std::string name;
    std::string program;
    std::vector<std::string> args;
    std::string says;  // part of the error line
};

void PrintTo(const BadCommandLine& bad, std::ostream* out) { *out << bad.name; }

class BadCommandLineTest : public ::testing::TestWithParam<BadCommandLine> {};

TEST_P(BadCommandLineTest, ExitsTwoWithOneLineOnStderr) {
    const auto& bad = GetParam();
    std::vector<std::string> argv = {path_of(bad.program)};
    argv.insert(argv.end(), bad.args.begin(), bad.args.end());
    Process process(argv);
    expect_usage_error(process, bad.program, bad.says);
}

INSTANTIATE_TEST_SUITE_P(
    CommandLine, BadCommandLineTest,
    ::testing::Values(
        BadCommandLine{"SinkUnknownOption", "sink", {"--frobnicate"}, "'--frobnicate'"},
        BadCommandLine{"VentilatorUnknownOption", "ventilator", {"--frobnicate"}, "'--frobnicate'"},
        BadCommandLine{"WorkerUnknownOption",
                       "worker",
                       {"--frobnicate", "--builtin", "echo"},
                       "'--frobnicate'"},
        BadCommandLine{
            "SinkEndpointWithoutPort", "sink", {"--bind", "tcp://nohost"}, "tcp://nohost"},
        BadCommandLine{"SinkUnknownTransport", "sink", {"--control", "foo://x"}, "foo://x"},
        BadCommandLine{
            "VentilatorEndpointWithoutPort", "ventilator", {"-s", "tcp://nohost"}, "tcp://nohost"},
        BadCommandLine{"VentilatorUnknownTransport", "ventilator", {"-b", "foo://x"}, "foo://x"},
        BadCommandLine{"WorkerEndpointWithoutPort",
                       "worker",
                       {"-v", "tcp://nohost", "--builtin", "echo"},
                       "tcp://nohost"},
        BadCommandLine{
            "WorkerUnknownTransport", "worker", {"-s", "foo://x", "--builtin", "echo"}, "foo://x"},
        BadCommandLine{"WorkerWithoutHandler", "worker", {}, "give exactly one of"},
        BadCommandLine{"WorkerWithTwoHandlers",
                       "worker",
                       {"--builtin", "echo", "--shell", "true"},
                       "give exactly one of"},
        BadCommandLine{"WorkerUnknownBuiltin", "worker", {"--builtin", "nope"}, "'nope'"},
        BadCommandLine{
            "WorkerZeroConcurrency", "worker", {"-c", "0", "--builtin", "echo"}, "--concurrency"},
        BadCommandLine{"VentilatorZeroWindow", "ventilator", {"-w", "0"}, "--window"},
        // Found at start-up, not after the whole batch has run.
        BadCommandLine{"SinkStatsFileInAMissingDirectory",
                       "sink",
                       {"--bind", "tcp://127.0.0.1:*", "--control", "tcp://127.0.0.1:*", "--stats",
                        "/nonexistent/taskpipe-dir/stats.json"},
                       "/nonexistent/taskpipe-dir/stats.json"},
        BadCommandLine{
            "SinkStatsFileIsADirectory",
            "sink",
            {"--bind", "tcp://127.0.0.1:*", "--control", "tcp://127.0.0.1:*", "--stats", "/"},
            "--stats"},
        BadCommandLine{"VentilatorMissingInputFile",
                       "ventilator",
                       {"-i", "/nonexistent/taskpipe-input"},
                       "/nonexistent/taskpipe-input"}),
    [](const auto& test) { return test.param.name; });

// "address in use" is a start-up error like any other.
TEST(CommandLine, SinkBindingAPortInUseExitsTwo) {
    Pipeline first;
    first.start_sink();
    const std::string taken = first.endpoints().results;

    Process second({sink_path(), "--bind", taken, "--control", "tcp://127.0.0.1:*"});
    expect_usage_error(second, "sink", "Address already in use");
    EXPECT_TRUE(first.sink().running()) << "the first sink must not be disturbed";
}

// Two wildcard binds get two different ports, so the same string for both is not a conflict.
TEST(CommandLine, SinkAcceptsOneWildcardForBoth) {
    Process sink({sink_path(), "--bind", "tcp://127.0.0.1:*", "--control", "tcp://127.0.0.1:*"});
    const auto deadline = deadline_in(kExitTimeout);
    const auto results = sink.wait_for_stderr("sink info: results on tcp://127.0.0.1:", deadline);
    const auto control = sink.wait_for_stderr("sink info: control on tcp://127.0.0.1:", deadline);
    ASSERT_TRUE(results && control) << sink.describe();
    EXPECT_NE(results->substr(results->rfind(':')), control->substr(control->rfind(':')));
    EXPECT_TRUE(sink.running()) << sink.describe();
}

struct EarlyExit {
    std::string program;
    std::string flag;
    std::string prints;  // part of stdout
};

void PrintTo(const EarlyExit& early, std::ostream* out) {
    *out << early.program << " " << early.flag;
}

class EarlyExitTest : public ::testing::TestWithParam<EarlyExit> {};

// "--help and --version exit 0 and print to stdout."
TEST_P(EarlyExitTest, ExitsZeroAndPrintsToStdout) {
    const auto& early = GetParam();
    Process process({path_of(early.program), early.flag});
    ASSERT_EQ(process.wait_for_exit(deadline_in(kExitTimeout)), 0) << process.describe();
    EXPECT_NE(process.stdout_text().find(early.prints), std::string::npos) << process.stdout_text();
    EXPECT_EQ(process.stderr_text(), "");
}

std::vector<EarlyExit> early_exits() {
    std::vector<EarlyExit> cases;
    for (const std::string program : {"ventilator", "worker", "sink"}) {
        cases.push_back({program, "--help", "Usage: taskpipe " + program});
        cases.push_back({program, "-h", "Usage: taskpipe " + program});
        cases.push_back({program, "--version", program + " (taskpipe) "});
        cases.push_back({program, "-V", program + " (taskpipe) "});
    }
    return cases;
}

INSTANTIATE_TEST_SUITE_P(CommandLine, EarlyExitTest, ::testing::ValuesIn(early_exits()),
                         [](const auto& test) {
                             std::string name = test.param.program;
                             for (const char c : test.param.flag) {
                                 if (std::isalnum(static_cast<unsigned char>(c))) name += c;
                             }
                             return name;
                         });

}  // namespace
}  // namespace taskpipe::testing
