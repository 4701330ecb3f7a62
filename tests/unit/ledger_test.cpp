// The ventilator's Ledger against a fake clock: the decisions docs/reliability.md describes
// (deadlines, re-sends, attempts, lost tasks, releases, the window, the reorder window), each in
// microseconds instead of the seconds the real timeouts take.
#include "ledger.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace taskpipe {
namespace {

using namespace std::chrono_literals;
using TimePoint = Ledger::TimePoint;

constexpr auto kLiveness = 5s;

class LedgerTest : public ::testing::Test {
  protected:
    Ledger ledger{{.liveness_timeout = kLiveness, .max_attempts = 3, .window = 1000}};
    TimePoint now = TimePoint{} + 1h;

    // Sends everything the ledger offers now; returns the ids in order.
    std::vector<std::uint64_t> send_all() {
        std::vector<std::uint64_t> ids;
        while (auto task = ledger.next_to_send(now)) {
            ids.push_back(task->id);
            ledger.sent(now);
        }
        return ids;
    }
    void add(std::uint64_t first, std::uint64_t last) {
        for (std::uint64_t id = first; id <= last; ++id) ledger.add(id, "p" + std::to_string(id));
    }
};

TEST_F(LedgerTest, NewTasksGoOutInIdOrderWithTheirPayloadAndAttemptOne) {
    ledger.set_capacity(10);
    add(1, 3);
    const auto first = ledger.next_to_send(now);
    ASSERT_TRUE(first);
    EXPECT_EQ(first->id, 1u);
    EXPECT_EQ(first->attempt, 1u);
    EXPECT_EQ(first->payload, "p1");
    ledger.sent(now);
    EXPECT_EQ(send_all(), (std::vector<std::uint64_t>{2, 3}));
    EXPECT_EQ(ledger.size(), 3u);
}

// "A task with no result whose deadline passes is sent again (attempt + 1)."
TEST_F(LedgerTest, ATaskWithNoResultIsSentAgainAfterTheLivenessTimeout) {
    ledger.set_capacity(10);
    add(1, 1);
    send_all();
    now += kLiveness - 1ms;
    EXPECT_TRUE(ledger.expire(now).empty());
    EXPECT_FALSE(ledger.next_to_send(now));
    now += 1ms;
    EXPECT_TRUE(ledger.expire(now).empty());
    const auto again = ledger.next_to_send(now);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->attempt, 2u);
    EXPECT_EQ(ledger.resent(), 1u);
}

// "The deadline moves forward whenever the sink reports that a live worker holds the task."
TEST_F(LedgerTest, AnAliveNamingATaskMovesItsDeadline) {
    ledger.set_capacity(10);
    add(1, 2);
    send_all();
    now += 4s;
    const std::vector<std::uint64_t> held = {1};
    ledger.alive(held, std::nullopt, now);
    now += 2s;
    EXPECT_TRUE(ledger.expire(now).empty());
    EXPECT_EQ(send_all(), (std::vector<std::uint64_t>{2}));  // 1 is still held
}

// "After max_attempts sends the task is reported lost to the sink."
TEST_F(LedgerTest, ATaskIsLostAfterMaxAttemptsSends) {
    ledger.set_capacity(10);
    add(7, 7);
    for (std::uint32_t attempt = 1; attempt <= 3; ++attempt) {
        ASSERT_EQ(send_all(), std::vector<std::uint64_t>{7}) << "attempt " << attempt;
        now += kLiveness;
        const auto lost = ledger.expire(now);
        if (attempt < 3) {
            EXPECT_TRUE(lost.empty());
        } else {
            ASSERT_EQ(lost.size(), 1u);
            EXPECT_EQ(lost[0].id, 7u);
            EXPECT_EQ(lost[0].attempts, 3u);
        }
    }
    EXPECT_TRUE(ledger.empty());
}

