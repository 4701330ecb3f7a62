// How many tasks a worker is willing to hold, running and queued: its concurrency plus the
// tasks it completes in 100 ms at its own pace, and at least twice its concurrency. Tasks it
// would hold beyond that go back to the ventilator for faster workers (worker.hpp).
//
// The pace is measured over periods of 100 ms. When the worker starts holding tasks after
// holding none for at least a period (a batch starts), the first period is 20 ms, scaled to
// 100 ms, so that a batch does not run its first 100 ms at twice the concurrency while the
// ventilator learns what the worker can take. (Shorter gaps, one task at a time at low load,
// change nothing.) Time is passed in (tests use a fake clock). Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace taskpipe {

class Capacity {
  public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::chrono::milliseconds kPeriod{100};
    static constexpr std::chrono::milliseconds kFirstPeriod{20};

    Capacity(unsigned concurrency, Clock::time_point now);

    std::uint32_t value() const { return value_; }
    Clock::time_point next_update() const { return next_update_; }

    // One task completed (its result sent).
    void task_completed() { ++completed_; }

    // The worker holds no task at `now` (it may say so again; the first time counts).
    void idle(Clock::time_point now);
    // The worker holds a task again at `now`. After at least kPeriod idle (or at the first
    // task of all), the pace is measured afresh, first over kFirstPeriod.
    void busy(Clock::time_point now);

    // At or after next_update(): recomputes the value from the period that ends at `now` and
    // starts the next one; returns true. Before it: returns false and changes nothing.
    bool update(Clock::time_point now);

  private:
    unsigned concurrency_;
    std::uint32_t value_;
    std::uint64_t completed_ = 0;  // in the current period
    Clock::time_point period_start_;
    Clock::time_point next_update_;
    bool ever_busy_ = false;
    std::optional<Clock::time_point> idle_since_;  // none: busy, or never busy yet
};

}  // namespace taskpipe
