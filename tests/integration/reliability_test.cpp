// Faults injected into a running batch, checked against the promise of the README: "No broker
// to run, no task lost when a worker dies, no task's output written twice" ("at-least-once
// execution, exactly-once output"). Workers are killed, stopped, terminated and restarted mid-
// batch; every test counts the missing, duplicated and unexpected ids in the sink's --jsonl
// output. Liveness timeouts are short (1 s) and heartbeats frequent (0.2 s) to keep them fast.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "support/census.hpp"
#include "support/connections.hpp"
#include "support/pipeline.hpp"
#include "support/process.hpp"
#include "support/results.hpp"
#include "support/temp_dir.hpp"

namespace taskpipe::testing {
namespace {

using namespace std::chrono_literals;

// Worker options shared by every test: heartbeats well inside the ventilator's liveness timeout.
const std::vector<std::string> kHeartbeat = {"--heartbeat", "0.2"};
// "--liveness-timeout SECONDS: a task with no result and not named in any worker heartbeat for
// that long is re-sent".
const std::vector<std::string> kShortLiveness = {"--liveness-timeout", "1"};

std::vector<std::string> worker_args(std::vector<std::string> options,
                                     const std::vector<std::string>& handler) {
    options.insert(options.begin(), kHeartbeat.begin(), kHeartbeat.end());
    options.insert(options.end(), handler.begin(), handler.end());
    return options;
}

// `count` lines holding `payload`.
std::string repeated_lines(int count, const std::string& payload) {
    std::string input;
    for (int i = 0; i < count; ++i) input += payload + "\n";
    return input;
}

// The "worker" field of the results `worker` produces: "host:pid".
std::string worker_name(const Process& worker) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    return std::string(host) + ":" + std::to_string(worker.pid());
}

// How many of the results the sink has written so far came from `worker`.
std::size_t results_from(const Process& sink, const Process& worker) {
    const std::string name = worker_name(worker);
    std::size_t count = 0;
    for (const auto& line : split_lines(sink.stdout_text())) {
        if (nlohmann::json::parse(line).at("worker") == name) ++count;
    }
    return count;
}

// Whether the sink has written a result for every id 1..total.
bool every_id_written(const Process& sink, std::uint64_t total) {
    return take_census(sink.stdout_text(), total).missing.empty();
}

// The number N in a stderr line "... PREFIX N ...", or nullopt.
std::optional<long> number_after(const std::string& text, const std::string& prefix,
                                 const std::string& suffix) {
    std::smatch match;
    if (!std::regex_search(text, match, std::regex(prefix + "([0-9]+)" + suffix))) {
        return std::nullopt;
    }
    return std::stol(match[1]);
}

// Waits until `count` workers are connected to the ventilator's tcp tasks socket.
::testing::AssertionResult workers_connected(const Pipeline& pipeline, std::size_t count) {
    const int port = tcp_port(pipeline.endpoints().tasks);
    if (wait_for([&] { return accepted_connections(port) >= count; }, deadline_in(10s))) {
        return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << accepted_connections(port) << " of " << count << " workers connected";
}

// Checks the end of a batch that should have gone well: both exit 0, every id exactly once
// and ok.
void expect_every_task_once_and_ok(Process& sink, Process& ventilator, std::uint64_t total,
                                   Deadline deadline) {
    ASSERT_EQ(sink.wait_for_exit(deadline), 0) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline), 0) << ventilator.describe();
    const Census census = take_census(sink.stdout_text(), total);
    EXPECT_TRUE(census.exact()) << census.describe() << sink.describe() << ventilator.describe();
    EXPECT_TRUE(census.not_with_status("ok").empty())
        << census.not_with_status("ok").size() << " results not ok\n"
        << sink.describe();
}

