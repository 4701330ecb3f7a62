// Waiting for a condition with a deadline, after Redis's wait_for_condition and nng's
// NUTS_MARRY: tests synchronise on something observable, never on a sleep.
#pragma once

#include <algorithm>
#include <chrono>
#include <thread>

namespace taskpipe::testing {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

inline Deadline deadline_in(Clock::duration duration) { return Clock::now() + duration; }

// Evaluates `condition` until it returns true or `deadline` passes (it is evaluated once more at
// the deadline). Returns whether it became true.
template <typename Condition>
bool wait_for(Condition&& condition, Deadline deadline,
              Clock::duration interval = std::chrono::milliseconds(10)) {
    for (;;) {
        if (condition()) return true;
        const auto now = Clock::now();
        if (now >= deadline) return false;
        std::this_thread::sleep_for(std::min(interval, deadline - now));
    }
}

}  // namespace taskpipe::testing
