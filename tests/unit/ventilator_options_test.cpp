// The ventilator's command line (ventilator/options.hpp).

#include "options.hpp"

#include <gtest/gtest.h>

#include <initializer_list>
#include <vector>

namespace taskpipe {
namespace {

using namespace std::chrono_literals;

Parsed<VentilatorOptions> parse(std::initializer_list<const char*> args) {
    std::vector<const char*> argv{"ventilator"};
    argv.insert(argv.end(), args);
    return parse_ventilator_options(static_cast<int>(argv.size()), argv.data());
}

TEST(VentilatorOptions, Defaults) {
    const auto parsed = parse({});
    EXPECT_TRUE(parsed.early_output.empty());
    const VentilatorOptions& o = parsed.options;
    EXPECT_EQ(o.bind, "tcp://*:5557");
    EXPECT_EQ(o.sink, "tcp://localhost:5559");
    EXPECT_EQ(o.input, "-");
    EXPECT_FALSE(o.null_separated);
    EXPECT_EQ(o.window, 1000u);
    EXPECT_EQ(o.max_attempts, 3u);
    EXPECT_EQ(o.liveness_timeout, 5000ms);
    EXPECT_EQ(o.max_task_time, std::chrono::milliseconds(24LL * 3600 * 1000));
}

TEST(VentilatorOptions, MaxTaskTimeIsInSecondsAndZeroMeansNoLimit) {
    EXPECT_EQ(parse({"--max-task-time", "90"}).options.max_task_time, 90'000ms);
    EXPECT_EQ(parse({"--max-task-time", "0.5"}).options.max_task_time, 500ms);
    EXPECT_EQ(parse({"--max-task-time", "0"}).options.max_task_time, 0ms);
    EXPECT_THROW(parse({"--max-task-time=-1"}), UsageError);
    EXPECT_THROW(parse({"--max-task-time", "nan"}), UsageError);
    EXPECT_THROW(parse({"--max-task-time", "1e12"}), UsageError);
}

TEST(VentilatorOptions, ShortForms) {
    const auto parsed = parse({"-b", "ipc:///tmp/tasks", "-s", "tcp://sinkhost:6000", "-i",
                               "jobs.txt", "-0", "-w", "25"});
    const VentilatorOptions& o = parsed.options;
    EXPECT_EQ(o.bind, "ipc:///tmp/tasks");
    EXPECT_EQ(o.sink, "tcp://sinkhost:6000");
    EXPECT_EQ(o.input, "jobs.txt");
    EXPECT_TRUE(o.null_separated);
    EXPECT_EQ(o.window, 25u);
}

TEST(VentilatorOptions, LongForms) {
    const auto parsed =
        parse({"--bind", "tcp://127.0.0.1:*", "--sink=inproc://sink", "--input", "jobs.txt",
               "--null", "--window", "7", "--max-attempts", "9", "--liveness-timeout", "0.25"});
    const VentilatorOptions& o = parsed.options;
    EXPECT_EQ(o.bind, "tcp://127.0.0.1:*");
    EXPECT_EQ(o.sink, "inproc://sink");
    EXPECT_EQ(o.input, "jobs.txt");
    EXPECT_TRUE(o.null_separated);
    EXPECT_EQ(o.window, 7u);
    EXPECT_EQ(o.max_attempts, 9u);
    EXPECT_EQ(o.liveness_timeout, 250ms);
}

TEST(VentilatorOptions, HelpIsEarlyOutputListingTheOptions) {
    for (const char* flag : {"--help", "-h"}) {
        SCOPED_TRACE(flag);
        const auto parsed = parse({flag});
        EXPECT_NE(parsed.early_output.find("Usage:"), std::string::npos) << parsed.early_output;
        EXPECT_NE(parsed.early_output.find("--window"), std::string::npos);
        EXPECT_NE(parsed.early_output.find("--max-attempts"), std::string::npos);
    }
}

TEST(VentilatorOptions, VersionIsEarlyOutput) {
    for (const char* flag : {"--version", "-V"}) {
        SCOPED_TRACE(flag);
        const auto parsed = parse({flag});
        EXPECT_NE(parsed.early_output.find(TASKPIPE_VERSION), std::string::npos)
            << parsed.early_output;
        EXPECT_EQ(parsed.early_output.back(), '\n');
    }
}

TEST(VentilatorOptions, HelpWinsOverOtherwiseBadOptions) {
    EXPECT_FALSE(parse({"--window", "0", "--help"}).early_output.empty());
}

TEST(VentilatorOptions, UnknownOptionIsAUsageError) {
    EXPECT_THROW(parse({"--nope"}), UsageError);
    EXPECT_THROW(parse({"-x"}), UsageError);
}

TEST(VentilatorOptions, PositionalArgumentIsAUsageError) {
    EXPECT_THROW(parse({"jobs.txt"}), UsageError);
}

TEST(VentilatorOptions, MissingValueIsAUsageError) {
    EXPECT_THROW(parse({"--window"}), UsageError);
}

TEST(VentilatorOptions, BadBindEndpointIsAUsageError) {
    EXPECT_THROW(parse({"-b", "udp://*:5557"}), UsageError);
    EXPECT_THROW(parse({"-b", "tcp://*:0"}), UsageError);
    EXPECT_THROW(parse({"-b", "localhost:5557"}), UsageError);
}

TEST(VentilatorOptions, BadSinkEndpointIsAUsageError) {
    EXPECT_THROW(parse({"-s", "tcp://*:5559"}), UsageError);  // cannot connect to host *
    EXPECT_THROW(parse({"-s", "tcp://localhost:*"}), UsageError);
    EXPECT_THROW(parse({"-s", "tcp://localhost:70000"}), UsageError);
}

TEST(VentilatorOptions, WindowBelowOneIsAUsageError) {
    EXPECT_THROW(parse({"--window", "0"}), UsageError);
    EXPECT_THROW(parse({"--window", "-1"}), UsageError);
    EXPECT_THROW(parse({"--window=-1"}), UsageError);
    EXPECT_THROW(parse({"-w", "abc"}), UsageError);
}

TEST(VentilatorOptions, MaxAttemptsBelowOneIsAUsageError) {
    EXPECT_THROW(parse({"--max-attempts", "0"}), UsageError);
    EXPECT_THROW(parse({"--max-attempts=-3"}), UsageError);
}

TEST(VentilatorOptions, LivenessTimeoutNotPositiveIsAUsageError) {
    EXPECT_THROW(parse({"--liveness-timeout", "0"}), UsageError);
    EXPECT_THROW(parse({"--liveness-timeout=-1"}), UsageError);
    EXPECT_THROW(parse({"--liveness-timeout", "nan"}), UsageError);
}

}  // namespace
}  // namespace taskpipe