// "No task lost when a worker dies": kill -9 one of four workers in the middle of a
// 10,000-task batch; its tasks are re-sent and every result is written exactly once.
TEST(Reliability, KilledWorkerLosesNoTaskOfTenThousand) {
    constexpr int kTasks = 10'000;
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl"});
    Process& ventilator = pipeline.start_ventilator(Stdin::held_open(), kShortLiveness);
    for (int i = 0; i < 4; ++i) {
        pipeline.start_worker(worker_args({"-c", "4"}, {"--builtin", "sleep"}));
    }
    ASSERT_TRUE(workers_connected(pipeline, 4));
    ventilator.finish_stdin(repeated_lines(kTasks, "3"));

    ASSERT_TRUE(wait_for([&] { return results_written(sink) >= 2000; }, deadline_in(30s)))
        << results_written(sink) << " results\n"
        << sink.describe();
    ASSERT_TRUE(sink.running()) << "the batch ended before the fault\n" << sink.describe();
    Process& victim = *pipeline.workers()[1];
    victim.signal(SIGKILL);
    EXPECT_EQ(victim.wait_for_exit(deadline_in(5s)), 128 + SIGKILL);

    expect_every_task_once_and_ok(sink, ventilator, kTasks, deadline_in(60s));
    EXPECT_TRUE(ventilator.wait_for_stderr("re-sending task", deadline_in(1s)))
        << "the killed worker's tasks were not re-sent\n"
        << ventilator.describe();
}

// The same with tasks and results in groups (docs/protocol.md, `tasks`, `results`): built-in
// echo workers are fast, so their capacity, and with it the size of the frames they take, grows
// to hundreds of tasks. A worker stopped, then killed, with groups in its socket loses none of
// their tasks, and none is written twice.
TEST(Reliability, KilledWorkerLosesNoTaskOfAGroup) {
    constexpr int kTasks = 100'000;
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl"});
    Process& ventilator = pipeline.start_ventilator(Stdin::held_open(), kShortLiveness);
    for (int i = 0; i < 3; ++i) pipeline.start_worker(worker_args({}, {"--builtin", "echo"}));
    ASSERT_TRUE(workers_connected(pipeline, 3));
    ventilator.finish_stdin(repeated_lines(kTasks, "a payload of some forty bytes, or so..."));

    ASSERT_TRUE(wait_for([&] { return results_written(sink) >= kTasks / 4; }, deadline_in(60s)))
        << results_written(sink) << " results\n"
        << sink.describe();
    ASSERT_TRUE(sink.running()) << "the batch ended before the fault\n" << sink.describe();
    Process& victim = *pipeline.workers()[1];
    victim.signal(SIGSTOP);  // groups pile up in its socket until their deadlines pass
    EXPECT_TRUE(ventilator.wait_for_stderr("re-sending task", deadline_in(30s)))
        << "the stopped worker's tasks were not re-sent\n"
        << ventilator.describe();
    victim.signal(SIGKILL);
    EXPECT_EQ(victim.wait_for_exit(deadline_in(5s)), 128 + SIGKILL);

    expect_every_task_once_and_ok(sink, ventilator, kTasks, deadline_in(120s));
    const auto summary = ventilator.wait_for_stderr("batch complete:", deadline_in(1s));
    ASSERT_TRUE(summary) << ventilator.describe();
    const std::optional<long> sends = number_after(*summary, "", " sends in");
    const std::optional<long> frames = number_after(*summary, "sends in ", " frames");
    ASSERT_TRUE(sends && frames) << *summary;
    EXPECT_GE(*sends, kTasks) << *summary;
    EXPECT_LT(*frames * 4, *sends) << "the tasks did not go out in groups\n" << *summary;
}

