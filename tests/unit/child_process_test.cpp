// One running command (worker/child_process.hpp).
//
// "A child process in its own process group, with its stdout and stderr on non-blocking pipes
// that the worker's event loop polls, and a pidfd that becomes readable when it exits."
// "The destructor is quiet (it kills the process group with SIGKILL and reaps the child if it
// still runs); finish() is the loud, explicit end."

#include "child_process.hpp"

#include <poll.h>
#include <signal.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace taskpipe {
namespace {

using namespace std::chrono_literals;
using Argv = std::vector<std::string>;

constexpr std::size_t kMaxStdout = 1u << 20;
constexpr std::size_t kStderrTail = 4096;

Argv shell(const std::string& script) { return {"sh", "-c", script}; }

// Polls the child's descriptors the way the worker's loop does, reading output as it becomes
// readable, until exit_fd() is readable; then finish(). nullopt if that takes over 10 seconds.
std::optional<ExitStatus> wait_for_exit(ChildProcess& child) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    for (;;) {
        std::vector<pollfd> fds{{child.exit_fd(), POLLIN, 0}};
        if (child.stdout_fd() >= 0) fds.push_back({child.stdout_fd(), POLLIN, 0});
        if (child.stderr_fd() >= 0) fds.push_back({child.stderr_fd(), POLLIN, 0});
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left <= 0ms) return std::nullopt;
        const int n = ::poll(fds.data(), fds.size(), static_cast<int>(left.count()));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::nullopt;
        bool exited = false;
        for (const pollfd& p : fds) {
            if (p.revents == 0) continue;
            if (p.fd == child.exit_fd()) {
                exited = true;
            } else if (p.fd == child.stdout_fd()) {
                child.read_stdout();
            } else if (p.fd == child.stderr_fd()) {
                child.read_stderr();
            }
        }
        if (exited) return child.finish();
    }
}

bool process_exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

// True once `pid` is gone or a zombie: dead, though not necessarily reaped yet (a grandchild is
// reaped by init, in its own time).
bool process_dead(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return true;
    const auto paren = line.rfind(')');
    return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z';
}

// Redis's wait_for_condition: true as soon as `condition` holds, false after 10 seconds.
template <typename Condition>
bool wait_for(Condition condition) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

// Starts `sh -c 'sleep 100 & echo $!; ...'` and reads the background sleep's pid from stdout.
pid_t read_background_pid(ChildProcess& child) {
    const bool got_line = wait_for([&] {
        pollfd p{child.stdout_fd(), POLLIN, 0};
        if (::poll(&p, 1, 10) > 0) child.read_stdout();
        return child.out().find('\n') != std::string::npos;
    });
    if (!got_line) return -1;
    return static_cast<pid_t>(std::stol(child.out()));
}

TEST(ChildProcess, ReportsExitCodeStdoutAndStderr) {
    ChildProcess child(shell("printf out; printf err >&2; exit 3"), kMaxStdout, kStderrTail);
    const auto status = wait_for_exit(child);
    ASSERT_TRUE(status.has_value()) << "the child did not exit within 10 s";
    EXPECT_EQ(status->exit_code, 3);
    EXPECT_FALSE(status->signal.has_value());
    EXPECT_EQ(child.out(), "out");
    EXPECT_EQ(child.err(), "err");
    EXPECT_FALSE(child.out_truncated());
}

TEST(ChildProcess, SuccessIsExitCodeZero) {
    ChildProcess child(Argv{"true"}, kMaxStdout, kStderrTail);
    const auto status = wait_for_exit(child);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->exit_code, 0);
    EXPECT_EQ(child.out(), "");
    EXPECT_EQ(child.err(), "");
}

TEST(ChildProcess, ArgumentsArePassedWithoutAShell) {
    const std::string odd = "a b $(id) ; '\"\\ \xff";
    ChildProcess child(Argv{"printf", "%s|%s", odd, ""}, kMaxStdout, kStderrTail);
    const auto status = wait_for_exit(child);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->exit_code, 0);
    EXPECT_EQ(child.out(), odd + "|");
}

