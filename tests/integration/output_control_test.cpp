// What operators see (README "Progress and summary", "Output control"): -k/--keep-order and its
// reorder window, --tag, --results DIR, failed tasks' stderr, the end summary and --stats, and
// the progress report on a terminal and off one.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/binaries.hpp"
#include "support/pipeline.hpp"
#include "support/process.hpp"
#include "support/results.hpp"
#include "support/temp_dir.hpp"

namespace taskpipe::testing {
namespace {

using namespace std::chrono_literals;

std::string numbers(int first, int last) {
    std::string text;
    for (int i = first; i <= last; ++i) text += std::to_string(i) + "\n";
    return text;
}

std::string read_file(const std::filesystem::path& path) {
    std::ifstream file(path, std::ios::binary);
    std::ostringstream text;
    text << file.rdbuf();
    return text.str();
}

std::size_t files_starting_with(const std::filesystem::path& dir, const std::string& prefix) {
    std::size_t count = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        if (entry.path().filename().string().starts_with(prefix)) ++count;
    }
    return count;
}

// The sink started under script(1) on a terminal `columns` wide, its stdout going to
// `output`; script's own stdout is what the terminal showed.
std::unique_ptr<Process> sink_on_terminal(const Endpoints& endpoints, int columns,
                                          const std::string& output) {
    const std::string command = "stty cols " + std::to_string(columns) + " rows 20; exec '" +
                                sink_path() + "' --bind " + endpoints.results + " --control " +
                                endpoints.control + " > '" + output + "'";
    return std::make_unique<Process>(
        std::vector<std::string>{"/usr/bin/script", "-qec", command, "/dev/null"});
}

// The status lines drawn on `screen`: each redraw is "\r\x1b[K" followed by the line, up to
// the next CR or newline; log lines (drawn the same way above the status line) are left out.
std::vector<std::string> status_lines(const std::string& screen) {
    std::vector<std::string> lines;
    for (std::size_t start = 0; (start = screen.find("\r\x1b[K", start)) != std::string::npos;) {
        start += 4;
        std::string line = screen.substr(start, screen.find_first_of("\r\n", start) - start);
        if (!line.empty() && line.find(" sink ") == std::string::npos) {
            lines.push_back(std::move(line));
        }
    }
    return lines;
}

// "-k/--keep-order: results written in input order". Low ids take longest, so completion order
// is roughly the reverse of input order.
TEST(KeepOrder, ResultsComeOutInInputOrderWhateverOrderTheyFinishIn) {
    constexpr int kTasks = 40;
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"-k"});
    Process& ventilator = pipeline.start_ventilator(Stdin::data(numbers(1, kTasks)));
    const std::string script =
        "sleep $(( (" + std::to_string(kTasks) + " - $1) / 8 )).0$(( $1 % 7 )); echo \"$1\"";
    pipeline.start_worker({"-c", "4", "--shell", script});
    pipeline.start_worker({"-c", "4", "--shell", script});

    const auto deadline = deadline_in(60s);
    ASSERT_EQ(sink.wait_for_exit(deadline), 0) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline), 0) << ventilator.describe();
    EXPECT_EQ(sink.stdout_text(), numbers(1, kTasks));
}

// "with memory bounded by a documented reorder window (state what happens when one slow task
// holds the window)": while task 1 runs, no task 1 + window or beyond is sent, so at most
// window - 1 results wait behind it; once it finishes, the batch completes in order.
TEST(KeepOrder, ASlowTaskHoldsTheReorderWindowAndNothingPastItIsSent) {
    constexpr int kTasks = 30;
    constexpr int kWindow = 5;
    TempDir dir;
    const std::string marks = dir.file("");
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"-k", "--reorder-window", std::to_string(kWindow)});
    Process& ventilator = pipeline.start_ventilator(Stdin::data(numbers(1, kTasks)));
    // Each task leaves a mark when it starts; task 1 waits until the test releases it.
    const std::string script = "touch \"" + marks + "ran.$1\"; if [ \"$1\" = 1 ]; then " +
                               "while [ ! -e \"" + marks + "release\" ]; do sleep 0.02; done; " +
                               "fi; echo \"$1\"";
    pipeline.start_worker({"-c", "4", "--shell", script});
    pipeline.start_worker({"-c", "4", "--shell", script});

    // Tasks 1 to 5 start (8 slots are free), and nothing beyond them.
    ASSERT_TRUE(wait_for([&] { return files_starting_with(dir.path(), "ran.") >= kWindow; },
                         deadline_in(20s)))
        << sink.describe();
    EXPECT_FALSE(wait_for([&] { return files_starting_with(dir.path(), "ran.") > kWindow; },
                          deadline_in(1500ms)))
        << "a task past the reorder window was sent while task 1 held it";
    for (int id = 1; id <= kWindow; ++id) {
        EXPECT_TRUE(std::filesystem::exists(dir.file("ran." + std::to_string(id)))) << id;
    }
    EXPECT_EQ(sink.stdout_text(), "") << "nothing may be written before task 1";

    std::ofstream(dir.file("release")).put('\n');
    const auto deadline = deadline_in(60s);
    ASSERT_EQ(sink.wait_for_exit(deadline), 0) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline), 0) << ventilator.describe();
    EXPECT_EQ(sink.stdout_text(), numbers(1, kTasks));
}