// "kill -STOP a worker for longer than the liveness timeout: its tasks are done elsewhere; then
// kill -CONT it: its late results are dropped, not printed twice." The batch is held open (the
// ventilator's input has not ended) until the late results are in, so that the sink is still
// there to drop them.
TEST(Reliability, StoppedWorkersTasksAreDoneElsewhereAndItsLateResultsDropped) {
    constexpr int kTasks = 40;
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl"});
    Process& ventilator = pipeline.start_ventilator(Stdin::held_open(), kShortLiveness);
    // 200 ms tasks, two at a time: a busy worker always holds some.
    Process& stalled = pipeline.start_worker(worker_args({"-c", "2"}, {"--builtin", "sleep"}));
    pipeline.start_worker(worker_args({"-c", "2"}, {"--builtin", "sleep"}));
    ASSERT_TRUE(workers_connected(pipeline, 2));
    ventilator.feed_stdin(repeated_lines(kTasks, "200"));

    ASSERT_TRUE(wait_for([&] { return results_from(sink, stalled) >= 1; }, deadline_in(10s)))
        << sink.stdout_text() << sink.describe();
    ASSERT_LT(results_written(sink), kTasks / 2u) << "too late to stall the worker mid-batch";
    stalled.signal(SIGSTOP);

    // One liveness timeout with no heartbeat, and its tasks go to the other worker: the first
    // re-sent task produces its result, while the stalled worker is still stopped.
    EXPECT_TRUE(ventilator.wait_for_stderr("re-sending task", deadline_in(10s)))
        << ventilator.describe();
    const bool resent_task_done = wait_for(
        [&] {
            for (const auto& result : parse_json_lines(sink.stdout_text())) {
                if (result.at("attempt").get<int>() >= 2) return true;
            }
            return false;
        },
        deadline_in(10s));
    stalled.signal(SIGCONT);
    ASSERT_TRUE(resent_task_done) << sink.stdout_text() << ventilator.describe();
    ASSERT_TRUE(wait_for([&] { return every_id_written(sink, kTasks); }, deadline_in(30s)))
        << take_census(sink.stdout_text(), kTasks).describe() << ventilator.describe();

    // The late results: SIGTERM makes the stalled worker finish what it runs and send the
    // results before it exits; only then does the batch end.
    stalled.signal(SIGTERM);
    ASSERT_EQ(stalled.wait_for_exit(deadline_in(10s)), 0) << stalled.describe();
    const auto reported = number_after(stalled.stderr_text(), "stopped after ", " tasks");
    ASSERT_TRUE(reported) << stalled.describe();
    const auto completed = static_cast<std::size_t>(*reported);
    ventilator.close_stdin();

    expect_every_task_once_and_ok(sink, ventilator, kTasks, deadline_in(20s));
    // Whatever the stalled worker completed and the sink did not write was dropped; and the
    // tasks it held when stopped ran twice, there and elsewhere, so something was dropped.
    const std::size_t written = results_from(sink, stalled);
    const auto dropped = static_cast<std::size_t>(
        number_after(sink.stderr_text(), ", ", " duplicate results dropped").value_or(0));
    EXPECT_GE(dropped + written, completed)
        << "results of the stalled worker neither written nor dropped\n"
        << sink.describe() << stalled.describe();
    EXPECT_GE(dropped, 1u) << "no task ran twice\n" << sink.describe() << stalled.describe();
}

// The same stall, lasting several liveness timeouts: the batch completes while the worker is
// stopped, and no task is reported lost, since live workers were there to run every task.
TEST(Reliability, WorkerStoppedForSeveralLivenessTimeoutsLosesNoTask) {
    constexpr int kTasks = 40;
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl"});
    Process& ventilator = pipeline.start_ventilator(Stdin::held_open(), kShortLiveness);
    Process& stalled = pipeline.start_worker(worker_args({"-c", "2"}, {"--builtin", "sleep"}));
    pipeline.start_worker(worker_args({"-c", "2"}, {"--builtin", "sleep"}));
    ASSERT_TRUE(workers_connected(pipeline, 2));
    ventilator.finish_stdin(repeated_lines(kTasks, "200"));

    ASSERT_TRUE(wait_for([&] { return results_from(sink, stalled) >= 1; }, deadline_in(10s)))
        << sink.describe();
    stalled.signal(SIGSTOP);

    const auto deadline = deadline_in(60s);
    const auto sink_status = sink.wait_for_exit(deadline);
    stalled.signal(SIGCONT);
    ASSERT_TRUE(sink_status) << sink.describe();
    const Census census = take_census(sink.stdout_text(), kTasks);
    EXPECT_TRUE(census.exact()) << census.describe();
    EXPECT_TRUE(census.with_status("lost").empty())
        << census.with_status("lost").size() << " tasks lost\n"
        << sink.describe() << ventilator.describe();
    EXPECT_EQ(sink_status, 0) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline), 0) << ventilator.describe();
}