TEST(ChildProcess, StdinIsEmpty) {
    ChildProcess child(Argv{"cat"}, kMaxStdout, kStderrTail);
    const auto status = wait_for_exit(child);
    ASSERT_TRUE(status.has_value()) << "cat waited for input: stdin is not /dev/null";
    EXPECT_EQ(status->exit_code, 0);
    EXPECT_EQ(child.out(), "");
}

TEST(ChildProcess, CommandKilledBySignalReportsTheSignal) {
    ChildProcess child(shell("kill -KILL $$"), kMaxStdout, kStderrTail);
    const auto status = wait_for_exit(child);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->signal, SIGKILL);
    EXPECT_FALSE(status->exit_code.has_value());
}

TEST(ChildProcess, KillGroupEndsTheCommand) {
    ChildProcess child(Argv{"sleep", "100"}, kMaxStdout, kStderrTail);
    child.kill_group(SIGTERM);
    const auto status = wait_for_exit(child);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->signal, SIGTERM);
    EXPECT_FALSE(status->exit_code.has_value());
}

TEST(ChildProcess, MissingCommandThrowsSystemError) {
    EXPECT_THROW(ChildProcess(Argv{"taskpipe-no-such-command-here"}, kMaxStdout, kStderrTail),
                 std::system_error);
    EXPECT_THROW(ChildProcess(Argv{"/nonexistent/taskpipe/cmd"}, kMaxStdout, kStderrTail),
                 std::system_error);
}

TEST(ChildProcess, StdoutOverTheLimitIsTruncatedAndFlagged) {
    ChildProcess child(shell("head -c 300000 /dev/zero"), 1000, kStderrTail);
    const auto status = wait_for_exit(child);
    ASSERT_TRUE(status.has_value()) << "the child blocked on a full stdout pipe";
    EXPECT_EQ(status->exit_code, 0);
    EXPECT_EQ(child.out(), std::string(1000, '\0'));
    EXPECT_TRUE(child.out_truncated());
}

TEST(ChildProcess, StdoutOfExactlyTheLimitIsNotTruncated) {
    ChildProcess child(shell("printf 1234567890"), 10, kStderrTail);
    ASSERT_TRUE(wait_for_exit(child).has_value());
    EXPECT_EQ(child.out(), "1234567890");
    EXPECT_FALSE(child.out_truncated());
}

TEST(ChildProcess, StdoutOneByteOverTheLimitIsTruncated) {
    ChildProcess child(shell("printf 1234567890"), 9, kStderrTail);
    ASSERT_TRUE(wait_for_exit(child).has_value());
    EXPECT_EQ(child.out(), "123456789");
    EXPECT_TRUE(child.out_truncated());
}

TEST(ChildProcess, StderrKeepsOnlyTheTail) {
    ChildProcess child(shell("head -c 200000 /dev/zero | tr '\\000' a >&2; printf TAIL >&2"),
                       kMaxStdout, 8);
    const auto status = wait_for_exit(child);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->exit_code, 0);
    EXPECT_EQ(child.err(), "aaaaTAIL");
}

TEST(ChildProcess, LargeStdoutIsKeptWhole) {
    ChildProcess child(shell("head -c 500000 /dev/zero"), kMaxStdout, kStderrTail);
    ASSERT_TRUE(wait_for_exit(child).has_value());
    EXPECT_EQ(child.out().size(), 500000u);
    EXPECT_FALSE(child.out_truncated());
}

TEST(ChildProcess, DestructorKillsAndReapsARunningCommand) {
    pid_t pid = -1;
    {
        ChildProcess child(Argv{"sleep", "100"}, kMaxStdout, kStderrTail);
        pid = child.pid();
        ASSERT_GT(pid, 0);
        ASSERT_TRUE(process_exists(pid));
    }
    // Reaped, not merely killed: a zombie would still answer kill(pid, 0).
    EXPECT_FALSE(process_exists(pid));
}