// Issue 10: "Heartbeats don't say which held tasks have started, so every held task counts an
// attempt. Add the running list and count an attempt only for tasks that were running."
TEST_F(LedgerTest, ATaskOnlyQueuedOnAWorkerThatWentSilentIsResentWithoutAnAttempt) {
    ledger.set_capacity(10);
    add(1, 2);
    send_all();
    const std::vector<std::uint64_t> held = {1, 2};
    const std::vector<std::uint64_t> running = {1};
    ledger.alive(held, running, now);
    now += kLiveness;
    ledger.expire(now);
    std::vector<std::uint32_t> attempts;
    while (auto task = ledger.next_to_send(now)) {
        attempts.push_back(task->attempt);
        ledger.sent(now);
    }
    EXPECT_EQ(attempts, (std::vector<std::uint32_t>{2, 1}));  // task 1 ran, task 2 never did
    const auto resends = ledger.take_resends();
    ASSERT_EQ(resends.size(), 2u);
    EXPECT_TRUE(resends[0].counted);
    EXPECT_FALSE(resends[1].counted);
}

// A worker may die of a task it started after its last heartbeat named it queued (the heartbeat
// saying it started did not get out): such a task must not circle for ever uncounted. The
// ledger re-sends a task as never started at most max_attempts times; then every re-send counts.
TEST_F(LedgerTest, ATaskSaidQueuedEveryTimeItsWorkerDiesCountsAttemptsAfterMaxAttemptsFreeOnes) {
    ledger.set_capacity(10);
    add(1, 1);
    const std::vector<std::uint64_t> held = {1};
    const std::vector<std::uint64_t> none;
    std::vector<bool> counted;
    std::vector<Ledger::LostTask> lost;
    for (int round = 0; round < 10 && lost.empty(); ++round) {
        ASSERT_EQ(send_all(), held) << "round " << round;
        ledger.alive(held, none, now);  // "queued", and then the worker goes silent
        now += kLiveness;
        lost = ledger.expire(now);
        for (const Ledger::Resend& r : ledger.take_resends()) counted.push_back(r.counted);
    }
    EXPECT_EQ(counted, (std::vector<bool>{false, false, false, true, true}));
    ASSERT_EQ(lost.size(), 1u) << "the task circled without end";
    EXPECT_EQ(lost[0].attempts, 3u);
}

// An older worker does not say what is running: every held task counts, as before.
TEST_F(LedgerTest, WithoutARunningListEveryHeldTaskCountsAnAttempt) {
    ledger.set_capacity(10);
    add(1, 2);
    send_all();
    const std::vector<std::uint64_t> held = {1, 2};
    ledger.alive(held, std::nullopt, now);
    now += kLiveness;
    ledger.expire(now);
    while (auto task = ledger.next_to_send(now)) {
        EXPECT_EQ(task->attempt, 2u);
        ledger.sent(now);
    }
}

// "A task a worker released is sent again after a short delay, with the same attempt."
TEST_F(LedgerTest, AReleasedTaskIsSentAgainAfterTheReleaseDelayWithTheSameAttempt) {
    ledger.set_capacity(10);
    add(1, 1);
    send_all();
    const std::vector<std::uint64_t> released = {1};
    ledger.released(released, now);
    EXPECT_FALSE(ledger.next_to_send(now));
    EXPECT_EQ(ledger.next_release(), now + 20ms);
    now += 20ms;
    const auto again = ledger.next_to_send(now);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->attempt, 1u);
    EXPECT_EQ(ledger.released_count(), 1u);
}

TEST_F(LedgerTest, AnAcknowledgedTaskIsForgottenAndNotSentAgain) {
    ledger.set_capacity(10);
    add(1, 2);
    send_all();
    now += kLiveness;
    ledger.expire(now);                  // both queued to be sent again
    EXPECT_TRUE(ledger.acknowledge(1));  // a late result
    EXPECT_FALSE(ledger.acknowledge(1));
    EXPECT_EQ(send_all(), std::vector<std::uint64_t>{2});
    EXPECT_TRUE(ledger.acknowledged().contains(1));
}

// "At most min(window, the live workers' total capacity) tasks are in flight", at least one.
TEST_F(LedgerTest, TheWindowIsTheLiveCapacityBoundedByTheOptionAndAtLeastOne) {
    EXPECT_EQ(ledger.window(), 1u);  // no worker known yet
    ledger.set_capacity(8);
    EXPECT_EQ(ledger.window(), 8u);
    ledger.set_capacity(5000);
    EXPECT_EQ(ledger.window(), 1000u);
    ledger.set_capacity(2);
    add(1, 1);
    EXPECT_FALSE(ledger.wants(2));  // task 1 waits to be sent
    send_all();
    EXPECT_TRUE(ledger.wants(2));
    add(2, 2);
    send_all();
    EXPECT_FALSE(ledger.wants(3));  // two in flight
}

