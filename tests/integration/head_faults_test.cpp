// Faults at the head of the pipeline: the sink or the ventilator paused past ZeroMQ's heartbeat
// timeout, the sink killed and restarted, a sink or ventilator that goes away for good, and a
// joblog whose disk fills up. docs/reliability.md promises, for each: the batch completes (or
// both programs stop with a clear message and a status a script can trust), nothing is lost,
// and no id is written twice.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/binaries.hpp"
#include "support/census.hpp"
#include "support/pipeline.hpp"
#include "support/process.hpp"
#include "support/results.hpp"
#include "support/small_disk.hpp"
#include "support/temp_dir.hpp"

namespace taskpipe::testing {
namespace {

using namespace std::chrono_literals;

// Longer than ZeroMQ's heartbeat timeout (5 s), after which a paused peer's connection is
// replaced by a new one: "a pause of more than about 5 s hangs the batch for ever".
constexpr auto kLongPause = 10s;

std::string repeated_lines(int count, const std::string& payload) {
    std::string input;
    for (int i = 0; i < count; ++i) input += payload + "\n";
    return input;
}

// Tasks of 10 ms on two workers with two slots each: about 1.5 s of work for 600.
constexpr int kTasks = 600;
const std::vector<std::string> kSleepWorker = {"--heartbeat", "0.2",       "-c",
                                               "2",           "--builtin", "sleep"};

void start_workers(Pipeline& pipeline, int count = 2) {
    for (int i = 0; i < count; ++i) pipeline.start_worker(kSleepWorker);
}

bool wait_for_results(const Process& sink, std::size_t count, Deadline deadline) {
    return wait_for([&] { return results_written(sink) >= count; }, deadline);
}

// Both programs exit 0 and every id of 1..total is written once, ok.
void expect_complete(Process& sink, Process& ventilator, std::uint64_t total) {
    ASSERT_EQ(sink.wait_for_exit(deadline_in(60s)), 0) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline_in(10s)), 0) << ventilator.describe();
    const Census census = take_census(sink.stdout_text(), total);
    EXPECT_TRUE(census.exact()) << census.describe() << sink.describe() << ventilator.describe();
    EXPECT_TRUE(census.not_with_status("ok").empty()) << sink.describe();
}

// "Stop the sink for longer than the ZeroMQ heartbeat timeout and then continue it (kill -STOP /
// -CONT, ^Z and fg): neither program ever exits." It must complete the batch.
TEST(HeadFaults, ASinkStoppedPastTheHeartbeatTimeoutCompletesTheBatch) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl"});
    Process& ventilator = pipeline.start_ventilator(Stdin::data(repeated_lines(kTasks, "10")));
    start_workers(pipeline);
    ASSERT_TRUE(wait_for_results(sink, kTasks / 5, deadline_in(30s))) << sink.describe();
    sink.signal(SIGSTOP);
    std::this_thread::sleep_for(kLongPause);  // the fault itself, not a synchronisation
    sink.signal(SIGCONT);
    expect_complete(sink, ventilator, kTasks);
    EXPECT_TRUE(sink.wait_for_stderr("did not run for", deadline_in(1s))) << sink.describe();
}

// "Pausing the ventilator does the same. The only message says 'no word from the sink', even
// when the ventilator was the one stopped."
TEST(HeadFaults, AVentilatorStoppedPastTheHeartbeatTimeoutCompletesTheBatch) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl"});
    Process& ventilator = pipeline.start_ventilator(Stdin::data(repeated_lines(kTasks, "10")));
    start_workers(pipeline);
    ASSERT_TRUE(wait_for_results(sink, kTasks / 5, deadline_in(30s))) << sink.describe();
    ventilator.signal(SIGSTOP);
    std::this_thread::sleep_for(kLongPause);
    ventilator.signal(SIGCONT);
    expect_complete(sink, ventilator, kTasks);
    const std::string log = ventilator.stderr_text();
    EXPECT_NE(log.find("this ventilator did not run for"), std::string::npos) << log;
    EXPECT_EQ(log.find("no word from the sink"), std::string::npos) << log;
}