TEST(ChildProcess, DestructorKillsTheWholeProcessGroup) {
    pid_t grandchild = -1;
    {
        ChildProcess child(shell("sleep 100 & echo $!; wait"), kMaxStdout, kStderrTail);
        grandchild = read_background_pid(child);
        ASSERT_GT(grandchild, 0) << "no pid on stdout: " << child.out();
        ASSERT_FALSE(process_dead(grandchild));
    }
    EXPECT_TRUE(wait_for([&] { return process_dead(grandchild); }))
        << "a command's background child outlived it";
}

TEST(ChildProcess, FinishWithKillLeftoversKillsBackgroundChildren) {
    // "With kill_leftovers, whatever is left of the process group (children that outlived the
    // command) gets SIGKILL."
    ChildProcess child(shell("sleep 100 & echo $!"), kMaxStdout, kStderrTail);
    pid_t grandchild = -1;
    bool exited = false;
    const bool ready = wait_for([&] {
        pollfd fds[2] = {{child.exit_fd(), POLLIN, 0}, {child.stdout_fd(), POLLIN, 0}};
        if (::poll(fds, 2, 10) > 0) {
            if (fds[1].revents != 0) child.read_stdout();
            if (fds[0].revents != 0) exited = true;
        }
        return exited && child.out().find('\n') != std::string::npos;
    });
    ASSERT_TRUE(ready) << "the shell did not exit and print its child's pid";
    grandchild = static_cast<pid_t>(std::stol(child.out()));
    ASSERT_FALSE(process_dead(grandchild));
    const ExitStatus status = child.finish(true);
    EXPECT_EQ(status.exit_code, 0);
    EXPECT_TRUE(wait_for([&] { return process_dead(grandchild); }));
}

TEST(ChildProcess, FinishLeavesBackgroundChildrenByDefault) {
    ChildProcess child(shell("sleep 100 & echo $!"), kMaxStdout, kStderrTail);
    const pid_t grandchild = read_background_pid(child);
    ASSERT_GT(grandchild, 0);
    const bool exited = wait_for([&] {
        pollfd p{child.exit_fd(), POLLIN, 0};
        return ::poll(&p, 1, 10) > 0;
    });
    ASSERT_TRUE(exited);
    child.finish();
    EXPECT_FALSE(process_dead(grandchild));
    ::kill(grandchild, SIGKILL);
}

// The mask of `field` (SigBlk, SigIgn, ...) in a /proc/PID/status text.
unsigned long long signal_mask(const std::string& status, const std::string& field) {
    const auto at = status.find(field + ":");
    if (at == std::string::npos) return ~0ull;
    return std::stoull(status.substr(at + field.size() + 1), nullptr, 16);
}

constexpr unsigned long long bit(int signo) { return 1ull << (signo - 1); }

// "SIGPIPE, SIGINT and SIGTERM at their default action and no signal blocked", whatever the
// worker does with them; a signal the worker was told to ignore (nohup) stays ignored.
TEST(ChildProcess, CommandStartsWithDefaultSignalsAndNoneBlocked) {
    struct sigaction old_pipe {};
    struct sigaction old_hup {};
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ignore, &old_pipe);
    sigaction(SIGHUP, &ignore, &old_hup);
    sigset_t usr1;
    sigset_t old_mask;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, &old_mask);

    ChildProcess child(Argv{"cat", "/proc/self/status"}, kMaxStdout, kStderrTail);
    const auto status = wait_for_exit(child);

    pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    sigaction(SIGPIPE, &old_pipe, nullptr);
    sigaction(SIGHUP, &old_hup, nullptr);
    ASSERT_TRUE(status.has_value());
    ASSERT_EQ(status->exit_code, 0);
    EXPECT_EQ(signal_mask(child.out(), "SigBlk"), 0u) << child.out();
    const auto ignored = signal_mask(child.out(), "SigIgn");
    EXPECT_EQ(ignored & (bit(SIGPIPE) | bit(SIGINT) | bit(SIGTERM)), 0u) << child.out();
    EXPECT_NE(ignored & bit(SIGHUP), 0u) << child.out();
}