// "No task is sent whose id is that window or more above the lowest id the sink has not
// acknowledged."
TEST_F(LedgerTest, TheReorderWindowStopsReadingPastTheLowestUnacknowledgedId) {
    ledger.set_capacity(100);
    ledger.set_reorder_window(3);
    add(1, 3);
    send_all();
    EXPECT_FALSE(ledger.wants(4));
    ledger.acknowledge(2);
    ledger.acknowledge(3);
    EXPECT_FALSE(ledger.wants(4));  // task 1 still holds the window
    ledger.acknowledge(1);
    EXPECT_TRUE(ledger.wants(4));
}

// While nothing can be learnt (the sink silent, this process paused), no deadline passes.
TEST_F(LedgerTest, HoldKeepsEveryDeadlineAtLeastALivenessTimeoutAway) {
    ledger.set_capacity(10);
    add(1, 1);
    send_all();
    now += 10s;  // past the deadline, as after a pause
    ledger.hold(now);
    EXPECT_TRUE(ledger.expire(now + kLiveness - 1ms).empty());
    EXPECT_FALSE(ledger.next_to_send(now + kLiveness - 1ms));
    ledger.expire(now + kLiveness);
    EXPECT_TRUE(ledger.next_to_send(now + kLiveness));
}

// Issue 12: "Without CURVE a peer that takes tasks and names them in heartbeats keeps them for
// ever. Give heartbeats a bound: a task held longer than a documented limit is re-sent."
class MaxTaskTimeTest : public LedgerTest {
  protected:
    static constexpr auto kMaxTaskTime = 60s;
    MaxTaskTimeTest() {
        ledger = Ledger{{.liveness_timeout = kLiveness,
                         .max_attempts = 3,
                         .window = 1000,
                         .max_task_time = kMaxTaskTime}};
        ledger.set_capacity(10);
    }
    // Heartbeats name `ids` as running every second from now until now + `how_long`.
    void keep_naming(const std::vector<std::uint64_t>& ids, std::chrono::seconds how_long) {
        for (auto t = 0s; t < how_long; t += 1s) {
            now += 1s;
            ledger.alive(ids, ids, now);
            EXPECT_TRUE(ledger.expire(now).empty());
        }
    }
};

TEST_F(MaxTaskTimeTest, ATaskHeldPastTheLimitIsSentAgainThoughHeartbeatsNameIt) {
    add(1, 2);
    send_all();
    const std::vector<std::uint64_t> held = {1, 2};
    keep_naming(held, kMaxTaskTime - 1s);
    EXPECT_FALSE(ledger.next_to_send(now)) << "nothing is re-sent before the limit";
    now += 1s;
    ledger.alive(held, held, now);
    EXPECT_TRUE(ledger.expire(now).empty());
    std::vector<std::uint32_t> attempts;
    while (auto task = ledger.next_to_send(now)) {
        attempts.push_back(task->attempt);
        ledger.sent(now);
    }
    EXPECT_EQ(attempts, (std::vector<std::uint32_t>{2, 2}));
    const auto resends = ledger.take_resends();
    ASSERT_EQ(resends.size(), 2u);
    EXPECT_TRUE(resends[0].overtime);
    EXPECT_TRUE(resends[0].counted);
    EXPECT_EQ(resend_reason(resends[0]),
              "held longer than --max-task-time, though a worker still names it");
}

// A thief that says the task is only queued does not keep it from counting attempts: held too
// long is held too long, so the task ends lost rather than circling for ever.
TEST_F(MaxTaskTimeTest, ATaskHeldPastTheLimitEveryTimeIsLostAfterMaxAttempts) {
    add(1, 1);
    const std::vector<std::uint64_t> held = {1};
    const std::vector<std::uint64_t> none;
    for (std::uint32_t attempt = 1; attempt <= 3; ++attempt) {
        ASSERT_EQ(send_all(), held) << "attempt " << attempt;
        for (auto t = 0s; t < kMaxTaskTime; t += 1s) {
            now += 1s;
            ledger.alive(held, none, now);  // "queued", every second
        }
        const auto lost = ledger.expire(now);
        if (attempt < 3) {
            EXPECT_TRUE(lost.empty());
        } else {
            ASSERT_EQ(lost.size(), 1u);
            EXPECT_EQ(lost[0].attempts, 3u);
            EXPECT_TRUE(lost[0].overtime);
        }
    }
    EXPECT_TRUE(ledger.empty());
}

