// The programs may start in any order: ZeroMQ connects and reconnects in the background, the
// ventilator says Hello "again, in case the sink restarted", and the sink serves "the first
// ventilator to say Hello". Whatever the order, every result arrives exactly once.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/pipeline.hpp"
#include "support/process.hpp"
#include "support/results.hpp"
#include "support/temp_dir.hpp"

namespace taskpipe::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kTasks = 200;

std::vector<std::string> numbered(const std::string& prefix) {
    std::vector<std::string> payloads;
    for (int i = 1; i <= kTasks; ++i) payloads.push_back(prefix + std::to_string(i));
    return payloads;
}

std::string as_lines(const std::vector<std::string>& payloads) {
    std::string input;
    for (const auto& payload : payloads) input += payload + "\n";
    return input;
}

void expect_batch_completes(Pipeline& pipeline, const std::vector<std::string>& payloads) {
    const auto deadline = deadline_in(60s);
    ASSERT_EQ(pipeline.sink().wait_for_exit(deadline), 0) << pipeline.sink().describe();
    EXPECT_EQ(pipeline.ventilator().wait_for_exit(deadline), 0) << pipeline.ventilator().describe();
    const Tally tally = tally_lines(pipeline.sink().stdout_text(), payloads);
    EXPECT_TRUE(tally.exact()) << tally.describe();
}

// Issue acceptance: workers started 2 seconds after the ventilator still get all the work,
// exactly once.
TEST(StartupOrder, WorkersStartedAfterTheVentilatorGetAllTheWork) {
    const auto payloads = numbered("late-workers-");
    Pipeline pipeline;
    Process& sink = pipeline.start_sink();
    Process& ventilator = pipeline.start_ventilator(Stdin::data(as_lines(payloads)));

    // With no worker, nothing completes and the ventilator keeps waiting: for two seconds
    // neither the ventilator exits nor a result reaches the sink.
    EXPECT_FALSE(wait_for([&] { return !ventilator.running() || !sink.stdout_text().empty(); },
                          deadline_in(2s)))
        << ventilator.describe() << sink.describe();

    pipeline.start_worker({"--builtin", "echo"});
    pipeline.start_worker({"--builtin", "echo"});
    expect_batch_completes(pipeline, payloads);
}

// Workers may be waiting before there is a ventilator to connect to (ipc endpoints in a
// temporary directory are known before anything binds them).
TEST(StartupOrder, WorkersStartedBeforeTheVentilatorGetAllTheWork) {
    TempDir dir;
    const auto payloads = numbered("early-workers-");
    Pipeline pipeline(Endpoints::ipc(dir));
    pipeline.start_sink();
    Process& first = pipeline.start_worker({"--builtin", "echo"});
    Process& second = pipeline.start_worker({"--builtin", "echo"});
    ASSERT_TRUE(
        wait_for([&] { return first.catches_signal(SIGTERM) && second.catches_signal(SIGTERM); },
                 deadline_in(10s)))
        << "the workers never got ready\n"
        << first.describe() << second.describe();

    pipeline.start_ventilator(Stdin::data(as_lines(payloads)));
    expect_batch_completes(pipeline, payloads);
}

// Issue acceptance: a sink started after the ventilator (and the workers) still completes the
// batch.
TEST(StartupOrder, SinkStartedAfterTheVentilatorCompletesTheBatch) {
    TempDir dir;
    const auto payloads = numbered("late-sink-");
    Pipeline pipeline(Endpoints::ipc(dir));
    Process& ventilator = pipeline.start_ventilator(Stdin::data(as_lines(payloads)));
    pipeline.start_worker({"--builtin", "echo"});
    pipeline.start_worker({"--builtin", "echo"});

    // The ventilator says so when it has waited a while for its sink.
    ASSERT_TRUE(ventilator.wait_for_stderr("waiting for the sink at", deadline_in(15s)))
        << ventilator.describe();
    ASSERT_TRUE(ventilator.running()) << ventilator.describe();

    pipeline.start_sink();
    expect_batch_completes(pipeline, payloads);
}

}  // namespace
}  // namespace taskpipe::testing