// "Worker SIGTERM: takes no new task, finishes running ones, sends results, exits 0; its queued
// tasks are re-sent by the ventilator after the liveness timeout."
TEST(Reliability, TerminatedWorkerExitsZeroAndLosesNoTask) {
    constexpr int kTasks = 4000;
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl"});
    Process& ventilator = pipeline.start_ventilator(Stdin::held_open(), kShortLiveness);
    for (int i = 0; i < 3; ++i) {
        pipeline.start_worker(worker_args({"-c", "2"}, {"--builtin", "sleep"}));
    }
    ASSERT_TRUE(workers_connected(pipeline, 3));
    ventilator.finish_stdin(repeated_lines(kTasks, "2"));

    ASSERT_TRUE(wait_for([&] { return results_written(sink) >= 1000; }, deadline_in(30s)))
        << sink.describe();
    ASSERT_TRUE(sink.running()) << "the batch ended before the fault\n" << sink.describe();
    Process& leaving = *pipeline.workers()[0];
    leaving.signal(SIGTERM);
    EXPECT_EQ(leaving.wait_for_exit(deadline_in(10s)), 0) << leaving.describe();

    expect_every_task_once_and_ok(sink, ventilator, kTasks, deadline_in(60s));
}

// Workers that come and go all the time: one stable worker, and another killed with SIGKILL and
// replaced about every 1.5 s for as long as the batch runs.
TEST(Reliability, BatchCompletesWhileWorkersAreKilledAndRestarted) {
    constexpr int kTasks = 1500;
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl"});
    // Every kill re-sends what the killed worker held, and a re-sent task may be caught by the
    // next kill too: more attempts than the default 3, so that bad luck is not reported lost.
    std::vector<std::string> options = kShortLiveness;
    options.insert(options.end(), {"--max-attempts", "10"});
    Process& ventilator = pipeline.start_ventilator(Stdin::held_open(), options);
    const auto args = worker_args({"-c", "2"}, {"--builtin", "sleep"});
    pipeline.start_worker(args);
    ASSERT_TRUE(workers_connected(pipeline, 1));
    ventilator.finish_stdin(repeated_lines(kTasks, "10"));

    int kills = 0;
    const auto deadline = deadline_in(60s);
    while (sink.running() && Clock::now() < deadline) {
        Process& doomed = pipeline.start_worker(args);
        // A bounded lifetime, cut short if the batch ends.
        if (wait_for([&] { return !sink.running(); }, deadline_in(1500ms))) break;
        doomed.signal(SIGKILL);
        ASSERT_TRUE(doomed.wait_for_exit(deadline_in(5s))) << doomed.describe();
        ++kills;
    }
    EXPECT_GE(kills, 2) << "the batch was too short to restart workers during it";

    expect_every_task_once_and_ok(sink, ventilator, kTasks, deadline);
}

// Issue 10: "A task whose handler kills its worker also makes 1-2 innocent tasks `lost` without
// ever running them ... Heartbeats don't say which held tasks have started, so every held task
// counts an attempt." With one slot per worker nothing runs beside the poison; the tasks queued
// on the worker it kills never started there, and with --max-attempts 1 any attempt counted
// against them would make them lost.
TEST(Reliability, TasksQueuedBesideAPoisonTaskAreNotLost) {
    std::string input = "poison\n";
    for (int i = 2; i <= 12; ++i) input += "task-" + std::to_string(i) + "\n";
    constexpr std::uint64_t kTasks = 12;

    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl"});
    std::vector<std::string> options = kShortLiveness;
    options.insert(options.end(), {"--max-attempts", "1"});
    Process& ventilator = pipeline.start_ventilator(Stdin::data(input), options);
    // The poison runs long enough for the worker to take more tasks, then kills it ($PPID).
    const auto args = worker_args({"-c", "1"}, {"--shell", R"(if [ "$1" = poison ]; then
        sleep 0.5; kill -9 $PPID; fi; sleep 0.05; echo "$1")"});
    Process& victim = pipeline.start_worker(args);
    ASSERT_TRUE(victim.wait_for_exit(deadline_in(20s))) << "the poison did not kill its worker";
    pipeline.start_worker(args);

    ASSERT_EQ(sink.wait_for_exit(deadline_in(40s)), 1) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline_in(10s)), 1) << ventilator.describe();
    const Census census = take_census(sink.stdout_text(), kTasks);
    EXPECT_TRUE(census.exact()) << census.describe() << sink.describe();
    EXPECT_EQ(census.not_with_status("ok"), std::vector<std::uint64_t>{1})
        << sink.stdout_text() << ventilator.describe();
    EXPECT_TRUE(ventilator.wait_for_stderr("no attempt is counted", deadline_in(1s)))
        << "no task was queued on the poisoned worker: the test proves nothing\n"
        << ventilator.describe();
}

