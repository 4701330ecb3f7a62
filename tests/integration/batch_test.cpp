// Whole batches through a sink, a ventilator and workers over tcp loopback, checked against
// what the sink promises: "collects results, writes each task's output exactly once ... and
// knows when the batch is complete".
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "support/connections.hpp"
#include "support/pipeline.hpp"
#include "support/process.hpp"
#include "support/results.hpp"
#include "support/temp_dir.hpp"

namespace taskpipe::testing {
namespace {

using namespace std::chrono_literals;

// The number of tasks a worker reports in its last line, "worker info: stopped after N tasks".
std::optional<long> tasks_done_by(Process& worker) {
    const auto line = worker.wait_for_stderr("stopped after ", deadline_in(5s));
    if (!line) return std::nullopt;
    std::smatch match;
    if (!std::regex_search(*line, match, std::regex("stopped after ([0-9]+) tasks"))) {
        return std::nullopt;
    }
    return std::stol(match[1]);
}

// Issue acceptance: "10,000 tasks through 3 workers: every result exactly once, the sink and
// the ventilator exit 0, and every worker did some work."
TEST(Batch, TenThousandTasksThroughThreeWorkersYieldEachResultExactlyOnce) {
    constexpr int kTasks = 10'000;
    std::vector<std::string> payloads;
    std::string input;
    for (int i = 1; i <= kTasks; ++i) {
        payloads.push_back("payload-" + std::to_string(i));
        input += payloads.back() + "\n";
    }

    Pipeline pipeline;
    Process& sink = pipeline.start_sink();
    Process& ventilator = pipeline.start_ventilator(Stdin::held_open());
    for (int i = 0; i < 3; ++i) pipeline.start_worker({"-c", "2", "--builtin", "echo"});
    // A worker that connects after the batch is over gets no work, so the tasks are given only
    // once all three are connected.
    const int port = tcp_port(pipeline.endpoints().tasks);
    ASSERT_TRUE(wait_for([&] { return accepted_connections(port) >= 3; }, deadline_in(10s)))
        << accepted_connections(port) << " workers connected";
    ventilator.finish_stdin(input);

    const auto deadline = deadline_in(90s);
    ASSERT_EQ(sink.wait_for_exit(deadline), 0) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline), 0) << ventilator.describe();
    EXPECT_NE(sink.stderr_text().find("sink info: 10000 tasks, 0 failed, 0 lost"),
              std::string::npos)
        << sink.stderr_text();

    const Tally tally = tally_lines(sink.stdout_text(), payloads);
    EXPECT_TRUE(tally.exact()) << tally.describe();

    // "SIGTERM: finishes running tasks and exits 0", reporting what it did.
    long total = 0;
    for (const auto& worker : pipeline.workers()) worker->signal(SIGTERM);
    for (const auto& worker : pipeline.workers()) {
        EXPECT_EQ(worker->wait_for_exit(deadline_in(10s)), 0) << worker->describe();
        const auto done = tasks_done_by(*worker);
        ASSERT_TRUE(done) << worker->describe();
        EXPECT_GT(*done, 0) << "a worker got no work\n" << worker->describe();
        total += *done;
    }
    // A task may run twice (a re-send), but never zero times.
    EXPECT_GE(total, kTasks);
}

// Issue acceptance: a command failing for tasks 3 and 7 of `seq 1 10` makes the sink exit 1
// and report "2 failed"; the ventilator exits 1 too.
TEST(Batch, FailedTasksMakeTheSinkAndTheVentilatorExitOne) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl"});
    Process& ventilator = pipeline.start_ventilator(Stdin::data("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n"));
    pipeline.start_worker({"--shell", R"(test "$1" != 3 && test "$1" != 7)"});

    const auto deadline = deadline_in(30s);
    ASSERT_EQ(sink.wait_for_exit(deadline), 1) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline), 1) << ventilator.describe();
    EXPECT_NE(sink.stderr_text().find("sink info: 10 tasks, 2 failed, 0 lost"), std::string::npos)
        << sink.stderr_text();

    std::set<std::uint64_t> failed;
    std::set<std::uint64_t> ok;
    for (const auto& result : parse_json_lines(sink.stdout_text())) {
        const auto id = result.at("id").get<std::uint64_t>();
        if (result.at("status") == "failed") {
            failed.insert(id);
            EXPECT_EQ(result.at("exit_code"), 1) << result.dump();
        } else {
            EXPECT_EQ(result.at("status"), "ok") << result.dump();
            ok.insert(id);
        }
    }
    EXPECT_EQ(failed, (std::set<std::uint64_t>{3, 7}));
    EXPECT_EQ(ok, (std::set<std::uint64_t>{1, 2, 4, 5, 6, 8, 9, 10}));
}

// Issue acceptance: with empty input "the batch ends when the input has ended and every task is
// acknowledged": at once, with nothing to do and no worker needed.
TEST(Batch, EmptyInputCompletesWithZeroTasks) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink();
    Process& ventilator = pipeline.start_ventilator(Stdin::null());

    const auto deadline = deadline_in(20s);
    ASSERT_EQ(sink.wait_for_exit(deadline), 0) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline), 0) << ventilator.describe();
    EXPECT_NE(sink.stderr_text().find("sink info: 0 tasks, 0 failed, 0 lost"), std::string::npos)
        << sink.stderr_text();
    EXPECT_EQ(sink.stdout_text(), "");
}

// "A last record without a delimiter still counts": `printf 'a\nb'` is two tasks.
TEST(Batch, LastLineWithoutNewlineIsATask) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink();
    Process& ventilator = pipeline.start_ventilator(Stdin::data("first\nlast"));
    pipeline.start_worker({"--builtin", "echo"});

    const auto deadline = deadline_in(20s);
    ASSERT_EQ(sink.wait_for_exit(deadline), 0) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline), 0) << ventilator.describe();
    const Tally tally = tally_lines(sink.stdout_text(), {"first", "last"});
    EXPECT_TRUE(tally.exact()) << tally.describe();
}

// "read tasks from FILE instead of stdin".
TEST(Batch, TasksComeFromTheInputFileWhenGiven) {
    TempDir dir;
    const std::string path = dir.file("tasks");
    std::ofstream(path) << "from\nthe\nfile\n";

    Pipeline pipeline;
    Process& sink = pipeline.start_sink();
    Process& ventilator = pipeline.start_ventilator(Stdin::data("not\nthis\n"), {"-i", path});
    pipeline.start_worker({"--builtin", "echo"});

    const auto deadline = deadline_in(20s);
    ASSERT_EQ(sink.wait_for_exit(deadline), 0) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline), 0) << ventilator.describe();
    const Tally tally = tally_lines(sink.stdout_text(), {"from", "the", "file"});
    EXPECT_TRUE(tally.exact()) << tally.describe();
}

}  // namespace
}  // namespace taskpipe::testing
