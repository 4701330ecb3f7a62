// The jobs the worker's loop runs (worker/job.hpp, builtin_job.hpp, command_job.hpp): "descriptors
// to watch, a time at which it wants to be looked at, and, once it is done, its outcome".
//
// Time is passed in, so the time limits are tested against a fake clock: `t0` plus whatever
// the test says, while the commands themselves run for real.

#include <poll.h>
#include <signal.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "builtin_job.hpp"
#include "command_job.hpp"

namespace taskpipe {
namespace {

using namespace std::chrono_literals;
using Clock = Job::Clock;
using Argv = std::vector<std::string>;

// A fixed point for the fake clock: far from any real steady_clock reading, so that a test
// mixing the two up fails.
const Clock::time_point t0 = Clock::time_point() + 1000h;

Argv shell(const std::string& script) { return {"/bin/sh", "-c", script}; }

Builtin builtin(std::string_view name) {
    const auto b = find_builtin(name);
    if (!b) throw std::logic_error("no builtin " + std::string(name));
    return *b;
}

// Polls what `job` watches (for real, 10 ms at a time) and steps it at the fake time `now`
// until it is done, or until `until` says to stop, or 10 s of real time have passed.
template <typename Until>
std::optional<JobOutcome> step_until(Job& job, Clock::time_point now, Until until) {
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < give_up) {
        std::vector<pollfd> fds;
        const std::size_t n = job.watch(fds);
        EXPECT_EQ(n, fds.size());
        ::poll(fds.data(), fds.size(), 10);
        if (auto outcome = job.step(fds, now)) return outcome;
        if (until()) return std::nullopt;
    }
    ADD_FAILURE() << "the job did not finish within 10 s";
    return std::nullopt;
}

std::optional<JobOutcome> run_to_end(Job& job, Clock::time_point now) {
    return step_until(job, now, [] { return false; });
}

// True once `pid` is gone or a zombie.
bool process_dead(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return true;
    const auto paren = line.rfind(')');
    return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z';
}

// The first child of `pid`, or -1.
pid_t first_child(pid_t pid) {
    std::ifstream children("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) +
                           "/children");
    long child = -1;
    if (!(children >> child)) return -1;
    return static_cast<pid_t>(child);
}

// Whether `pid` ignores SIGTERM (SigIgn in /proc/PID/status).
bool ignores_sigterm(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("SigIgn:", 0) == 0) {
            const unsigned long long mask = std::stoull(line.substr(7), nullptr, 16);
            return (mask >> (SIGTERM - 1)) & 1u;
        }
    }
    return false;
}

template <typename Condition>
bool eventually(Condition condition) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

CommandLimits limits(std::chrono::milliseconds timeout = 0ms,
                     std::chrono::milliseconds grace = 5000ms, bool kill_leftovers = false) {
    CommandLimits l;
    l.max_stdout = 1u << 20;
    l.stderr_tail = 4096;
    l.timeout = timeout;
    l.kill_grace = grace;
    l.kill_leftovers = kill_leftovers;
    return l;
}

// --- built-ins ---------------------------------------------------------------------------

TEST(BuiltinJob, AnImmediateOutcomeIsReadyAtTheStart) {
    BuiltinJob job(builtin("echo"), "hello", t0);
    std::vector<pollfd> fds;
    EXPECT_EQ(job.watch(fds), 0u);
    EXPECT_EQ(job.wake_at(), t0);
    const auto outcome = job.step({}, t0);
    ASSERT_TRUE(outcome.has_value());
    EXPECT_EQ(outcome->status, Status::ok);
    EXPECT_EQ(outcome->exit_code, 0);
    EXPECT_FALSE(outcome->signal.has_value());
    EXPECT_EQ(outcome->out, "hello\n");
}

// "sleep: waits the payload's number of milliseconds": due at the start plus the delay, not a
// moment before, and never later than asked for.
TEST(BuiltinJob, ADelayedOutcomeIsDueAfterItsDelay) {
    BuiltinJob job(builtin("sleep"), "250", t0);
    EXPECT_EQ(job.wake_at(), t0 + 250ms);
    EXPECT_FALSE(job.step({}, t0).has_value());
    EXPECT_FALSE(job.step({}, t0 + 249ms).has_value());
    const auto outcome = job.step({}, t0 + 250ms);
    ASSERT_TRUE(outcome.has_value());
    EXPECT_EQ(outcome->status, Status::ok);
    EXPECT_EQ(outcome->out, "");
}

