#include "command_job.hpp"

#include <signal.h>

#include <string>
#include <utility>

namespace taskpipe {

CommandJob::CommandJob(const std::vector<std::string>& argv, const CommandLimits& limits,
                       Clock::time_point now)
    : child_(argv, limits.max_stdout, limits.stderr_tail), limits_(limits) {
    if (limits_.timeout.count() > 0) deadline_ = now + limits_.timeout;
}

std::size_t CommandJob::watch(std::vector<pollfd>& fds) const {
    const std::size_t before = fds.size();
    for (const int fd : {child_.stdout_fd(), child_.stderr_fd(), child_.exit_fd()}) {
        if (fd >= 0) fds.push_back({fd, POLLIN, 0});
    }
    return fds.size() - before;
}

std::optional<JobOutcome> CommandJob::step(std::span<const pollfd> ready, Clock::time_point now) {
    bool exited = false;
    for (const pollfd& item : ready) {
        if ((item.revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        if (item.fd == child_.exit_fd()) {
            exited = true;
        } else if (item.fd == child_.stdout_fd()) {
            child_.read_stdout();
        } else if (item.fd == child_.stderr_fd()) {
            child_.read_stderr();
        }
    }
    if (!timed_out_ && now >= deadline_) {
        timed_out_ = true;
        child_.kill_group(SIGTERM);
        kill_at_ = now + limits_.kill_grace;
    } else if (timed_out_ && now >= kill_at_) {
        child_.kill_group(SIGKILL);
        kill_at_ = Clock::time_point::max();
    }
    if (!exited) return std::nullopt;

    const ExitStatus status = child_.finish(limits_.kill_leftovers || timed_out_);
    JobOutcome outcome;
    outcome.exit_code = status.exit_code;
    outcome.signal = status.signal;
    if (timed_out_) {
        outcome.status = Status::timeout;
    } else {
        outcome.status = status.exit_code == 0 ? Status::ok : Status::failed;
    }
    outcome.out = std::move(child_.out());
    outcome.out_truncated = child_.out_truncated();
    outcome.err = child_.err();
    if (timed_out_) {
        outcome.err += "taskpipe: killed after the time limit of " +
                       std::to_string(limits_.timeout.count()) + " ms\n";
    }
    return outcome;
}

}  // namespace taskpipe
