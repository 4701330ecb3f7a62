// The worker's phases (worker/phase.hpp): "running -> draining -> done", moved only by
// next_phase.

#include "phase.hpp"

#include <gtest/gtest.h>

namespace taskpipe {
namespace {

TEST(Phase, RunningStaysRunningUntilAShutdownIsAskedFor) {
    EXPECT_EQ(next_phase(Phase::running, false, 0), Phase::running);
    EXPECT_EQ(next_phase(Phase::running, false, 3), Phase::running);
}

// "On the first SIGINT/SIGTERM it takes no new task, releases the queued ones, finishes the
// running ones."
TEST(Phase, AShutdownWithTasksRunningDrains) {
    EXPECT_EQ(next_phase(Phase::running, true, 1), Phase::draining);
    EXPECT_EQ(next_phase(Phase::running, true, 4096), Phase::draining);
}

TEST(Phase, DrainingEndsWhenTheLastRunningTaskHasFinished) {
    EXPECT_EQ(next_phase(Phase::draining, true, 2), Phase::draining);
    EXPECT_EQ(next_phase(Phase::draining, true, 1), Phase::draining);
    EXPECT_EQ(next_phase(Phase::draining, true, 0), Phase::done);
}

// Nothing to finish: the worker does not wait for a further wake-up to exit.
TEST(Phase, AShutdownWithNothingRunningIsDoneAtOnce) {
    EXPECT_EQ(next_phase(Phase::running, true, 0), Phase::done);
}

TEST(Phase, PhasesNeverGoBack) {
    EXPECT_EQ(next_phase(Phase::draining, false, 1), Phase::draining);
    EXPECT_EQ(next_phase(Phase::done, false, 0), Phase::done);
    EXPECT_EQ(next_phase(Phase::done, true, 5), Phase::done);
}

}  // namespace
}  // namespace taskpipe
