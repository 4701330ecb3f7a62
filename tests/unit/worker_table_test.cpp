// The sink's WorkerTable against a fake clock: who is live, the live capacity, and the bound on
// the table that issue 12 asks for: "100,000 heartbeats with made-up host:pid values gave
// 100,001 metric series ... Wanted: expire silent workers, cap the table and the metric series
// (a documented cap, with the overflow counted), make capacity accounting constant time."
#include "worker_table.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace taskpipe {
namespace {

using namespace std::chrono_literals;

constexpr auto kSilence = 5s;

class WorkerTableTest : public ::testing::Test {
  protected:
    WorkerTable table{{.silence = kSilence, .max_workers = 3}};
    WorkerTable::TimePoint now = WorkerTable::TimePoint{} + 1h;

    std::vector<std::string> names() const {
        std::vector<std::string> all;
        table.for_each([&](const std::string& name, const WorkerStats&) { all.push_back(name); });
        return all;
    }
};

// "worker silence at the sink: a worker not heard from for this long no longer counts towards
// the live capacity" (docs/reliability.md).
TEST_F(WorkerTableTest, TheLiveCapacityIsTheSumOverWorkersHeardFromWithinTheSilence) {
    EXPECT_TRUE(table.heartbeat("a:1", 4, now));
    now += 2s;
    EXPECT_TRUE(table.heartbeat("b:2", 6, now));
    EXPECT_EQ(table.live_capacity(now), 10u);
    now += kSilence - 2s - 1ms;
    EXPECT_EQ(table.live_capacity(now), 10u);
    now += 1ms;
    EXPECT_EQ(table.live_capacity(now), 6u) << "a:1 has been silent for 5 s";
    now += 2s;
    EXPECT_EQ(table.live_capacity(now), 0u);
}

// A frame of tasks may go to any live worker, so it holds no more than the smallest group_max
// of the workers that take tasks; a worker that takes single tasks only (0) makes every frame
// single.
TEST_F(WorkerTableTest, TheGroupSizeIsTheSmallestOfTheLiveWorkersThatTakeTasks) {
    EXPECT_EQ(table.live_group_max(now), 0u) << "no worker";
    table.heartbeat("a:1", 40, now, 10);
    table.heartbeat("b:2", 80, now, 20);
    EXPECT_EQ(table.live_group_max(now), 10u);
    table.heartbeat("a:1", 0, now, 10);  // draining: takes no task
    EXPECT_EQ(table.live_group_max(now), 20u);
    table.heartbeat("c:3", 8, now, 0);  // an older worker: single tasks
    EXPECT_EQ(table.live_group_max(now), 0u);
    now += 3s;
    table.heartbeat("b:2", 80, now, 20);
    now += kSilence - 3s;
    EXPECT_EQ(table.live_group_max(now), 20u) << "c:3 has been silent for 5 s";
    table.heartbeat("c:3", 8, now, 2);  // back, taking groups now
    EXPECT_EQ(table.live_group_max(now), 2u);
}

TEST_F(WorkerTableTest, AHeartbeatReplacesTheWorkersCapacityAndASilentWorkerComesBack) {
    table.heartbeat("a:1", 4, now);
    table.heartbeat("a:1", 9, now);
    EXPECT_EQ(table.live_capacity(now), 9u);
    table.heartbeat("a:1", 0, now);  // draining
    EXPECT_EQ(table.live_capacity(now), 0u);
    table.heartbeat("a:1", 2, now);
    now += kSilence;
    EXPECT_EQ(table.live_capacity(now), 0u);
    table.heartbeat("a:1", 3, now);
    EXPECT_EQ(table.live_capacity(now), 3u);
    EXPECT_EQ(table.size(), 1u);
}

// A result shows the worker is live: its last capacity counts again.
TEST_F(WorkerTableTest, AResultKeepsAWorkerLive) {
    table.heartbeat("a:1", 4, now);
    now += 4s;
    ++table.result("a:1", now).tasks;
    now += 4s;
    EXPECT_EQ(table.live_capacity(now), 4u);
    EXPECT_TRUE(table.live(table.result("a:1", now), now));
}

// "Cap the table ... with the overflow counted": the new worker takes the place of the one
// silent the longest, whose tasks are kept in others().
TEST_F(WorkerTableTest, AFullTableDropsTheWorkerSilentTheLongestAndKeepsItsCounts) {
    table.heartbeat("a:1", 1, now);
    table.result("a:1", now).tasks += 5;
    now += 1s;
    table.heartbeat("b:2", 1, now);
    now += 1s;
    table.heartbeat("c:3", 1, now);
    now += kSilence;                 // all three silent now
    table.heartbeat("b:2", 1, now);  // b is back
    EXPECT_TRUE(table.heartbeat("d:4", 2, now));
    EXPECT_EQ(names(), (std::vector<std::string>{"c:3", "b:2", "d:4"}));
    EXPECT_EQ(table.dropped(), 1u);
    EXPECT_EQ(table.others().tasks, 5u);
    EXPECT_EQ(table.live_capacity(now), 3u);
    EXPECT_EQ(table.size(), 3u);
}

// When every entry is live, a new name is not tracked: a flood of made-up names neither grows
// the table nor adds capacity, and is counted.
TEST_F(WorkerTableTest, WhenEveryEntryIsLiveANewWorkerIsNotTrackedAndIsCounted) {
    table.heartbeat("a:1", 1, now);
    table.heartbeat("b:2", 1, now);
    table.heartbeat("c:3", 1, now);
    for (int i = 0; i < 100; ++i) {
        EXPECT_FALSE(table.heartbeat("fake:" + std::to_string(i), 1000, now));
    }
    ++table.result("fake:7", now).tasks;
    EXPECT_EQ(table.size(), 3u);
    EXPECT_EQ(table.live_capacity(now), 3u);
    EXPECT_EQ(table.untracked(), 101u);
    EXPECT_EQ(table.others().tasks, 1u);
    // A worker already in the table keeps its place.
    EXPECT_TRUE(table.heartbeat("b:2", 5, now));
    EXPECT_EQ(table.live_capacity(now), 7u);
    // Once the flood has been silent for the silence, a real worker gets in.
    now += kSilence;
    table.heartbeat("a:1", 1, now);
    EXPECT_TRUE(table.heartbeat("real:9", 4, now));
    EXPECT_EQ(table.live_capacity(now), 5u);
}

// "Make capacity accounting constant time": 200,000 made-up names, a capacity asked for after
// each, against a table of 1,000.
TEST(WorkerTable, AFloodOfMadeUpNamesStaysBoundedAndFast) {
    WorkerTable table{{.silence = kSilence, .max_workers = 1000}};
    auto now = WorkerTable::TimePoint{} + 1h;
    const auto started = std::chrono::steady_clock::now();
    std::uint64_t tracked = 0;
    for (int i = 0; i < 200'000; ++i) {
        if (i % 100 == 0) now += 1ms;  // 2 s in all: every name stays live
        tracked += table.heartbeat("h" + std::to_string(i) + ":1", 2, now) ? 1u : 0u;
        (void)table.live_capacity(now);
    }
    const auto took = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(table.size(), 1000u);
    EXPECT_EQ(tracked, 1000u);
    EXPECT_EQ(table.untracked(), 199'000u);
    EXPECT_EQ(table.live_capacity(now), 2000u);
    // The unbounded table this replaces walked every worker per heartbeat: 2 * 10^10 steps here.
    EXPECT_LT(took, 20s);
}

// A pause of the sink is not the workers' silence.
TEST_F(WorkerTableTest, APauseIsNotChargedToTheWorkers) {
    table.heartbeat("a:1", 4, now);
    now += 1min;
    table.paused(1min);
    EXPECT_EQ(table.live_capacity(now), 4u);
    now += kSilence;
    EXPECT_EQ(table.live_capacity(now), 0u);
}

}  // namespace
}  // namespace taskpipe