TEST(BuiltinJob, AFailureKeepsItsStatusExitCodeAndStderr) {
    BuiltinJob job(builtin("fail"), "why", t0);
    const auto outcome = job.step({}, t0);
    ASSERT_TRUE(outcome.has_value());
    EXPECT_EQ(outcome->status, Status::failed);
    EXPECT_EQ(outcome->exit_code, 1);
    EXPECT_EQ(outcome->err, "why\n");
}

TEST(BuiltinJob, AnErrorHasNoExitCode) {
    BuiltinJob job(builtin("sleep"), "soon", t0);
    const auto outcome = job.step({}, t0);
    ASSERT_TRUE(outcome.has_value());
    EXPECT_EQ(outcome->status, Status::error);
    EXPECT_FALSE(outcome->exit_code.has_value());
}

// --- commands ----------------------------------------------------------------------------

TEST(CommandJob, WatchesStdoutStderrAndTheExitAndNeedsNoTimerWithoutATimeLimit) {
    CommandJob job(Argv{"sleep", "100"}, limits(), t0);
    std::vector<pollfd> fds;
    EXPECT_EQ(job.watch(fds), 3u);
    for (const pollfd& p : fds) {
        EXPECT_GE(p.fd, 0);
        EXPECT_EQ(p.events, POLLIN);
    }
    EXPECT_EQ(job.wake_at(), Clock::time_point::max());
    EXPECT_FALSE(job.step({}, t0 + 24h).has_value()) << "no time limit, yet it ended";
}

TEST(CommandJob, ReportsExitCodeAndOutput) {
    CommandJob job(shell("printf out; printf err >&2; exit 3"), limits(), t0);
    const auto outcome = run_to_end(job, t0);
    ASSERT_TRUE(outcome.has_value());
    EXPECT_EQ(outcome->status, Status::failed);
    EXPECT_EQ(outcome->exit_code, 3);
    EXPECT_FALSE(outcome->signal.has_value());
    EXPECT_EQ(outcome->out, "out");
    EXPECT_EQ(outcome->err, "err");
    EXPECT_FALSE(outcome->out_truncated);
}

TEST(CommandJob, ExitCodeZeroIsOk) {
    CommandJob job(Argv{"true"}, limits(), t0);
    const auto outcome = run_to_end(job, t0);
    ASSERT_TRUE(outcome.has_value());
    EXPECT_EQ(outcome->status, Status::ok);
    EXPECT_EQ(outcome->exit_code, 0);
}

TEST(CommandJob, StdoutOverTheLimitIsTruncated) {
    CommandLimits small = limits();
    small.max_stdout = 5;
    CommandJob job(Argv{"printf", "1234567"}, small, t0);
    const auto outcome = run_to_end(job, t0);
    ASSERT_TRUE(outcome.has_value());
    EXPECT_EQ(outcome->out, "12345");
    EXPECT_TRUE(outcome->out_truncated);
}

TEST(CommandJob, ACommandThatCannotStartThrows) {
    EXPECT_THROW(CommandJob(Argv{"taskpipe-no-such-command-here"}, limits(), t0),
                 std::system_error);
}

// "--timeout: its process group gets SIGTERM, then SIGKILL after --kill-grace, and its status
// is timeout."
TEST(CommandJob, TheDeadlineSendsSigtermAndTheOutcomeIsATimeout) {
    CommandJob job(Argv{"sleep", "100"}, limits(1000ms, 5000ms), t0);
    EXPECT_EQ(job.wake_at(), t0 + 1000ms);
    EXPECT_FALSE(job.step({}, t0 + 999ms).has_value());
    EXPECT_FALSE(process_dead(job.pid())) << "killed before its deadline";

    EXPECT_FALSE(job.step({}, t0 + 1000ms).has_value());
    EXPECT_EQ(job.wake_at(), t0 + 1000ms + 5000ms) << "SIGKILL is due a grace period later";
    const auto outcome = run_to_end(job, t0 + 1000ms);
    ASSERT_TRUE(outcome.has_value());
    EXPECT_EQ(outcome->status, Status::timeout);
    EXPECT_EQ(outcome->signal, SIGTERM);
    EXPECT_FALSE(outcome->exit_code.has_value());
    EXPECT_NE(outcome->err.find("killed after the time limit of 1000 ms"), std::string::npos)
        << outcome->err;
}