// A poison task kills every worker that runs it: after --max-attempts sends it is reported
// lost ("task N lost: no result after K attempts", status "lost"), every other task has its
// result once, and the sink and the ventilator exit 1.
TEST(Reliability, PoisonTaskIsReportedLostAfterMaxAttempts) {
    std::string input;
    for (int i = 1; i <= 15; ++i) input += "task-" + std::to_string(i) + "\n";
    input += "poison\n";
    constexpr std::uint64_t kPoisonId = 16;
    for (int i = 17; i <= 30; ++i) input += "task-" + std::to_string(i) + "\n";
    constexpr std::uint64_t kTasks = 30;

    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl"});
    std::vector<std::string> options = kShortLiveness;
    options.insert(options.end(), {"--max-attempts", "3"});
    Process& ventilator = pipeline.start_ventilator(Stdin::data(input), options);
    // $PPID of the shell is the worker.
    const auto args = worker_args(
        {"-c", "2"}, {"--shell", R"(if [ "$1" = poison ]; then kill -9 $PPID; fi; echo "$1")"});

    // Two workers alive at all times: those the poison kills are replaced.
    int started = 0;
    const auto deadline = deadline_in(40s);
    while (sink.running() && Clock::now() < deadline) {
        int alive = 0;
        for (const auto& worker : pipeline.workers()) alive += worker->running() ? 1 : 0;
        for (; alive < 2; ++alive, ++started) pipeline.start_worker(args);
        wait_for([&] { return !sink.running(); }, deadline_in(50ms));
    }

    ASSERT_EQ(sink.wait_for_exit(deadline), 1) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline), 1) << ventilator.describe();
    EXPECT_GE(started, 2 + 3) << "the poison did not kill a worker on each of its 3 attempts";
    EXPECT_TRUE(sink.wait_for_stderr("task 16 lost: no result after 3 attempts", deadline_in(1s)))
        << sink.describe();

    const Census census = take_census(sink.stdout_text(), kTasks);
    EXPECT_TRUE(census.exact()) << census.describe() << sink.describe();
    EXPECT_EQ(census.not_with_status("ok"), std::vector<std::uint64_t>{kPoisonId})
        << sink.stdout_text();
    ASSERT_TRUE(census.results.contains(kPoisonId));
    EXPECT_EQ(census.results.at(kPoisonId).at("status"), "lost");
    EXPECT_EQ(census.results.at(kPoisonId).at("attempt"), 3);
    for (const auto& [id, result] : census.results) {
        if (id != kPoisonId) {
            EXPECT_EQ(result_bytes(result), "task-" + std::to_string(id) + "\n") << result.dump();
        }
    }
}

// "A task ... not named in any worker heartbeat for that long is re-sent": a task that runs
// longer than the liveness timeout on a live worker is named in its heartbeats, so it runs once.
TEST(Reliability, LongTaskOnALiveWorkerIsNotRunTwice) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl"});
    Process& ventilator = pipeline.start_ventilator(Stdin::data("4000\n"), kShortLiveness);
    pipeline.start_worker(worker_args({"-c", "2"}, {"--builtin", "sleep"}));

    expect_every_task_once_and_ok(sink, ventilator, 1, deadline_in(20s));
    EXPECT_EQ(ventilator.stderr_text().find("re-sending"), std::string::npos)
        << ventilator.describe();
    const auto results = parse_json_lines(sink.stdout_text());
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].at("attempt"), 1) << results[0].dump();
    EXPECT_GE(results[0].at("duration_s").get<double>(), 4.0) << results[0].dump();
}

