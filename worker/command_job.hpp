// A command (`worker -- COMMAND...` or `--shell`) as a job: a ChildProcess, its output read as
// it comes, and its time limit: at the deadline its process group gets SIGTERM, and SIGKILL a
// grace period later; it then ends with status `timeout`.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "job.hpp"

namespace taskpipe {

struct CommandLimits {
    std::size_t max_stdout = 16u << 20;          // stdout bytes kept
    std::size_t stderr_tail = 4096;              // last stderr bytes kept
    std::chrono::milliseconds timeout{0};        // 0: no time limit
    std::chrono::milliseconds kill_grace{5000};  // from the deadline's SIGTERM to SIGKILL
    bool kill_leftovers = false;                 // SIGKILL what is left of the group at exit
};

class CommandJob final : public Job {
  public:
    // Starts argv (see ChildProcess); `now` starts the time limit. Throws std::system_error
    // when the command cannot be started.
    CommandJob(const std::vector<std::string>& argv, const CommandLimits& limits,
               Clock::time_point now);

    std::size_t watch(std::vector<pollfd>& fds) const override;
    Clock::time_point wake_at() const override { return timed_out_ ? kill_at_ : deadline_; }
    std::optional<JobOutcome> step(std::span<const pollfd> ready, Clock::time_point now) override;

    pid_t pid() const { return child_.pid(); }

  private:
    ChildProcess child_;
    CommandLimits limits_;
    Clock::time_point deadline_ = Clock::time_point::max();
    Clock::time_point kill_at_ = Clock::time_point::max();  // SIGKILL after the grace
    bool timed_out_ = false;
};

}  // namespace taskpipe