// README, Output control: "Interrupted with -k, the sink does not write held results out of
// order: they are lost from stdout". Its last words must say so, not count them as written.
TEST(KeepOrder, AnInterruptedSinkDoesNotCountHeldResultsAsWritten) {
    TempDir dir;
    const std::string marks = dir.file("");
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"-k", "--progress-interval", "0.1"});
    pipeline.start_ventilator(Stdin::data(numbers(1, 10)));
    // Task 1 waits for as long as the test's directory exists.
    pipeline.start_worker({"-c", "4", "--shell",
                           "if [ \"$1\" = 1 ]; then while [ -d \"" + marks +
                               "\" ]; do sleep 0.02; done; fi; echo \"$1\""});

    ASSERT_TRUE(sink.wait_for_stderr("progress: 9/10", deadline_in(30s))) << sink.describe();
    ASSERT_TRUE(wait_for([&] { return sink.catches_signal(SIGTERM); }, deadline_in(10s)));
    sink.signal(SIGTERM);
    ASSERT_EQ(sink.wait_for_exit(deadline_in(20s)), 3) << sink.describe();
    EXPECT_EQ(sink.stdout_text(), "");
    EXPECT_NE(
        sink.stderr_text().find(
            "interrupted: 0 results written of 10 tasks; 9 held back for -k were not written"),
        std::string::npos)
        << sink.stderr_text();
}

// "--tag: each output line prefixed with the task's input and a tab, as parallel --tag does."
TEST(Tag, EachOutputLineStartsWithTheInputAndATab) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--tag", "-k"});
    pipeline.start_ventilator(Stdin::data("a b\nsilent\nc\n"));
    pipeline.start_worker(
        {"--shell", R"([ "$1" = silent ] || printf 'one %s\ntwo' "$1")"});  // no final newline

    ASSERT_EQ(sink.wait_for_exit(deadline_in(30s)), 0) << sink.describe();
    EXPECT_EQ(sink.stdout_text(), "a b\tone a b\na b\ttwo\nc\tone c\nc\ttwo\n");
}

TEST(Tag, WithJsonLinesIsAUsageError) {
    Process sink({sink_path(), "--tag", "--jsonl", "--bind", "tcp://127.0.0.1:*", "--control",
                  "tcp://127.0.0.1:*"});
    ASSERT_EQ(sink.wait_for_exit(deadline_in(10s)), 2) << sink.describe();
    EXPECT_NE(sink.stderr_text().find("--tag is for raw output"), std::string::npos)
        << sink.describe();
}

// "--results DIR: each task's stdout and stderr stored as files (DIR/<id>/stdout, ...)."
TEST(ResultsDir, StoresEachTasksInputStdoutStderrAndResult) {
    TempDir dir;
    const std::filesystem::path results = dir.path() / "out";  // created by the sink
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--results", results.string()});
    pipeline.start_ventilator(Stdin::data("fine\nbad\n"));
    pipeline.start_worker(
        {"--shell", R"(echo "out of $1"; echo "err of $1" >&2; [ "$1" = fine ] || exit 5)"});

    ASSERT_EQ(sink.wait_for_exit(deadline_in(30s)), 1) << sink.describe();
    EXPECT_EQ(read_file(results / "1" / "input"), "fine");
    EXPECT_EQ(read_file(results / "1" / "stdout"), "out of fine\n");
    EXPECT_EQ(read_file(results / "1" / "stderr"), "err of fine\n");
    EXPECT_EQ(read_file(results / "2" / "stdout"), "out of bad\n");
    const auto meta = nlohmann::json::parse(read_file(results / "2" / "result.json"));
    EXPECT_EQ(meta.at("id"), 2);
    EXPECT_EQ(meta.at("status"), "failed");
    EXPECT_EQ(meta.at("exit_code"), 5);
    EXPECT_FALSE(meta.contains("stdout")) << meta.dump();
    EXPECT_EQ(nlohmann::json::parse(read_file(results / "1" / "result.json")).at("status"), "ok");
}