// The processes other than `except` whose command line contains `text`.
std::vector<pid_t> processes_mentioning(const std::string& text, pid_t except = 0) {
    std::vector<pid_t> pids;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
        const std::string name = entry.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream file(entry.path() / "cmdline", std::ios::binary);
        std::string cmdline((std::istreambuf_iterator<char>(file)),
                            std::istreambuf_iterator<char>());
        std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
        const pid_t pid = std::stoi(name);
        if (pid != except && cmdline.find(text) != std::string::npos) pids.push_back(pid);
    }
    return pids;
}

// "--timeout S and --kill-grace S: SIGTERM to the command's process group at the limit, SIGKILL
// after the grace; status timeout": a command that ignores SIGTERM, and its background child
// that ignores it too, are both killed.
TEST(Reliability, TimeoutKillsACommandThatIgnoresSigtermAndItsChildren) {
    TempDir dir;
    const std::string marker = dir.file("marker");
    // The child sleeps 37 s: a duration no other test uses, to find it in /proc.
    const std::string script =
        "trap '' TERM; (trap '' TERM; sleep 37; touch '" + marker + "') & sleep 30";
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl"});
    Process& ventilator = pipeline.start_ventilator(Stdin::data("x\n"), kShortLiveness);
    Process& worker = pipeline.start_worker(
        worker_args({"--timeout", "1", "--kill-grace", "1"}, {"--shell", script}));

    const auto deadline = deadline_in(15s);
    ASSERT_EQ(sink.wait_for_exit(deadline), 1) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline), 1) << ventilator.describe();
    const Census census = take_census(sink.stdout_text(), 1);
    ASSERT_TRUE(census.exact()) << census.describe();
    EXPECT_EQ(census.results.at(1).at("status"), "timeout") << census.results.at(1).dump();

    // The shells (their command line names the marker, as the worker's does) and the `sleep 37`
    // are gone.
    EXPECT_TRUE(wait_for(
        [&] {
            return processes_mentioning(marker, worker.pid()).empty() &&
                   processes_mentioning("sleep 37 ").empty();
        },
        deadline_in(5s)))
        << processes_mentioning(marker, worker.pid()).size() << " shells, "
        << processes_mentioning("sleep 37 ").size() << " sleeps left";
    EXPECT_FALSE(std::filesystem::exists(marker));
}

// Issue 10: "A task's background child outlives the task and the worker unless the task timed
// out". README: the worker kills what is left of a task's process group when the task ends;
// --keep-leftovers leaves it running. (Each test sleeps for a duration no other test uses, to
// find its sleep in /proc when both run at once.)
TEST(Reliability, ABackgroundChildDiesWithItsTask) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink();
    Process& ventilator = pipeline.start_ventilator(Stdin::data("x\n"));
    Process& worker =
        pipeline.start_worker(worker_args({}, {"--shell", "sleep 41 & echo started"}));

    ASSERT_EQ(sink.wait_for_exit(deadline_in(10s)), 0) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline_in(5s)), 0) << ventilator.describe();
    EXPECT_EQ(sink.stdout_text(), "started\n");
    EXPECT_TRUE(wait_for([&] { return processes_mentioning("sleep 41 ", worker.pid()).empty(); },
                         deadline_in(5s)))
        << "the task's background sleep is still running";
    EXPECT_TRUE(worker.running()) << "the worker went with it:\n" << worker.describe();
}

