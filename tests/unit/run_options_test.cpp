// The command line of `taskpipe run` and those it gives the programs (cli/run_options.hpp):
// "takes the options of the sink, the ventilator and the worker under the same names, and
// hands each program its own"; "a bad value is reported before anything starts, in the same
// words as by the program itself".

#include "run_options.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>
#include <string>
#include <vector>

namespace taskpipe {
namespace {

using Argv = std::vector<std::string>;

Parsed<RunOptions> parse(std::initializer_list<const char*> args) {
    std::vector<const char*> argv{"run"};
    argv.insert(argv.end(), args);
    return parse_run_options(static_cast<int>(argv.size()), argv.data());
}

RunEndpoints ipc_endpoints() {
    RunEndpoints e;
    e.tasks_bind = e.tasks_connect = "ipc:///d/tasks";
    e.results_bind = e.results_connect = "ipc:///d/results";
    e.control = "ipc:///d/control";
    return e;
}

// `needle` appears in `haystack` as consecutive arguments.
bool has(const Argv& haystack, const Argv& needle) {
    return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) !=
           haystack.end();
}

TEST(RunOptions, EachProgramGetsItsOwnOptions) {
    const RunOptions o =
        parse({"-k", "--tag", "-0", "--timeout", "5", "-r", "2", "--stats", "s.json",
               "--max-attempts", "4", "--file-names", "--", "gzip", "{}"})
            .options;
    const Argv sink = sink_command("SINK", o, ipc_endpoints());
    const Argv ventilator = ventilator_command("VENT", o, ipc_endpoints(), false);
    const Argv worker = local_worker_command("WORKER", o, ipc_endpoints());
    EXPECT_TRUE(has(sink, {"--keep-order"}));
    EXPECT_TRUE(has(sink, {"--tag"}));
    EXPECT_TRUE(has(sink, {"--stats", "s.json"}));
    EXPECT_FALSE(has(sink, {"--timeout", "5"}));
    EXPECT_TRUE(has(ventilator, {"--null"}));
    EXPECT_TRUE(has(ventilator, {"--max-attempts", "4"}));
    EXPECT_FALSE(has(ventilator, {"--tag"}));
    EXPECT_TRUE(has(worker, {"--timeout", "5"}));
    EXPECT_TRUE(has(worker, {"--retries", "2"}));
    EXPECT_TRUE(has(worker, {"--file-names"}));
    EXPECT_FALSE(has(worker, {"--null"}));
    // The handler comes last, after "--", byte for byte.
    EXPECT_TRUE(worker.size() >= 3 &&
                Argv(worker.end() - 3, worker.end()) == (Argv{"--", "gzip", "{}"}));
}

TEST(RunOptions, TheProgramsMeetOnTheGivenEndpoints) {
    const RunOptions o = parse({"--builtin", "echo"}).options;
    const RunEndpoints e = ipc_endpoints();
    EXPECT_EQ(Argv(sink_command("SINK", o, e)).at(0), "SINK");
    EXPECT_TRUE(
        has(sink_command("SINK", o, e), {"--bind", e.results_bind, "--control", e.control}));
    EXPECT_TRUE(
        has(ventilator_command("V", o, e, false), {"--bind", e.tasks_bind, "--sink", e.control}));
    EXPECT_TRUE(has(local_worker_command("W", o, e),
                    {"--ventilator", e.tasks_connect, "--sink", e.results_connect}));
}

TEST(RunOptions, JobsIsTheLocalWorkersConcurrency) {
    EXPECT_TRUE(has(
        local_worker_command("W", parse({"-j", "8", "--builtin", "echo"}).options, ipc_endpoints()),
        {"--concurrency", "8"}));
    // Without -j the worker takes its own default, the number of CPUs.
    EXPECT_FALSE(
        has(local_worker_command("W", parse({"--builtin", "echo"}).options, ipc_endpoints()),
            {"--concurrency"}));
}

// "--joblog FILE --resume: the tasks FILE records are skipped (on the first run FILE does not
// exist and everything runs)".
TEST(RunOptions, ResumeReadsTheJoblogOnlyWhenItHasRecords) {
    const RunOptions o = parse({"--joblog", "j.tsv", "--resume", "--builtin", "echo"}).options;
    EXPECT_TRUE(has(sink_command("S", o, ipc_endpoints()), {"--joblog", "j.tsv"}));
    EXPECT_TRUE(has(ventilator_command("V", o, ipc_endpoints(), true), {"--resume", "j.tsv"}));
    EXPECT_FALSE(has(ventilator_command("V", o, ipc_endpoints(), false), {"--resume"}));
    const RunOptions failed =
        parse({"--joblog", "j.tsv", "--resume-failed", "--builtin", "echo"}).options;
    EXPECT_TRUE(
        has(ventilator_command("V", failed, ipc_endpoints(), true), {"--resume-failed", "j.tsv"}));
}

TEST(RunOptions, ArgFileIsTheVentilatorsInput) {
    const RunOptions o = parse({"-a", "tasks.txt", "--builtin", "echo"}).options;
    EXPECT_TRUE(has(ventilator_command("V", o, ipc_endpoints(), false), {"--input", "tasks.txt"}));
}

TEST(RunOptions, BadValuesAreCaughtByTheProgramsOwnParsers) {
    EXPECT_THROW(parse({"--retries", "-1", "--builtin", "echo"}), UsageError);
    EXPECT_THROW(parse({"--reorder-window", "0", "--builtin", "echo"}), UsageError);
    EXPECT_THROW(parse({"--window", "0", "--builtin", "echo"}), UsageError);
    EXPECT_THROW(parse({"--builtin", "nosuch"}), UsageError);
    EXPECT_THROW(parse({"--builtin", "echo", "--shell", "x"}), UsageError);
    EXPECT_THROW(parse({}), UsageError);
    EXPECT_THROW(parse({"-j", "0", "--builtin", "echo"}), UsageError);
    EXPECT_THROW(parse({"-j", "4097", "--builtin", "echo"}), UsageError);
    EXPECT_THROW(parse({"--resume", "--builtin", "echo"}), UsageError);
    EXPECT_THROW(parse({"--joblog", "j", "--resume", "--resume-failed", "--builtin", "echo"}),
                 UsageError);
}

TEST(RunOptions, HelpIsEarlyOutput) {
    const auto parsed = parse({"--help"});
    EXPECT_TRUE(parsed.early_output.starts_with("Usage: taskpipe run ")) << parsed.early_output;
}

// parallel's -S: "a,8/b" and ':' for this host.
TEST(Hosts, ListsCountsAndThisHost) {
    EXPECT_EQ(parse_hosts("a,8/b,:"), (std::vector<HostSpec>{{"a", ""}, {"b", "8"}, {":", ""}}));
    EXPECT_EQ(parse_hosts("user@hostb"), (std::vector<HostSpec>{{"user@hostb", ""}}));
    EXPECT_EQ(parse_hosts("4/:"), (std::vector<HostSpec>{{":", "4"}}));
    EXPECT_EQ(parse_hosts("a,,b"), (std::vector<HostSpec>{{"a", ""}, {"b", ""}}));
}

TEST(Hosts, MalformedEntriesAreUsageErrors) {
    for (const char* bad : {"0/a", "x/a", "99999/a", "8/", "-oProxyCommand=x", "a b", "a/b/c"}) {
        SCOPED_TRACE(bad);
        EXPECT_THROW(parse_hosts(bad), UsageError);
    }
}

// "This host runs no worker unless -S : is given, as with GNU parallel."
TEST(Hosts, ThisHostRunsAWorkerWithoutSOrWithColon) {
    EXPECT_TRUE(runs_local_worker(parse({"--builtin", "echo"}).options));
    EXPECT_FALSE(runs_remote_workers(parse({"--builtin", "echo"}).options));
    const RunOptions remote_only = parse({"-S", "b", "--builtin", "echo"}).options;
    EXPECT_FALSE(runs_local_worker(remote_only));
    EXPECT_TRUE(runs_remote_workers(remote_only));
    const RunOptions both = parse({"-S", "4/:", "-S", "b", "--builtin", "echo"}).options;
    EXPECT_TRUE(runs_local_worker(both));
    EXPECT_TRUE(has(local_worker_command("W", both, ipc_endpoints()), {"--concurrency", "4"}));
}

TEST(Hosts, TheLauncherGetsTheHostsEndpointsAndWorkerArguments) {
    const RunOptions o =
        parse({"-S", ":,8/b", "-S", "c", "-j", "2", "--ssh", "ip netns exec {} sh -c",
               "--remote-worker", "/opt/w", "--timeout", "9", "--", "gzip", "{}"})
            .options;
    RunEndpoints e = ipc_endpoints();
    e.tasks_remote = "tcp://a:1";
    e.results_remote = "tcp://a:2";
    const Argv hosts = hosts_command("H", o, e);
    EXPECT_TRUE(has(hosts, {"--ssh", "ip netns exec {} sh -c"}));
    EXPECT_TRUE(has(hosts, {"-H", "8/b,c"}));
    EXPECT_TRUE(has(hosts, {"-v", "tcp://a:1", "-s", "tcp://a:2"}));
    EXPECT_TRUE(has(hosts, {"-c", "2"}));
    EXPECT_TRUE(has(hosts, {"--worker", "/opt/w"}));
    // After the launcher's "--", the worker's own arguments, the handler last.
    const auto dashes = std::find(hosts.begin(), hosts.end(), "--");
    ASSERT_NE(dashes, hosts.end());
    const Argv worker(dashes + 1, hosts.end());
    EXPECT_TRUE(has(worker, {"--timeout", "9"}));
    EXPECT_TRUE(has(worker, {"--", "gzip", "{}"}));
}

// "their start-up and summary lines (info) say nothing the sink does not".
TEST(LogLevels, HelpersLogWarningsUnlessAskedForMoreOrLess) {
    EXPECT_EQ(helper_log_level(LogLevel::info), LogLevel::warning);
    EXPECT_EQ(helper_log_level(LogLevel::debug), LogLevel::debug);
    EXPECT_EQ(helper_log_level(LogLevel::error), LogLevel::error);
    const RunOptions o = parse({"--log-level", "debug", "--builtin", "echo"}).options;
    EXPECT_TRUE(has(sink_command("S", o, ipc_endpoints()), {"--log-level", "debug"}));
    const RunOptions quiet = parse({"--builtin", "echo"}).options;
    EXPECT_TRUE(has(sink_command("S", quiet, ipc_endpoints()), {"--log-level", "info"}));
    EXPECT_TRUE(has(local_worker_command("W", quiet, ipc_endpoints()), {"--log-level", "warning"}));
}

}  // namespace
}  // namespace taskpipe
