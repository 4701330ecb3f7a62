// `taskpipe run`, the local case in one command (README "taskpipe run", taskpipe-run(1)):
// "a sink, a worker and a ventilator, over sockets in a private directory (no port), from
// stdin to stdout. Exits with the sink's status." Each test starts the real taskpipe, which
// starts the real programs beside it, with TMPDIR pointing into the test's own directory, so
// that the private directory can be seen (and seen to be gone).

#include <signal.h>
#include <sys/types.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/binaries.hpp"
#include "support/process.hpp"
#include "support/results.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

namespace taskpipe::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr auto kExitTimeout = 60s;

std::string seq(int from, int to, char end = '\n') {
    std::string text;
    for (int i = from; i <= to; ++i) text += std::to_string(i) + end;
    return text;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<std::string> sorted_lines(std::string_view text) {
    auto lines = split_lines(text);
    std::sort(lines.begin(), lines.end());
    return lines;
}

// Every process whose parent chain leads to `root` (from /proc/*/stat).
std::vector<pid_t> descendants(pid_t root) {
    std::multimap<pid_t, pid_t> children;
    for (const auto& entry : fs::directory_iterator("/proc")) {
        const std::string name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream stat(entry.path() / "stat");
        std::string line;
        if (!std::getline(stat, line)) continue;
        const auto close = line.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream rest(line.substr(close + 2));
        char state;
        pid_t parent;
        if (rest >> state >> parent) children.emplace(parent, std::stoi(name));
    }
    std::vector<pid_t> found;
    std::vector<pid_t> todo{root};
    while (!todo.empty()) {
        const pid_t pid = todo.back();
        todo.pop_back();
        for (auto [it, end] = children.equal_range(pid); it != end; ++it) {
            found.push_back(it->second);
            todo.push_back(it->second);
        }
    }
    return found;
}

std::string command_name(pid_t pid) {
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    std::getline(comm, name);
    return name;
}

bool alive(pid_t pid) {
    // A zombie still has a /proc entry; it counts as gone.
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return false;
    const auto close = line.rfind(')');
    return close != std::string::npos && line.substr(close + 2, 1) != "Z";
}

bool all_gone(const std::vector<pid_t>& pids) {
    return std::none_of(pids.begin(), pids.end(), alive);
}

// The ids recorded by the complete lines of a joblog (a last line cut short is left out).
std::set<int> joblog_ids(const std::string& path) {
    std::set<int> ids;
    std::string text = read_file(path);
    text.erase(text.rfind('\n') + 1);
    for (const std::string& line : split_lines(text)) {
        if (line.starts_with("id\t")) continue;
        ids.insert(std::stoi(line.substr(0, line.find('\t'))));
    }
    return ids;
}

class Run : public ::testing::Test {
  protected:
    // `taskpipe run ARGS...` with TMPDIR in this test's directory.
    std::unique_ptr<Process> run(const std::vector<std::string>& args,
                                 Stdin input = Stdin::null()) {
        std::vector<std::string> argv = {"/usr/bin/env", "TMPDIR=" + tmp_.string(), taskpipe_path(),
                                         "run"};
        argv.insert(argv.end(), args.begin(), args.end());
        return std::make_unique<Process>(std::move(argv), std::move(input));
    }

    // Whether the private directories of the runs are gone.
    bool no_private_directory_left() const { return fs::is_empty(tmp_); }

    TempDir dir_;
    fs::path tmp_ = [this] {
        fs::create_directory(dir_.path() / "tmp");
        return dir_.path() / "tmp";
    }();
};

// README quick start: "seq 1 10 | taskpipe run -j 2 --shell '...'".
TEST_F(Run, RunsTheBatchFromStdinToStdoutAndExitsZero) {
    auto process =
        run({"-j", "3", "--shell", "echo \"$1 squared is $(($1 * $1))\""}, Stdin::data(seq(1, 20)));
    ASSERT_EQ(process->wait_for_exit(deadline_in(kExitTimeout)), 0) << process->describe();
    std::vector<std::string> expected;
    for (int i = 1; i <= 20; ++i) {
        expected.push_back(std::to_string(i) + " squared is " + std::to_string(i * i));
    }
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(sorted_lines(process->stdout_text()), expected);
    EXPECT_NE(process->stderr_text().find("sink info: 20 tasks, 0 failed"), std::string::npos)
        << process->stderr_text();
    EXPECT_TRUE(no_private_directory_left());
}

TEST_F(Run, ExitsOneWhenSomeTasksFail) {
    auto process = run({"--shell", "test \"$1\" -ne 3"}, Stdin::data(seq(1, 5)));
    ASSERT_EQ(process->wait_for_exit(deadline_in(kExitTimeout)), 1) << process->describe();
    EXPECT_NE(process->stderr_text().find("task 3 failed (exit code 1)"), std::string::npos)
        << process->stderr_text();
}

// "-k, --keep-order writes results in input order": low ids take longest here.
TEST_F(Run, KeepOrderWritesResultsInInputOrder) {
    auto process =
        run({"-k", "-j", "5", "--shell", "sleep 0.0$((6 - $1)); echo $1"}, Stdin::data(seq(1, 5)));
    ASSERT_EQ(process->wait_for_exit(deadline_in(kExitTimeout)), 0) << process->describe();
    EXPECT_EQ(process->stdout_text(), seq(1, 5));
}

TEST_F(Run, NullSeparatedInputWithTag) {
    auto process = run({"-0", "--tag", "--", "printf", "<%s>", "{}"},
                       Stdin::data(std::string("a b\0it's\0", 9)));
    ASSERT_EQ(process->wait_for_exit(deadline_in(kExitTimeout)), 0) << process->describe();
    EXPECT_EQ(sorted_lines(process->stdout_text()),
              (std::vector<std::string>{"a b\t<a b>", "it's\t<it's>"}));
}

TEST_F(Run, JsonlResultsAndStatsGoWhereTheSinkPutsThem) {
    const std::string results = dir_.file("results");
    const std::string stats = dir_.file("stats.json");
    std::ofstream(dir_.file("tasks")) << seq(1, 3);
    auto process = run({"--jsonl", "--results", results, "--stats", stats, "-a", dir_.file("tasks"),
                        "--builtin", "echo"});
    ASSERT_EQ(process->wait_for_exit(deadline_in(kExitTimeout)), 0) << process->describe();
    const auto objects = parse_json_lines(process->stdout_text());
    ASSERT_EQ(objects.size(), 3u);
    for (const auto& object : objects) EXPECT_EQ(object.at("status"), "ok") << object;
    EXPECT_EQ(read_file(results + "/2/stdout"), "2\n");
    const auto summary = nlohmann::json::parse(read_file(stats));
    EXPECT_EQ(summary.at("complete"), true);
    EXPECT_EQ(summary.at("tasks"), 3);
}

// The README's example: "convert {} -resize 50% {.}.thumb.jpg" writes photo.thumb.jpg.
TEST_F(Run, ReplacementStringsReachTheCommand) {
    auto process =
        run({"--", "printf", "%s|%s|%s|%s|%s|%s\\n", "{}", "{.}", "{/}", "{//}", "{/.}", "{#}"},
            Stdin::data("x\ndir/sub/photo.jpg\n"));
    ASSERT_EQ(process->wait_for_exit(deadline_in(kExitTimeout)), 0) << process->describe();
    EXPECT_EQ(sorted_lines(process->stdout_text()),
              (std::vector<std::string>{"dir/sub/photo.jpg|dir/sub/photo|photo.jpg|dir/sub|photo|2",
                                        "x|x|x|.|x|1"}));
}

TEST_F(Run, UsageErrorsAreReportedBeforeAnythingStarts) {
    struct Bad {
        std::vector<std::string> args;
        std::string says;
    };
    const std::vector<Bad> cases = {
        {{}, "give exactly one of --builtin NAME, --shell SCRIPT or -- COMMAND"},
        {{"-j", "0", "--builtin", "echo"}, "-j must be between 1 and 4096"},
        {{"--timeout", "-1", "--builtin", "echo"}, "--timeout must be between"},
        {{"--builtin", "nosuch"}, "unknown built-in 'nosuch'"},
        {{"--resume", "--builtin", "echo"}, "--resume and --resume-failed need --joblog FILE"},
        {{"--jsonl", "--tag", "--builtin", "echo"}, "--tag is for raw output"},
        {{"-S", "4x/host", "--builtin", "echo"}, "-S '4x/host': N/HOST needs N from 1 to 4096"},
        {{"--no-such-option"}, "unrecognised option '--no-such-option'"},
    };
    for (const Bad& bad : cases) {
        SCOPED_TRACE(bad.says);
        auto process = run(bad.args, Stdin::data("1\n"));
        ASSERT_EQ(process->wait_for_exit(deadline_in(kExitTimeout)), 2) << process->describe();
        EXPECT_NE(process->stderr_text().find("run error: " + bad.says), std::string::npos)
            << process->stderr_text();
        EXPECT_EQ(process->stderr_text().find("sink"), std::string::npos)
            << "a program was started:\n"
            << process->stderr_text();
    }
}

// Like taskpipe-local before it: "If every worker exits before the batch completes, the run
// stops with status 2". Here no host can be reached, so no worker ever runs.
TEST_F(Run, NoWorkerAtAllIsAStartupError) {
    auto process =
        run({"-S", "nohost", "--ssh", "/bin/false", "--server", "127.0.0.1", "--builtin", "echo"},
            Stdin::data(seq(1, 3)));
    ASSERT_EQ(process->wait_for_exit(deadline_in(kExitTimeout)), 2) << process->describe();
    EXPECT_NE(
        process->stderr_text().find("run error: every worker exited before the batch was complete"),
        std::string::npos)
        << process->stderr_text();
    EXPECT_EQ(process->stdout_text(), "");
    EXPECT_TRUE(no_private_directory_left());
}

// "It needs no free port": two runs at once on one host do not meet.
TEST_F(Run, TwoRunsAtOnceDoNotMeet) {
    auto first = run({"--shell", "echo first $1"}, Stdin::data(seq(1, 50)));
    auto second = run({"--shell", "echo second $1"}, Stdin::data(seq(1, 50)));
    ASSERT_EQ(first->wait_for_exit(deadline_in(kExitTimeout)), 0) << first->describe();
    ASSERT_EQ(second->wait_for_exit(deadline_in(kExitTimeout)), 0) << second->describe();
    for (const auto& line : split_lines(first->stdout_text()))
        EXPECT_TRUE(line.starts_with("first"));
    for (const auto& line : split_lines(second->stdout_text())) {
        EXPECT_TRUE(line.starts_with("second"));
    }
    EXPECT_EQ(split_lines(first->stdout_text()).size(), 50u);
    EXPECT_EQ(split_lines(second->stdout_text()).size(), 50u);
}

// "SIGINT or SIGTERM ... is passed to all of them: no new task starts, the running ones finish,
// and the status is 3."
TEST_F(Run, SigtermStopsEveryProgramAndExitsThree) {
    const std::string joblog = dir_.file("jobs.tsv");
    std::string tasks;
    for (int i = 0; i < 2000; ++i) tasks += "20\n";  // --builtin sleep: 20 ms each
    auto process = run({"-j", "2", "--joblog", joblog, "--builtin", "sleep"}, Stdin::data(tasks));
    ASSERT_TRUE(wait_for([&] { return joblog_ids(joblog).size() >= 4; }, deadline_in(30s)))
        << process->describe();
    const auto tree = descendants(process->pid());
    ASSERT_GE(tree.size(), 3u);  // sink, ventilator, worker
    process->signal(SIGTERM);
    ASSERT_EQ(process->wait_for_exit(deadline_in(kExitTimeout)), 3) << process->describe();
    EXPECT_TRUE(wait_for([&] { return all_gone(tree); }, deadline_in(10s)));
    EXPECT_LT(joblog_ids(joblog).size(), 2000u);
    EXPECT_TRUE(no_private_directory_left());
}

// "A second signal stops them at once": a task that would run for a minute is stopped.
TEST_F(Run, ASecondSignalStopsTheRunningTasksAtOnce) {
    auto process = run({"-j", "1", "--shell", "sleep 60"}, Stdin::data("1\n"));
    pid_t sleeper = 0;
    pid_t sink = 0;
    ASSERT_TRUE(wait_for(
        [&] {
            for (pid_t pid : descendants(process->pid())) {
                if (command_name(pid) == "sleep") sleeper = pid;
                if (command_name(pid) == "taskpipe-sink") sink = pid;
            }
            return sleeper != 0 && sink != 0;
        },
        deadline_in(30s)))
        << process->describe();
    process->signal(SIGINT);
    // The sink stops at the first signal (status 3); the worker lets its task finish.
    ASSERT_TRUE(wait_for([&] { return !alive(sink); }, deadline_in(20s))) << process->describe();
    EXPECT_TRUE(alive(sleeper)) << "the first signal lets the running task finish";
    EXPECT_TRUE(process->running());
    process->signal(SIGINT);
    ASSERT_EQ(process->wait_for_exit(deadline_in(20s)), 3) << process->describe();
    EXPECT_TRUE(wait_for([&] { return !alive(sleeper); }, deadline_in(10s)));
}

// "Killed with SIGKILL, its programs get SIGTERM."
TEST_F(Run, ProgramsStopWhenTaskpipeRunIsKilled) {
    std::string tasks;
    for (int i = 0; i < 2000; ++i) tasks += "20\n";
    const std::string joblog = dir_.file("jobs.tsv");
    auto process = run({"-j", "2", "--joblog", joblog, "--builtin", "sleep"}, Stdin::data(tasks));
    ASSERT_TRUE(wait_for([&] { return joblog_ids(joblog).size() >= 2; }, deadline_in(30s)))
        << process->describe();
    const auto tree = descendants(process->pid());
    ASSERT_GE(tree.size(), 3u);
    ::kill(process->pid(), SIGKILL);
    EXPECT_TRUE(wait_for([&] { return all_gone(tree); }, deadline_in(20s)));
}

std::string tasks_for_resume(int count) {
    std::string tasks;
    for (int i = 1; i <= count; ++i) tasks += std::to_string(i) + "\n";
    return tasks;
}

// "--joblog FILE --resume: run the same command line again after an interruption, a crash or
// a reboot": here the whole process tree is killed with SIGKILL mid-batch.
TEST_F(Run, ResumeAfterTheWholeTreeIsKilledRunsOnlyWhatTheJoblogDoesNotRecord) {
    constexpr int kTasks = 300;
    const std::string joblog = dir_.file("jobs.tsv");
    const std::vector<std::string> args = {"-j",       "2",       "--joblog",           joblog,
                                           "--resume", "--shell", "echo $1; sleep 0.01"};
    auto first = run(args, Stdin::data(tasks_for_resume(kTasks)));
    ASSERT_TRUE(wait_for([&] { return joblog_ids(joblog).size() >= 30; }, deadline_in(30s)))
        << first->describe();
    // Freeze the tree so that nothing moves while it is killed.
    std::vector<pid_t> tree = descendants(first->pid());
    tree.push_back(first->pid());
    for (pid_t pid : tree) ::kill(pid, SIGSTOP);
    tree = descendants(first->pid());
    tree.push_back(first->pid());
    for (pid_t pid : tree) ::kill(pid, SIGKILL);
    first->wait_for_exit(deadline_in(kExitTimeout));
    ASSERT_TRUE(wait_for([&] { return all_gone(tree); }, deadline_in(10s)));
    const std::set<int> recorded = joblog_ids(joblog);
    ASSERT_LT(recorded.size(), static_cast<std::size_t>(kTasks)) << "the batch was not cut short";
    std::set<int> first_output;
    for (const auto& line : split_lines(first->stdout_text())) first_output.insert(std::stoi(line));
    for (int id : recorded)
        EXPECT_TRUE(first_output.contains(id)) << id << " recorded, not written";

    auto second = run(args, Stdin::data(tasks_for_resume(kTasks)));
    ASSERT_EQ(second->wait_for_exit(deadline_in(kExitTimeout)), 0) << second->describe();
    std::set<int> second_output;
    for (const auto& line : split_lines(second->stdout_text())) {
        EXPECT_TRUE(second_output.insert(std::stoi(line)).second) << line << " written twice";
    }
    std::set<int> expected;
    for (int id = 1; id <= kTasks; ++id) {
        if (!recorded.contains(id)) expected.insert(id);
    }
    EXPECT_EQ(second_output, expected);
    EXPECT_EQ(joblog_ids(joblog).size(), static_cast<std::size_t>(kTasks));
}

// "on the first run FILE does not exist and everything runs", as with parallel --resume.
TEST_F(Run, ResumeWithNoJoblogYetRunsEverything) {
    const std::string joblog = dir_.file("new.tsv");
    auto process =
        run({"--joblog", joblog, "--resume", "--builtin", "echo"}, Stdin::data(seq(1, 10)));
    ASSERT_EQ(process->wait_for_exit(deadline_in(kExitTimeout)), 0) << process->describe();
    EXPECT_EQ(split_lines(process->stdout_text()).size(), 10u);
    EXPECT_EQ(joblog_ids(joblog).size(), 10u);
}

// Issue 12, item 7. A payload "-o<file>" given to `sort {}` is sort's option -o: sort writes
// its (empty) input to that file. With --file-names it is the file name "./-o<file>".
TEST_F(Run, FileNamesKeepsADashPayloadFromBeingAnOption) {
    const std::string victim = dir_.file("victim");
    std::ofstream(victim) << "precious\n";
    auto guarded = run({"--file-names", "--", "sort", "{}"}, Stdin::data("-o" + victim + "\n"));
    ASSERT_EQ(guarded->wait_for_exit(deadline_in(kExitTimeout)), 1) << guarded->describe();
    EXPECT_EQ(read_file(victim), "precious\n");
    EXPECT_NE(guarded->stderr_text().find("./-o" + victim), std::string::npos)
        << guarded->stderr_text();
}

// The documented weakness the guard is for (GNU parallel has it too): without --file-names
// the payload is an option.
TEST_F(Run, WithoutFileNamesADashPayloadIsAnOption) {
    const std::string victim = dir_.file("victim");
    std::ofstream(victim) << "precious\n";
    auto process = run({"--", "sort", "{}"}, Stdin::data("-o" + victim + "\n"));
    ASSERT_EQ(process->wait_for_exit(deadline_in(kExitTimeout)), 0) << process->describe();
    EXPECT_EQ(read_file(victim), "");
}

// Issue 12, item 7: "worker -- sh -c 'echo {}' runs a payload's ; touch F". It still does (the
// command is the user's), and the worker says so at start-up.
TEST_F(Run, ShellProgramTextWithAReplacementStringIsWarnedAbout) {
    const std::string marker = dir_.file("ran");
    auto process = run({"--", "sh", "-c", "echo {}"}, Stdin::data("x; touch " + marker + "\n"));
    ASSERT_EQ(process->wait_for_exit(deadline_in(kExitTimeout)), 0) << process->describe();
    EXPECT_TRUE(fs::exists(marker));
    EXPECT_NE(process->stderr_text().find("worker warning: 'sh -c' gets a replacement string "
                                          "inside its program text"),
              std::string::npos)
        << process->stderr_text();
}

// Tasks typed on a terminal: the programs are not in the terminal's foreground process group,
// so taskpipe run reads the terminal and hands the lines on (a ventilator reading the terminal
// itself would be stopped by SIGTTIN).
TEST_F(Run, ReadsTasksTypedOnATerminal) {
    const std::string output = dir_.file("output");
    const std::string command = "exec env TMPDIR='" + tmp_.string() + "' '" + taskpipe_path() +
                                "' run --builtin echo > '" + output + "'";
    Process terminal({"/usr/bin/script", "-qec", command, "/dev/null"}, Stdin::held_open());
    ASSERT_TRUE(wait_for(
        [&] { return terminal.stdout_text().find("end them with ^D") != std::string::npos; },
        deadline_in(30s)))
        << terminal.describe();
    terminal.feed_stdin("first\nsecond\n\x04");
    ASSERT_EQ(terminal.wait_for_exit(deadline_in(kExitTimeout)), 0) << terminal.describe();
    EXPECT_EQ(sorted_lines(read_file(output)), (std::vector<std::string>{"first", "second"}));
}

}  // namespace
}  // namespace taskpipe::testing