// "Failed tasks' stderr is shown (bounded) so that a user sees why without re-running."
TEST(FailureReport, ShowsTheEndOfAFailedTasksStderrAndStopsAfterTheLimit) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--show-failures", "2"});
    pipeline.start_ventilator(Stdin::data(numbers(1, 4)));
    pipeline.start_worker({"--shell", R"(seq 1 20 | sed 's/^/noise /' >&2;
        echo "cannot open photo-$1.jpg" >&2; exit 3)"});

    ASSERT_EQ(sink.wait_for_exit(deadline_in(30s)), 1) << sink.describe();
    const std::string err = sink.stderr_text();
    EXPECT_TRUE(
        std::regex_search(err, std::regex(R"(sink warning: task \d failed \(exit code 3\))")))
        << err;
    EXPECT_TRUE(
        std::regex_search(err, std::regex(R"(sink warning:   stderr: cannot open photo-\d\.jpg)")))
        << err;
    EXPECT_NE(err.find("stderr: noise 20"), std::string::npos) << err;
    EXPECT_EQ(err.find("stderr: noise 15"), std::string::npos) << "more than 5 lines shown:\n"
                                                               << err;
    std::size_t shown = 0;
    for (const auto& line : split_lines(err))
        shown += line.find(" failed (exit code 3)") != std::string::npos;
    EXPECT_EQ(shown, 2u) << err;
    EXPECT_NE(err.find("more tasks failed; they are not logged one by one"), std::string::npos)
        << err;
}

// "The end summary gives counts by status, wall time, throughput, latency p50/p95/p99 and a
// per-worker table (tasks, failures, busy time). --stats FILE writes the same as JSON."
TEST(Summary, StatsFileAndSummaryAgreeWithTheBatch) {
    constexpr int kTasks = 50;
    TempDir dir;
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--stats", dir.file("stats.json")});
    pipeline.start_ventilator(Stdin::data(numbers(1, kTasks)));
    const std::string script = R"(sleep 0.01; [ $(( $1 % 10 )) -ne 0 ])";  // 5 of 50 fail
    pipeline.start_worker({"-c", "2", "--shell", script});
    pipeline.start_worker({"-c", "2", "--shell", script});

    ASSERT_EQ(sink.wait_for_exit(deadline_in(60s)), 1) << sink.describe();
    const auto stats = nlohmann::json::parse(read_file(dir.file("stats.json")));
    SCOPED_TRACE(stats.dump(2));
    EXPECT_EQ(stats.at("complete"), true);
    EXPECT_EQ(stats.at("tasks"), kTasks);
    EXPECT_EQ(stats.at("status").at("ok"), kTasks - 5);
    EXPECT_EQ(stats.at("status").at("failed"), 5);
    EXPECT_EQ(stats.at("status").at("lost"), 0);
    EXPECT_GT(stats.at("wall_s").get<double>(), 0.0);
    EXPECT_GT(stats.at("tasks_per_s").get<double>(), 0.0);
    const auto& latency = stats.at("latency_s");
    EXPECT_EQ(latency.at("count"), kTasks);
    EXPECT_GE(latency.at("p50").get<double>(), 0.005);  // every task sleeps 10 ms
    EXPECT_LE(latency.at("p50").get<double>(), latency.at("p95").get<double>());
    EXPECT_LE(latency.at("p95").get<double>(), latency.at("p99").get<double>());
    int tasks = 0;
    int failed = 0;
    for (const auto& worker : stats.at("workers")) {
        tasks += worker.at("tasks").get<int>();
        failed += worker.at("failed").get<int>();
        EXPECT_GT(worker.at("busy_s").get<double>(), 0.0);
    }
    EXPECT_EQ(tasks, kTasks);
    EXPECT_EQ(failed, 5);
    EXPECT_EQ(stats.at("workers").size(), 2u);

    const std::string err = sink.stderr_text();
    EXPECT_NE(err.find("sink info: 50 tasks, 5 failed, 0 lost, "), std::string::npos) << err;
    EXPECT_NE(err.find("sink info: by status: 45 ok, 5 failed, 0 error, 0 timeout, 0 lost"),
              std::string::npos)
        << err;
    EXPECT_TRUE(std::regex_search(
        err,
        std::regex(
            R"(latency, task sent to result received: p50 [0-9.]+ ms, p95 [0-9.]+ ms, p99 [0-9.]+ ms)")))
        << err;
    EXPECT_NE(err.find("busy s"), std::string::npos) << err;
}