// "Kill -9 the sink with --joblog and start it again with the same options: the running
// ventilator and workers never complete the batch with it." The new sink takes the batch over,
// writes what the old one had not, and both programs exit 0.
TEST(HeadFaults, ASinkKilledAndRestartedWithTheSameOptionsTakesTheBatchOver) {
    TempDir dir;
    Pipeline pipeline(Endpoints::ipc(dir));
    const std::vector<std::string> sink_options = {"--jsonl", "--joblog", dir.file("jobs.tsv")};
    Process& first = pipeline.start_sink(sink_options);
    Process& ventilator = pipeline.start_ventilator(Stdin::data(repeated_lines(kTasks, "10")));
    start_workers(pipeline);
    ASSERT_TRUE(wait_for_results(first, kTasks / 4, deadline_in(30s))) << first.describe();
    first.signal(SIGKILL);
    ASSERT_EQ(first.wait_for_exit(deadline_in(5s)), 128 + SIGKILL);
    const std::string first_output = first.stdout_text();

    Process& second = pipeline.start_sink(sink_options);
    ASSERT_EQ(second.wait_for_exit(deadline_in(60s)), 0)
        << second.describe() << ventilator.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline_in(10s)), 0) << ventilator.describe();

    // Nothing is lost across the two, and the new sink writes no id twice. An id the old sink
    // wrote but had not yet acknowledged when it died runs again and is written again by the new
    // one (docs/reliability.md); those are few.
    const Census both = take_census(first_output + second.stdout_text(), kTasks);
    EXPECT_TRUE(both.missing.empty() && both.unexpected.empty()) << both.describe();
    EXPECT_LE(both.duplicated.size(), 50u) << both.describe();
    const Census second_alone = take_census(second.stdout_text(), kTasks);
    EXPECT_TRUE(second_alone.duplicated.empty()) << second_alone.describe();
    EXPECT_TRUE(second.wait_for_stderr("recorded by the sink before this one", deadline_in(1s)))
        << second.describe();
    EXPECT_TRUE(ventilator.wait_for_stderr("a new sink took over the batch", deadline_in(1s)))
        << ventilator.describe();
}

// "The sink exits 2 (`sink | head -5`) ... a foreground `ventilator < tasks` waits for ever."
// The sink tells the ventilator on its way out; the ventilator stops at once, long before its
// give-up timeout, with status 4 and a message that says why.
TEST(HeadFaults, ASinkWhoseOutputIsClosedStopsTheVentilatorWithStatusFour) {
    TempDir dir;
    const Endpoints endpoints = Endpoints::ipc(dir);
    Process sink({"/bin/bash", "-c",
                  "'" + sink_path() + "' --bind " + endpoints.results + " --control " +
                      endpoints.control + " | head -5; echo \"sink status ${PIPESTATUS[0]}\" >&2"});
    Pipeline pipeline(endpoints);
    Process& ventilator = pipeline.start_ventilator(Stdin::data(repeated_lines(kTasks, "line")),
                                                    {"--sink-timeout", "60"});
    pipeline.start_worker({"--builtin", "echo"});
    const auto started = Clock::now();
    EXPECT_EQ(ventilator.wait_for_exit(deadline_in(30s)), 4)
        << ventilator.describe() << sink.describe();
    EXPECT_LT(Clock::now() - started, 30s);
    EXPECT_TRUE(ventilator.wait_for_stderr("the sink stopped before the batch was complete",
                                           deadline_in(1s)))
        << ventilator.describe();
    EXPECT_TRUE(sink.wait_for_stderr("sink status 2", deadline_in(10s))) << sink.describe();
}

// "... exits 3 on SIGTERM": the same, for an interrupted sink.
TEST(HeadFaults, AnInterruptedSinkStopsTheVentilatorWithStatusFour) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl"});
    Process& ventilator = pipeline.start_ventilator(Stdin::data(repeated_lines(kTasks, "10")),
                                                    {"--sink-timeout", "60"});
    start_workers(pipeline);
    ASSERT_TRUE(wait_for_results(sink, 20, deadline_in(30s))) << sink.describe();
    sink.signal(SIGTERM);
    EXPECT_EQ(sink.wait_for_exit(deadline_in(10s)), 3) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline_in(10s)), 4) << ventilator.describe();
    EXPECT_TRUE(ventilator.wait_for_stderr("its exit status 3", deadline_in(1s)))
        << ventilator.describe();
}

// "... or is killed": nothing can tell the ventilator, so it gives up after --sink-timeout.
TEST(HeadFaults, AVentilatorWhoseSinkWasKilledGivesUpAfterTheSinkTimeout) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl"});
    Process& ventilator = pipeline.start_ventilator(Stdin::data(repeated_lines(kTasks, "10")),
                                                    {"--sink-timeout", "3"});
    start_workers(pipeline);
    ASSERT_TRUE(wait_for_results(sink, 20, deadline_in(30s))) << sink.describe();
    sink.signal(SIGKILL);
    EXPECT_EQ(ventilator.wait_for_exit(deadline_in(20s)), 4) << ventilator.describe();
    EXPECT_TRUE(ventilator.wait_for_stderr("no word from the sink for", deadline_in(1s)))
        << ventilator.describe();
}