TEST(Reliability, KeepLeftoversLetsABackgroundChildOutliveItsTaskAndTheWorker) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink();
    Process& ventilator = pipeline.start_ventilator(Stdin::data("x\n"));
    Process& worker = pipeline.start_worker(
        worker_args({"--keep-leftovers"}, {"--shell", "sleep 43 & echo started"}));

    ASSERT_EQ(sink.wait_for_exit(deadline_in(10s)), 0) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline_in(5s)), 0) << ventilator.describe();
    EXPECT_EQ(sink.stdout_text(), "started\n");
    worker.signal(SIGTERM);
    EXPECT_EQ(worker.wait_for_exit(deadline_in(5s)), 0) << worker.describe();
    const std::vector<pid_t> left = processes_mentioning("sleep 43 ");
    EXPECT_EQ(left.size(), 1u) << "the background sleep did not outlive the worker";
    for (const pid_t pid : left) ::kill(pid, SIGKILL);
}

TEST(Reliability, TimeoutStopsAPlainCommandWithinSeconds) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl"});
    Process& ventilator = pipeline.start_ventilator(Stdin::data("10\n"), kShortLiveness);
    const auto started = Clock::now();
    pipeline.start_worker(worker_args({"--timeout", "1"}, {"--", "sleep"}));

    const auto deadline = deadline_in(6s);
    ASSERT_EQ(sink.wait_for_exit(deadline), 1) << sink.describe();
    EXPECT_LT(Clock::now() - started, 6s);
    EXPECT_EQ(ventilator.wait_for_exit(deadline_in(5s)), 1) << ventilator.describe();
    const Census census = take_census(sink.stdout_text(), 1);
    ASSERT_TRUE(census.exact()) << census.describe();
    const auto& result = census.results.at(1);
    EXPECT_EQ(result.at("status"), "timeout") << result.dump();
    EXPECT_LT(result.at("duration_s").get<double>(), 5.0) << result.dump();
}

// "Workers may come and go at any time": the ventilator waits with no worker; three join, then
// one leaves with SIGTERM and another dies with SIGKILL while the batch runs.
TEST(Reliability, WorkersJoiningLateAndLeavingMidBatchLoseNoTask) {
    constexpr int kTasks = 4000;
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl"});
    Process& ventilator =
        pipeline.start_ventilator(Stdin::data(repeated_lines(kTasks, "3")), kShortLiveness);
    // The ventilator is up and has reached the sink, with no worker anywhere.
    const int control_port = tcp_port(pipeline.endpoints().control);
    ASSERT_TRUE(wait_for([&] { return accepted_connections(control_port) >= 1; }, deadline_in(10s)))
        << ventilator.describe();
    EXPECT_EQ(results_written(sink), 0u);

    for (int i = 0; i < 3; ++i) {
        pipeline.start_worker(worker_args({"-c", "2"}, {"--builtin", "sleep"}));
    }
    ASSERT_TRUE(wait_for([&] { return results_written(sink) >= 800; }, deadline_in(30s)))
        << sink.describe();
    ASSERT_TRUE(sink.running()) << "the batch ended before the workers left\n" << sink.describe();
    Process& leaving = *pipeline.workers()[0];
    Process& dying = *pipeline.workers()[1];
    leaving.signal(SIGTERM);
    dying.signal(SIGKILL);
    EXPECT_EQ(leaving.wait_for_exit(deadline_in(10s)), 0) << leaving.describe();
    EXPECT_EQ(dying.wait_for_exit(deadline_in(5s)), 128 + SIGKILL);

    expect_every_task_once_and_ok(sink, ventilator, kTasks, deadline_in(60s));
}

// The highest VmHWM ("peak resident set size") of a running process, in KiB, read from
// /proc/PID/status until it exits (VmHWM only grows, so the last reading is its peak but for
// the last few milliseconds).
long peak_rss_until_exit(Process& process, Deadline deadline) {
    long peak = 0;
    wait_for(
        [&] {
            std::ifstream status("/proc/" + std::to_string(process.pid()) + "/status");
            for (std::string line; std::getline(status, line);) {
                if (line.rfind("VmHWM:", 0) == 0) peak = std::max(peak, std::stol(line.substr(6)));
            }
            return !process.running();
        },
        deadline, 20ms);
    return peak;
}

