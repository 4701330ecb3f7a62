// A worker's capacity (worker/capacity.hpp): "its concurrency plus the tasks it completes in
// 100 ms at its own pace, and at least twice its concurrency", measured first over 20 ms when
// a batch starts. Time is a fake clock.

#include "capacity.hpp"

#include <gtest/gtest.h>

namespace taskpipe {
namespace {

using namespace std::chrono_literals;
using Clock = Capacity::Clock;

const Clock::time_point t0 = Clock::time_point() + 1000h;

void complete(Capacity& capacity, int tasks) {
    for (int i = 0; i < tasks; ++i) capacity.task_completed();
}

TEST(Capacity, StartsAtTwiceTheConcurrency) {
    const Capacity capacity(3, t0);
    EXPECT_EQ(capacity.value(), 6u);
    EXPECT_EQ(capacity.next_update(), t0 + 100ms);
}

TEST(Capacity, IsTheConcurrencyPlusTheTasksCompletedInAPeriod) {
    Capacity capacity(2, t0);
    complete(capacity, 50);
    EXPECT_FALSE(capacity.update(t0 + 99ms));
    EXPECT_EQ(capacity.value(), 4u) << "changed before the period ended";
    EXPECT_TRUE(capacity.update(t0 + 100ms));
    EXPECT_EQ(capacity.value(), 52u);
    EXPECT_EQ(capacity.next_update(), t0 + 200ms);
}

TEST(Capacity, IsAtLeastTwiceTheConcurrency) {
    Capacity capacity(4, t0);
    complete(capacity, 1);
    ASSERT_TRUE(capacity.update(t0 + 100ms));
    EXPECT_EQ(capacity.value(), 8u);
    ASSERT_TRUE(capacity.update(t0 + 200ms));
    EXPECT_EQ(capacity.value(), 8u);
}

// A slow worker's capacity falls back as its pace does: it does not keep what it could hold
// when it was fast.
TEST(Capacity, FollowsThePaceDownAsWellAsUp) {
    Capacity capacity(1, t0);
    complete(capacity, 200);
    ASSERT_TRUE(capacity.update(t0 + 100ms));
    EXPECT_EQ(capacity.value(), 201u);
    complete(capacity, 3);
    ASSERT_TRUE(capacity.update(t0 + 200ms));
    EXPECT_EQ(capacity.value(), 4u);
}

// A late update measures the pace over the time that passed, not over 100 ms.
TEST(Capacity, ALateUpdateIsScaledToAPeriod) {
    Capacity capacity(2, t0);
    complete(capacity, 100);
    ASSERT_TRUE(capacity.update(t0 + 200ms));
    EXPECT_EQ(capacity.value(), 52u);
}

// "the first period is 20 ms, scaled to 100 ms": a batch that starts 30 ms into a period gets
// its capacity 20 ms later, not 70 ms later.
TEST(Capacity, ABatchsFirstPeriodIsTwentyMilliseconds) {
    Capacity capacity(2, t0);
    capacity.busy(t0 + 30ms);
    EXPECT_EQ(capacity.next_update(), t0 + 50ms);
    complete(capacity, 10);
    EXPECT_FALSE(capacity.update(t0 + 49ms));
    ASSERT_TRUE(capacity.update(t0 + 50ms));
    EXPECT_EQ(capacity.value(), 2u + 50u) << "10 tasks in 20 ms is 50 in 100 ms";
    EXPECT_EQ(capacity.next_update(), t0 + 150ms);
}

// "after at least a period idle": the next batch is measured afresh, over 20 ms, and what was
// completed before it does not count towards its pace.
TEST(Capacity, ABatchAfterAPeriodIdleStartsAfresh) {
    Capacity capacity(2, t0);
    capacity.busy(t0);
    ASSERT_TRUE(capacity.update(t0 + 20ms));
    complete(capacity, 500);
    capacity.idle(t0 + 30ms);
    capacity.idle(t0 + 100ms);  // only the first idle() counts
    capacity.busy(t0 + 130ms);
    EXPECT_EQ(capacity.next_update(), t0 + 150ms);
    complete(capacity, 4);
    ASSERT_TRUE(capacity.update(t0 + 150ms));
    EXPECT_EQ(capacity.value(), 2u + 20u);
}

// "Shorter gaps, one task at a time at low load, change nothing": no 20 ms update for every
// task of a trickle.
TEST(Capacity, AShortGapIsNotANewBatch) {
    Capacity capacity(2, t0);
    capacity.busy(t0);
    ASSERT_TRUE(capacity.update(t0 + 20ms));
    ASSERT_EQ(capacity.next_update(), t0 + 120ms);
    for (auto at = t0 + 30ms; at < t0 + 120ms; at += 10ms) {
        capacity.task_completed();
        capacity.idle(at + 1ms);
        capacity.busy(at + 10ms);
        EXPECT_EQ(capacity.next_update(), t0 + 120ms);
    }
    ASSERT_TRUE(capacity.update(t0 + 120ms));
    EXPECT_EQ(capacity.value(), 2u + 9u);
}

TEST(Capacity, IsBounded) {
    Capacity capacity(1, t0);
    complete(capacity, 5'000'000);
    ASSERT_TRUE(capacity.update(t0 + 100ms));
    EXPECT_EQ(capacity.value(), 1'000'000u);
}

}  // namespace
}  // namespace taskpipe