// "The other way round, a sink whose ventilator died only logs '0.0/s' progress lines."
TEST(HeadFaults, ASinkWhoseVentilatorWasKilledGivesUpAfterTheVentilatorTimeout) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl", "--ventilator-timeout", "3"});
    Process& ventilator = pipeline.start_ventilator(Stdin::data(repeated_lines(kTasks, "10")));
    start_workers(pipeline);
    ASSERT_TRUE(wait_for_results(sink, 20, deadline_in(30s))) << sink.describe();
    ventilator.signal(SIGKILL);
    EXPECT_EQ(sink.wait_for_exit(deadline_in(20s)), 4) << sink.describe();
    EXPECT_TRUE(sink.wait_for_stderr("no word from the ventilator for", deadline_in(1s)))
        << sink.describe();
}

// "`--stats`' re-send count is stale: it read 0 when the ventilator had re-sent 18-20, because no
// final `progress` precedes `bye`."
TEST(HeadFaults, TheStatsFileHasTheVentilatorsFinalResendCount) {
    TempDir dir;
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl", "--stats", dir.file("stats.json")});
    Process& ventilator = pipeline.start_ventilator(Stdin::data(repeated_lines(kTasks, "10")),
                                                    {"--liveness-timeout", "1"});
    start_workers(pipeline);
    ASSERT_TRUE(wait_for_results(sink, kTasks / 5, deadline_in(30s))) << sink.describe();
    pipeline.workers()[0]->signal(SIGKILL);  // its tasks are re-sent
    expect_complete(sink, ventilator, kTasks);
    const auto summary = ventilator.wait_for_stderr("batch complete:", deadline_in(1s));
    ASSERT_TRUE(summary) << ventilator.describe();
    const std::size_t at = summary->find(" lost, ");
    ASSERT_NE(at, std::string::npos) << *summary;
    const long resent = std::stol(summary->substr(at + 7));
    EXPECT_GT(resent, 0) << *summary;
    std::ifstream file(dir.file("stats.json"));
    const auto stats = nlohmann::json::parse(file);
    EXPECT_EQ(stats.at("resent").get<long>(), resent) << stats.dump();
}

// "A joblog write that fails duplicates output after --resume ... A 1 MiB tmpfs with 20,000
// tasks gave 78, 145 and 334 duplicated ids over three runs." Room for each joblog line is
// reserved before its output is written, so the first run stops (sink 2, ventilator 4) with
// output and joblog in agreement, and the resumed run prints exactly what is missing.
TEST(HeadFaults, AFullJoblogDiskThenResumeWritesEveryIdExactlyOnce) {
    TempDir dir;
    SmallDisk disk(dir.file("disk"), "64k");
    if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs (needs root): " << disk.error();
    const std::string joblog = dir.file("disk") + "/jobs.tsv";
    constexpr int kRecords = 3000;  // about 150 KB of joblog lines
    std::string input;
    std::vector<std::string> expected;
    for (int i = 1; i <= kRecords; ++i) {
        expected.push_back("record-" + std::to_string(i) + std::string(20, 'x'));
        input += expected.back() + "\n";
    }

    std::string output;
    {
        Pipeline pipeline;
        Process& sink = pipeline.start_sink({"--joblog", joblog});
        Process& ventilator = pipeline.start_ventilator(Stdin::data(input));
        pipeline.start_worker({"-c", "4", "--builtin", "echo"});
        EXPECT_EQ(sink.wait_for_exit(deadline_in(60s)), 2) << sink.describe();
        EXPECT_EQ(ventilator.wait_for_exit(deadline_in(20s)), 4) << ventilator.describe();
        EXPECT_TRUE(sink.wait_for_stderr("No space left on device", deadline_in(1s)))
            << sink.describe();
        output = sink.stdout_text();
    }
    ASSERT_LT(split_lines(output).size(), expected.size()) << "the disk did not fill up";
    ASSERT_TRUE(disk.resize("8m"));
    {
        Pipeline pipeline;
        Process& sink = pipeline.start_sink({"--joblog", joblog});
        Process& ventilator = pipeline.start_ventilator(Stdin::data(input), {"--resume", joblog});
        pipeline.start_worker({"-c", "4", "--builtin", "echo"});
        EXPECT_EQ(sink.wait_for_exit(deadline_in(60s)), 0) << sink.describe();
        EXPECT_EQ(ventilator.wait_for_exit(deadline_in(20s)), 0) << ventilator.describe();
        output += sink.stdout_text();
    }
    const Tally tally = tally_lines(output, expected);
    EXPECT_TRUE(tally.exact()) << tally.describe();
}

}  // namespace
}  // namespace taskpipe::testing