// The limit counts from each send: a re-sent task has the whole limit again.
TEST_F(MaxTaskTimeTest, EachSendStartsTheLimitAfresh) {
    add(1, 1);
    send_all();
    now += kLiveness;  // its worker went silent: sent again at once
    ledger.expire(now);
    ASSERT_EQ(send_all(), std::vector<std::uint64_t>{1});
    const std::vector<std::uint64_t> held = {1};
    keep_naming(held, kMaxTaskTime - 1s);
    EXPECT_FALSE(ledger.next_to_send(now));
}

// The late result of the first holder is the task's result: once acknowledged, the copy in
// flight is forgotten (the sink drops whichever result comes second).
TEST_F(MaxTaskTimeTest, TheFirstResultAfterAnOvertimeResendEndsTheTask) {
    add(1, 1);
    send_all();
    now += kMaxTaskTime;
    ledger.expire(now);
    ASSERT_EQ(send_all(), std::vector<std::uint64_t>{1});
    EXPECT_TRUE(ledger.acknowledge(1));
    EXPECT_TRUE(ledger.empty());
    now += kMaxTaskTime;
    EXPECT_TRUE(ledger.expire(now).empty());
    EXPECT_FALSE(ledger.next_to_send(now));
}

// --max-task-time 0: heartbeats keep a task for as long as they name it, as before.
TEST_F(LedgerTest, WithoutAMaxTaskTimeHeartbeatsKeepATaskForEver) {
    ledger = Ledger{{.liveness_timeout = kLiveness,
                     .max_attempts = 3,
                     .window = 1000,
                     .max_task_time = std::chrono::milliseconds(0)}};
    ledger.set_capacity(10);
    add(1, 1);
    send_all();
    const std::vector<std::uint64_t> held = {1};
    for (int i = 0; i < 48 * 3600; ++i) {
        now += 1s;
        ledger.alive(held, held, now);
    }
    EXPECT_TRUE(ledger.expire(now).empty());
    EXPECT_FALSE(ledger.next_to_send(now));
}

// Tasks go out several to a frame when the workers take groups: new tasks are read until a
// frame's worth wait (group_max), never past the window; without groups, one at a time.
TEST_F(LedgerTest, NewTasksWaitToFillAFrameOnlyWhenTheWorkersTakeGroups) {
    ledger.set_capacity(10);
    EXPECT_TRUE(ledger.wants(1));
    add(1, 1);
    EXPECT_FALSE(ledger.wants(2)) << "without groups a new task is sent before the next is read";
    send_all();

    ledger.set_group_max(4);
    std::uint64_t next = 2;
    auto read_while_wanted = [&] {
        for (; ledger.wants(next); ++next) add(next, next);
    };
    read_while_wanted();
    EXPECT_EQ(next, 6u) << "four new tasks fill a frame";
    EXPECT_EQ(send_all(), (std::vector<std::uint64_t>{2, 3, 4, 5}));
    read_while_wanted();
    EXPECT_EQ(next, 10u);
    send_all();
    EXPECT_TRUE(ledger.wants(next));
    add(next, next);
    ++next;
    EXPECT_FALSE(ledger.wants(next)) << "the window (capacity 10) is full";
    EXPECT_EQ(ledger.size(), 10u);
}

TEST_F(LedgerTest, AReSendWaitingStopsReadingWhateverTheGroupSize) {
    ledger.set_capacity(10);
    ledger.set_group_max(8);
    add(1, 2);
    send_all();
    now += kLiveness;
    EXPECT_TRUE(ledger.expire(now).empty());
    EXPECT_FALSE(ledger.wants(3)) << "re-sends go out before new tasks are read";
    EXPECT_EQ(send_all(), (std::vector<std::uint64_t>{1, 2}));
    EXPECT_TRUE(ledger.wants(3));
}

}  // namespace
}  // namespace taskpipe
