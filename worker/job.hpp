// One run of a task's handler, as the worker's event loop sees it: descriptors to watch, a
// time at which it wants to be looked at, and, once it is done, its outcome. The loop knows
// nothing else about a job, so a new kind of handler is one new subclass (and its line in
// make_job, worker.cpp).
//
// Lifetime: the loop owns each job; destroying one that has not finished abandons it quietly
// (a child process is killed and reaped). Not thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <poll.h>

#include "taskpipe/message.hpp"

namespace taskpipe {

// What a finished job reports; the worker adds the task's identity and timing to make a Result.
struct JobOutcome {
    Status status = Status::ok;
    std::optional<std::int32_t> exit_code;  // set when the handler exited by itself
    std::optional<std::int32_t> signal;     // set when a signal killed it
    std::string out;
    bool out_truncated = false;
    std::string err;
};

class Job {
  public:
    using Clock = std::chrono::steady_clock;

    Job() = default;
    virtual ~Job() = default;
    Job(const Job&) = delete;
    Job& operator=(const Job&) = delete;

    // Appends the descriptors to poll for reading to `fds`; returns how many it appended.
    virtual std::size_t watch(std::vector<pollfd>& fds) const = 0;

    // When step() must run even if none of its descriptors is ready (a time limit, a delayed
    // result); Clock::time_point::max() for never.
    virtual Clock::time_point wake_at() const = 0;

    // Handles its descriptors' readiness (`ready`: the entries watch() appended, in the same
    // order, with their revents; may be empty) and the time `now`. Returns the outcome once
    // the job is done; it is then called no more.
    virtual std::optional<JobOutcome> step(std::span<const pollfd> ready,
                                           Clock::time_point now) = 0;
};

}  // namespace taskpipe