// Runs `tasks` echo tasks "task-%07d" through two workers; returns the ventilator's peak RSS in
// KiB, after checking that every task's output was written exactly once.
long ventilator_peak_rss(int tasks) {
    std::string input;
    input.reserve(static_cast<std::size_t>(tasks) * 13);
    char line[32];
    for (int i = 1; i <= tasks; ++i) {
        std::snprintf(line, sizeof line, "task-%07d\n", i);
        input += line;
    }
    Pipeline pipeline;
    Process& sink = pipeline.start_sink();
    Process& ventilator = pipeline.start_ventilator(Stdin::held_open());
    for (int i = 0; i < 2; ++i)
        pipeline.start_worker(worker_args({"-c", "2"}, {"--builtin", "echo"}));
    EXPECT_TRUE(workers_connected(pipeline, 2));
    ventilator.finish_stdin(std::move(input));

    const auto deadline = deadline_in(60s);
    const long peak = peak_rss_until_exit(ventilator, deadline);
    EXPECT_EQ(ventilator.wait_for_exit(deadline), 0) << ventilator.describe();
    EXPECT_EQ(sink.wait_for_exit(deadline), 0) << sink.describe();

    // Exactly once, checked without holding a million strings.
    std::vector<int> seen(static_cast<std::size_t>(tasks) + 1, 0);
    std::size_t unexpected = 0;
    for (const auto& output : split_lines(sink.stdout_text())) {
        int id = 0;
        if (std::sscanf(output.c_str(), "task-%7d", &id) == 1 && id >= 1 && id <= tasks) {
            ++seen[static_cast<std::size_t>(id)];
        } else {
            ++unexpected;
        }
    }
    const auto missing = std::count(seen.begin() + 1, seen.end(), 0);
    const auto duplicated =
        std::count_if(seen.begin() + 1, seen.end(), [](int count) { return count > 1; });
    EXPECT_EQ(missing, 0);
    EXPECT_EQ(duplicated, 0);
    EXPECT_EQ(unexpected, 0u);
    return peak;
}

// "--window N: most tasks sent and not yet acknowledged; bounds memory": the ventilator's peak
// memory does not grow with the size of the batch.
TEST(Reliability, VentilatorPeakMemoryDoesNotGrowWithTheBatch) {
    const long small = ventilator_peak_rss(10'000);
    const long large = ventilator_peak_rss(1'000'000);
    ASSERT_GT(small, 0) << "no VmHWM read";
    EXPECT_LT(large, small + 16 * 1024)
        << "peak RSS " << small << " KiB for 10,000 tasks, " << large << " KiB for 1,000,000";
}

// "--retries N: times a failed or timed-out task is run again on this worker before its result
// is sent": a command that fails once and then succeeds gives status ok.
TEST(Reliability, RetriedTaskThatSucceedsTheSecondTimeIsOk) {
    TempDir dir;
    // The first run of each payload leaves a marker and fails; the next one finds it.
    const std::string script = "if [ -e '" + dir.path().string() +
                               "'/\"$1\" ]; then echo \"$1\"; else : > '" + dir.path().string() +
                               "'/\"$1\"; exit 1; fi";
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl"});
    Process& ventilator = pipeline.start_ventilator(Stdin::data("a\nb\nc\n"), kShortLiveness);
    Process& worker = pipeline.start_worker(
        worker_args({"--retries", "2", "--retry-delay", "0.1"}, {"--shell", script}));

    expect_every_task_once_and_ok(sink, ventilator, 3, deadline_in(20s));
    const Census census = take_census(sink.stdout_text(), 3);
    for (const auto& [id, result] : census.results) {
        EXPECT_EQ(result.at("attempt"), 1) << result.dump();
        EXPECT_EQ(result.at("exit_code"), 0) << result.dump();
    }
    EXPECT_EQ(result_bytes(census.results.at(1)), "a\n");
    EXPECT_TRUE(worker.wait_for_stderr("failed, run 2 of 3", deadline_in(1s))) << worker.describe();
}

}  // namespace
}  // namespace taskpipe::testing