TEST(CommandJob, ACommandThatIgnoresSigtermGetsSigkillAfterTheGrace) {
    CommandJob job(shell("trap '' TERM; sleep 100"), limits(1000ms, 2000ms), t0);
    // Wait, at a fake time before the deadline, until the shell has set its trap.
    const auto outcome_before = step_until(job, t0, [&] { return ignores_sigterm(job.pid()); });
    ASSERT_FALSE(outcome_before.has_value()) << "the shell ended before its deadline";
    ASSERT_TRUE(ignores_sigterm(job.pid()));

    EXPECT_FALSE(job.step({}, t0 + 1000ms).has_value());  // SIGTERM, ignored
    EXPECT_FALSE(step_until(job, t0 + 2999ms, [n = 0]() mutable { return ++n == 20; }).has_value())
        << "it ended before the grace was over";
    EXPECT_FALSE(process_dead(job.pid()));
    EXPECT_FALSE(job.step({}, t0 + 3000ms).has_value());  // SIGKILL
    EXPECT_EQ(job.wake_at(), Clock::time_point::max());
    const auto outcome = run_to_end(job, t0 + 3000ms);
    ASSERT_TRUE(outcome.has_value());
    EXPECT_EQ(outcome->status, Status::timeout);
    EXPECT_EQ(outcome->signal, SIGKILL);
}

// "--keep-leftovers ... by default the rest of its process group is killed when the task ends".
TEST(CommandJob, WithKillLeftoversABackgroundChildDiesWithTheTask) {
    CommandJob job(shell("sleep 100 & echo $!"), limits(0ms, 5000ms, true), t0);
    const auto outcome = run_to_end(job, t0);
    ASSERT_TRUE(outcome.has_value());
    EXPECT_EQ(outcome->status, Status::ok);
    const pid_t background = static_cast<pid_t>(std::stol(outcome->out));
    EXPECT_TRUE(eventually([&] { return process_dead(background); }))
        << "the background sleep outlived its task";
}

TEST(CommandJob, WithoutKillLeftoversABackgroundChildOutlivesTheTask) {
    CommandJob job(shell("sleep 100 & echo $!"), limits(0ms, 5000ms, false), t0);
    const auto outcome = run_to_end(job, t0);
    ASSERT_TRUE(outcome.has_value());
    const pid_t background = static_cast<pid_t>(std::stol(outcome->out));
    EXPECT_FALSE(process_dead(background));
    ::kill(background, SIGKILL);
}

// After a time limit, what is left of the group goes too, whatever kill_leftovers says: here a
// background child that ignores the SIGTERM its shell dies of.
TEST(CommandJob, ATimeoutKillsWhatIsLeftOfTheGroup) {
    CommandJob job(shell("(trap '' TERM; sleep 100) & wait"), limits(1000ms, 5000ms, false), t0);
    pid_t background = -1;
    const auto early = step_until(job, t0, [&] {
        background = first_child(job.pid());
        return background > 0 && ignores_sigterm(background);
    });
    ASSERT_FALSE(early.has_value());
    ASSERT_GT(background, 0);

    EXPECT_FALSE(job.step({}, t0 + 1000ms).has_value());  // SIGTERM to the group
    const auto outcome = run_to_end(job, t0 + 1000ms);
    ASSERT_TRUE(outcome.has_value());
    EXPECT_EQ(outcome->status, Status::timeout);
    EXPECT_EQ(outcome->signal, SIGTERM);
    EXPECT_TRUE(eventually([&] { return process_dead(background); }))
        << "a background child that ignored SIGTERM outlived its timed-out task";
}

}  // namespace
}  // namespace taskpipe
