// Signals, after Redis: "the SIGTERM/SIGINT handler only sets a flag; the event loop does the
// shutdown". A sink or a ventilator stopped before the batch completes exits promptly with
// status 3 (interrupted); an idle worker "on the first SIGINT/SIGTERM ... exits 0".
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <string>

#include "support/binaries.hpp"
#include "support/pipeline.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace taskpipe::testing {
namespace {

using namespace std::chrono_literals;

// "Promptly": well within the 5 seconds the issue allows.
constexpr auto kPrompt = 5s;

// Waits until `process` has installed its handler for `signo`, then sends it.
void interrupt_when_ready(Process& process, int signo) {
    ASSERT_TRUE(wait_for([&] { return process.catches_signal(signo); }, deadline_in(10s)))
        << "no handler for signal " << signo << "\n"
        << process.describe();
    process.signal(signo);
}

std::string signal_name(int signo) { return signo == SIGINT ? "Sigint" : "Sigterm"; }

class SignalTest : public ::testing::TestWithParam<int> {};

// A sink with no ventilator yet is waiting for work.
TEST_P(SignalTest, StopsAWaitingSinkWithStatusThree) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink();
    interrupt_when_ready(sink, GetParam());
    EXPECT_EQ(sink.wait_for_exit(deadline_in(kPrompt)), 3) << sink.describe();
    EXPECT_TRUE(sink.wait_for_stderr("sink warning: interrupted", deadline_in(1s)))
        << sink.describe();
}

// A ventilator with tasks and no worker is waiting for work to be done.
TEST_P(SignalTest, StopsAWaitingVentilatorWithStatusThree) {
    Pipeline pipeline;
    pipeline.start_sink();
    Process& ventilator = pipeline.start_ventilator(Stdin::data("1\n2\n3\n"));
    interrupt_when_ready(ventilator, GetParam());
    EXPECT_EQ(ventilator.wait_for_exit(deadline_in(kPrompt)), 3) << ventilator.describe();
    EXPECT_TRUE(ventilator.wait_for_stderr("ventilator warning: interrupted", deadline_in(1s)))
        << ventilator.describe();
}

// A ventilator whose input has not ended is waiting too.
TEST_P(SignalTest, StopsAVentilatorWaitingForInputWithStatusThree) {
    Pipeline pipeline;
    pipeline.start_sink();
    Process& ventilator = pipeline.start_ventilator(Stdin::held_open());
    interrupt_when_ready(ventilator, GetParam());
    EXPECT_EQ(ventilator.wait_for_exit(deadline_in(kPrompt)), 3) << ventilator.describe();
}

TEST_P(SignalTest, StopsAnIdleWorkerWithStatusZero) {
    TempDir dir;
    const Endpoints nowhere = Endpoints::ipc(dir);
    Process worker(
        {worker_path(), "-v", nowhere.tasks, "-s", nowhere.results, "--builtin", "echo"});
    interrupt_when_ready(worker, GetParam());
    EXPECT_EQ(worker.wait_for_exit(deadline_in(kPrompt)), 0) << worker.describe();
}

INSTANTIATE_TEST_SUITE_P(Signal, SignalTest, ::testing::Values(SIGINT, SIGTERM),
                         [](const auto& test) { return signal_name(test.param); });

// "finishes the running ones, delivers their results and exits 0": a task already running when
// SIGTERM arrives still reaches the sink, and the batch completes.
TEST(Signal, WorkerFinishesItsRunningTaskOnSigterm) {
    TempDir dir;
    const std::string started = dir.file("started");
    Pipeline pipeline;
    Process& sink = pipeline.start_sink();
    Process& ventilator = pipeline.start_ventilator(Stdin::data("finished\n"));
    Process& worker =
        pipeline.start_worker({"--shell", ": > '" + started + "'; sleep 1; printf '%s\\n' \"$1\""});

    ASSERT_TRUE(wait_for([&] { return std::filesystem::exists(started); }, deadline_in(10s)))
        << worker.describe();
    worker.signal(SIGTERM);

    const auto deadline = deadline_in(10s);
    EXPECT_EQ(worker.wait_for_exit(deadline), 0) << worker.describe();
    ASSERT_EQ(sink.wait_for_exit(deadline), 0) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline), 0) << ventilator.describe();
    EXPECT_EQ(sink.stdout_text(), "finished\n");
}

}  // namespace
}  // namespace taskpipe::testing
