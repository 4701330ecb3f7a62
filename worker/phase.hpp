// The worker's phases and the one function that moves between them.
//
//   running   takes tasks, runs them, sends results and heartbeats
//   draining  after the first SIGINT/SIGTERM: takes no new task, has handed its queued tasks
//             back, finishes the running ones and sends their results
//   done      nothing runs any more: the loop ends and the worker exits 0
#pragma once

#include <cstddef>

namespace taskpipe {

enum class Phase { running, draining, done };

// The phase that follows `phase`, given whether a shutdown was asked for and how many tasks
// still run. Phases only move forward: running -> draining -> done, or running -> done when
// nothing runs at the shutdown.
constexpr Phase next_phase(Phase phase, bool shutdown_requested, std::size_t running) {
    switch (phase) {
        case Phase::running:
            if (!shutdown_requested) return Phase::running;
            return running == 0 ? Phase::done : Phase::draining;
        case Phase::draining:
            return running == 0 ? Phase::done : Phase::draining;
        case Phase::done:
            break;
    }
    return Phase::done;
}

}  // namespace taskpipe