// "When stderr is not a terminal: one plain log line every few seconds instead. --quiet turns
// both off. Progress never goes to stdout."
TEST(Progress, OffATerminalIsAPlainLogLineEveryInterval) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--progress-interval", "0.2"});
    pipeline.start_ventilator(Stdin::data(numbers(1, 20)));
    pipeline.start_worker({"-c", "2", "--shell", R"(sleep 0.1; echo "$1")"});

    ASSERT_EQ(sink.wait_for_exit(deadline_in(60s)), 0) << sink.describe();
    std::size_t progress = 0;
    for (const auto& line : split_lines(sink.stderr_text())) {
        if (line.find("progress: ") == std::string::npos) continue;
        ++progress;
        EXPECT_TRUE(is_log_line(line, "sink", "info")) << line;
        EXPECT_TRUE(
            std::regex_search(line, std::regex(R"(progress: \d+/\d+\+? .*done, .*workers?$)")))
            << line;
        EXPECT_EQ(line.find('\r'), std::string::npos) << "no terminal codes off a terminal";
    }
    EXPECT_GE(progress, 2u) << sink.stderr_text();
    EXPECT_EQ(tally_lines(sink.stdout_text(), split_lines(numbers(1, 20))).exact(), true)
        << sink.stdout_text();
}

TEST(Progress, QuietTurnsItOff) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--quiet", "--progress-interval", "0.1"});
    pipeline.start_ventilator(Stdin::data(numbers(1, 10)));
    pipeline.start_worker({"--shell", R"(sleep 0.05; echo "$1")"});

    ASSERT_EQ(sink.wait_for_exit(deadline_in(60s)), 0) << sink.describe();
    EXPECT_EQ(sink.stderr_text().find("progress"), std::string::npos) << sink.stderr_text();
}

// "When stderr is a terminal, the sink shows a live progress line: done/total, failed, rate,
// ETA, workers seen." Run under script(1) with a 50-column terminal: the line is redrawn in
// place (CR, erase to end of line) and never wider than the terminal.
TEST(Progress, OnATerminalIsOneLineRedrawnWithinTheWidth) {
    TempDir dir;
    const Endpoints endpoints = Endpoints::ipc(dir);
    const auto terminal_process = sink_on_terminal(endpoints, 50, dir.file("output.txt"));
    Process& terminal = *terminal_process;
    Pipeline pipeline(endpoints);
    Process& ventilator = pipeline.start_ventilator(Stdin::data(numbers(1, 30)));
    pipeline.start_worker({"-c", "2", "--shell", R"(sleep 0.1; echo "$1")"});

    ASSERT_EQ(ventilator.wait_for_exit(deadline_in(60s)), 0) << ventilator.describe();
    ASSERT_EQ(terminal.wait_for_exit(deadline_in(20s)), 0) << terminal.describe();
    const std::string screen = terminal.stdout_text();
    EXPECT_NE(screen.find("\r\x1b[K"), std::string::npos) << screen;
    std::size_t drawn = 0;
    for (const std::string& line : status_lines(screen)) {
        if (line.find(" done") == std::string::npos) continue;
        ++drawn;
        EXPECT_LE(line.size(), 49u) << line;
        EXPECT_TRUE(std::regex_search(line, std::regex(R"(^\d+/\d+\+? )"))) << line;
    }
    EXPECT_GE(drawn, 2u) << screen;
    EXPECT_NE(screen.find("sink info: 30 tasks, 0 failed, 0 lost"), std::string::npos) << screen;
    EXPECT_EQ(tally_lines(read_file(dir.file("output.txt")), split_lines(numbers(1, 30))).exact(),
              true);
}

// On a narrow terminal the line still fits, and what it shows reads whole: fields that do not fit
// are left out rather than cut in the middle ("ETA" without its value, "1 work").
TEST(Progress, OnANarrowTerminalLeavesOutWholeFieldsRatherThanCuttingThem) {
    TempDir dir;
    const Endpoints endpoints = Endpoints::ipc(dir);
    const auto terminal_process = sink_on_terminal(endpoints, 30, "/dev/null");
    Process& terminal = *terminal_process;
    Pipeline pipeline(endpoints);
    Process& ventilator = pipeline.start_ventilator(Stdin::data(numbers(1, 40)));
    pipeline.start_worker({"-c", "2", "--shell", R"(sleep 0.1; [ "$1" != 3 ])"});

    ASSERT_EQ(ventilator.wait_for_exit(deadline_in(60s)), 1) << ventilator.describe();
    ASSERT_EQ(terminal.wait_for_exit(deadline_in(20s)), 1) << terminal.describe();
    const std::string screen = terminal.stdout_text();
    const std::regex whole(
        R"(^\d+/\d+\+?( \(\d+%\))? done(, \d+ failed)?(, ETA (-|[\d:]+))?(, (-|[\d.]+)/s)?(, \d+ workers?)?$)");
    std::size_t drawn = 0;
    for (const std::string& line : status_lines(screen)) {
        ++drawn;
        EXPECT_LE(line.size(), 29u) << line;
        EXPECT_TRUE(std::regex_search(line, whole)) << line;
    }
    EXPECT_GE(drawn, 2u) << screen;
}

}  // namespace
}  // namespace taskpipe::testing