// A directory of its own for PATH tests, removed at the end; PATH restored.
class PathTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/taskpipe-path-test-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        root_ = tmpl;
        std::filesystem::create_directory(root_ / "a");
        std::filesystem::create_directory(root_ / "b");
        const char* path = std::getenv("PATH");
        old_path_ = path != nullptr ? path : "";
        setenv("PATH", ((root_ / "a").string() + ":" + (root_ / "b").string()).c_str(), 1);
    }
    void TearDown() override {
        setenv("PATH", old_path_.c_str(), 1);
        std::filesystem::remove_all(root_);
    }
    // A script DIR/NAME that prints DIR's name.
    void script(const std::string& dir, const std::string& name, bool executable = true) {
        const auto file = root_ / dir / name;
        std::ofstream(file) << "#!/bin/sh\necho " << dir << "\n";
        std::filesystem::permissions(file, executable ? std::filesystem::perms::owner_all
                                                      : std::filesystem::perms::owner_read);
    }
    std::string run(const std::string& name) {
        ChildProcess child(Argv{name}, kMaxStdout, kStderrTail);
        const auto status = wait_for_exit(child);
        if (!status || status->exit_code != 0) return "failed";
        return child.out();
    }
    std::filesystem::path root_;
    std::string old_path_;
};

TEST_F(PathTest, ACommandIsSearchedInPathOrder) {
    script("b", "tp-cmd");
    EXPECT_EQ(run("tp-cmd"), "b\n");
    script("a", "tp-other");
    script("b", "tp-other");
    EXPECT_EQ(run("tp-other"), "a\n");
}

// execvp: "If permission is denied for a file, ... continue searching the rest of the search
// path"; the command is then reported as not executable only if no later entry runs.
TEST_F(PathTest, AFileThatCannotBeExecutedIsPassedOver) {
    script("a", "tp-cmd", /*executable=*/false);
    script("b", "tp-cmd");
    EXPECT_EQ(run("tp-cmd"), "b\n");
    try {
        script("a", "tp-denied", false);
        ChildProcess child(Argv{"tp-denied"}, kMaxStdout, kStderrTail);
        ADD_FAILURE() << "a file without execute permission ran";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EACCES) << e.what();
    }
}

// "the directory where the same name was found last time is tried first (as bash's command
// hash does)", and the search starts again from the front when that fails.
TEST_F(PathTest, TheDirectoryThatWorkedLastIsTriedFirstThenPathAgain) {
    script("b", "tp-cmd");
    EXPECT_EQ(run("tp-cmd"), "b\n");
    script("a", "tp-cmd");
    EXPECT_EQ(run("tp-cmd"), "b\n");
    std::filesystem::remove(root_ / "b" / "tp-cmd");
    EXPECT_EQ(run("tp-cmd"), "a\n");
    std::filesystem::remove(root_ / "a" / "tp-cmd");
    EXPECT_THROW(ChildProcess(Argv{"tp-cmd"}, kMaxStdout, kStderrTail), std::system_error);
}

TEST_F(PathTest, ANewPathIsSearchedAfresh) {
    script("a", "tp-cmd");
    script("b", "tp-cmd");
    EXPECT_EQ(run("tp-cmd"), "a\n");
    setenv("PATH", (root_ / "b").c_str(), 1);
    EXPECT_EQ(run("tp-cmd"), "b\n");
}

TEST(ChildProcess, MovedFromProcessLeavesTheCommandAlone) {
    ChildProcess first(shell("printf moved"), kMaxStdout, kStderrTail);
    ChildProcess second(std::move(first));
    const auto status = wait_for_exit(second);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->exit_code, 0);
    EXPECT_EQ(second.out(), "moved");
}

}  // namespace
}  // namespace taskpipe
