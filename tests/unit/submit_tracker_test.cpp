// The tasks of one `taskpipe submit` command (submit/tracker.hpp), against a scripted head and
// a fake clock. What the Tracker promises:
//
// "Requests are pipelined: up to `window` are outstanding at once, and answers are matched by
// `req`. A waited task is finished by the `done` the head pushes to this connection, or by a
// long-polled `status` (`wait_ms`): at once for a task this connection was not told about, after
// `push_grace` for one it was, and again after every reconnection. While the connection is down
// nothing is sent; when it comes back, the requests that are safe to repeat (status, cancel, a
// submit with a key) are sent again. A submit without a key that was sent and not answered gives
// up: the head may or may not have taken it."

#include "tracker.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace taskpipe {
namespace {

using namespace std::chrono_literals;
using TimePoint = Tracker::TimePoint;

const TimePoint kStart = TimePoint() + 1000s;
constexpr std::uint64_t kHead = 77;

// Everything the Tracker wants sent now, marked as sent.
std::vector<ToHead> drain(Tracker& tracker) {
    std::vector<ToHead> sent;
    while (const ToHead* request = tracker.next_request()) {
        sent.push_back(*request);
        tracker.request_sent();
    }
    return sent;
}

std::uint64_t req_of(const ToHead& message) {
    return std::visit([](const auto& m) { return m.req; }, message);
}

Accepted accepted(std::uint64_t req, std::uint64_t id, std::string state = "queued",
                  bool created = true) {
    return Accepted{req, id, created, std::move(state), kHead};
}

State state(std::uint64_t req, std::uint64_t id, std::string name) {
    State s;
    s.req = req;
    s.id = id;
    s.state = std::move(name);
    s.head = kHead;
    if (is_final_state(s.state) && s.state != "cancelled") {
        s.status = s.state;
        s.out = "output of " + std::to_string(id) + "\n";
        s.exit_code = s.state == "ok" ? 0 : 1;
    }
    return s;
}

Done done(std::uint64_t id, std::string name, std::uint64_t head = kHead) {
    Done d;
    d.id = id;
    d.state = std::move(name);
    d.status = d.state;
    d.out = "output of " + std::to_string(id) + "\n";
    d.head = head;
    return d;
}

std::vector<Tracker::Task> take_all(Tracker& tracker) {
    std::vector<Tracker::Task> tasks;
    while (auto task = tracker.take_complete()) tasks.push_back(std::move(*task));
    return tasks;
}

Tracker started(Tracker::Settings settings = {}) {
    Tracker tracker(settings);
    tracker.connected(kStart);
    return tracker;
}

TEST(Tracker, SubmissionsArePipelinedAndPrintedInTheirOrder) {
    Tracker tracker = started({.delay_ms = 1500, .not_before_us = 99});
    tracker.add_submit("a", std::nullopt);
    tracker.add_submit("b", "key-b");
    tracker.add_submit("c", std::nullopt);
    tracker.tick(kStart);
    const std::vector<ToHead> sent = drain(tracker);
    ASSERT_EQ(sent.size(), 3u);  // all three before any answer
    const Submit& b = std::get<Submit>(sent[1]);
    EXPECT_EQ(b.payload, "b");
    EXPECT_EQ(b.key, "key-b");
    EXPECT_EQ(b.delay_ms, 1500u);
    EXPECT_EQ(b.not_before_us, 99u);
    EXPECT_FALSE(b.notify);  // nobody waits for a push
    EXPECT_NE(req_of(sent[0]), req_of(sent[1]));

    // The second and third are answered first: nothing is complete before the first is.
    tracker.received(accepted(req_of(sent[2]), 12), kStart);
    tracker.received(accepted(req_of(sent[1]), 11, "ok", false), kStart);
    EXPECT_FALSE(tracker.take_complete());
    tracker.received(accepted(req_of(sent[0]), 10), kStart);
    const auto tasks = take_all(tracker);
    ASSERT_EQ(tasks.size(), 3u);
    EXPECT_EQ(tasks[0].id, 10u);
    EXPECT_EQ(tasks[1].id, 11u);
    EXPECT_FALSE(tasks[1].created);
    EXPECT_EQ(tasks[2].id, 12u);
    EXPECT_EQ(tasks[2].number, 3u);
    EXPECT_TRUE(tracker.idle());
}

TEST(Tracker, NoMoreThanTheWindowIsOutstanding) {
    Tracker tracker = started({.window = 2});
    tracker.add_submit("a", std::nullopt);
    EXPECT_TRUE(tracker.wants_more());
    tracker.add_submit("b", std::nullopt);
    EXPECT_FALSE(tracker.wants_more());
    tracker.tick(kStart);
    const auto sent = drain(tracker);
    ASSERT_EQ(sent.size(), 2u);
    tracker.received(accepted(req_of(sent[0]), 1), kStart);
    EXPECT_TRUE(tracker.wants_more());
}

TEST(Tracker, ARefusalCompletesTheTaskWithTheHeadsError) {
    Tracker tracker = started();
    tracker.add_submit("x", "k");
    tracker.tick(kStart);
    const auto sent = drain(tracker);
    tracker.received(Error{req_of(sent[0]), "conflict", "another payload", 7}, kStart);
    const auto task = tracker.take_complete();
    ASSERT_TRUE(task);
    ASSERT_TRUE(task->refused);
    EXPECT_EQ(task->refused->code, "conflict");
    EXPECT_EQ(task->refused->id, 7u);
}

TEST(Tracker, AnAnswerToNoRequestIsCountedAndIgnored) {
    Tracker tracker = started();
    tracker.add_submit("x", std::nullopt);
    tracker.tick(kStart);
    const auto sent = drain(tracker);
    tracker.received(accepted(req_of(sent[0]) + 100, 5), kStart);
    EXPECT_EQ(tracker.stale_answers(), 1u);
    EXPECT_FALSE(tracker.take_complete());
}

TEST(Tracker, AWaitedTaskEndsWithItsPushedDone) {
    Tracker tracker = started({.wait = true});
    tracker.add_submit("x", std::nullopt);
    tracker.tick(kStart);
    const auto sent = drain(tracker);
    EXPECT_TRUE(std::get<Submit>(sent[0]).notify);
    tracker.received(accepted(req_of(sent[0]), 5), kStart);
    EXPECT_FALSE(tracker.take_complete());
    tracker.tick(kStart + 1s);  // within the push grace: no poll
    EXPECT_TRUE(drain(tracker).empty());
    tracker.received(done(6, "ok"), kStart + 1s);  // another task's
    tracker.received(done(5, "failed"), kStart + 1s);
    const auto task = tracker.take_complete();
    ASSERT_TRUE(task);
    EXPECT_EQ(task->report->state, "failed");
    EXPECT_EQ(task->report->out, "output of 5\n");
}

TEST(Tracker, AWaitedTaskIsPolledAfterThePushGraceShouldThePushBeLost) {
    Tracker tracker = started({.wait = true, .push_grace = 2s, .long_poll = 30s});
    tracker.add_submit("x", std::nullopt);
    tracker.tick(kStart);
    tracker.received(accepted(req_of(drain(tracker)[0]), 5, "running"), kStart);
    EXPECT_EQ(tracker.next_wakeup(), kStart + 2s);
    tracker.tick(kStart + 2s);
    auto sent = drain(tracker);
    ASSERT_EQ(sent.size(), 1u);
    const Query& poll = std::get<Query>(sent[0]);
    EXPECT_EQ(poll.id, 5u);
    EXPECT_EQ(poll.wait_ms, 30000u);
    // Answered when its wait ran out, not finished: asked again at once.
    tracker.received(state(poll.req, 5, "running"), kStart + 32s);
    tracker.tick(kStart + 32s);
    sent = drain(tracker);
    ASSERT_EQ(sent.size(), 1u);
    // Answered early (the head holds too many waits): asked again after the back-off.
    tracker.received(state(req_of(sent[0]), 5, "running"), kStart + 32s);
    tracker.tick(kStart + 32s);
    EXPECT_TRUE(drain(tracker).empty());
    tracker.tick(kStart + 33s);
    sent = drain(tracker);
    ASSERT_EQ(sent.size(), 1u);
    tracker.received(state(req_of(sent[0]), 5, "ok"), kStart + 34s);
    const auto task = tracker.take_complete();
    ASSERT_TRUE(task);
    EXPECT_EQ(task->report->state, "ok");
    EXPECT_EQ(task->report->out, "output of 5\n");
}

TEST(Tracker, ADuplicateOfAFinishedTaskIsAskedForItsResultAtOnce) {
    Tracker tracker = started({.wait = true});
    tracker.add_submit("x", "k");
    tracker.tick(kStart);
    tracker.received(accepted(req_of(drain(tracker)[0]), 5, "ok", false), kStart);
    tracker.tick(kStart);
    const auto sent = drain(tracker);
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(std::get<Query>(sent[0]).id, 5u);
}

TEST(Tracker, AHeadRestartedWithoutItsStoreHasForgottenTheTask) {
    Tracker tracker = started({.wait = true});
    tracker.add_submit("x", std::nullopt);
    tracker.tick(kStart);
    tracker.received(accepted(req_of(drain(tracker)[0]), 5), kStart);
    tracker.received(done(5, "ok", kHead + 1), kStart);
    const auto task = tracker.take_complete();
    ASSERT_TRUE(task);
    EXPECT_NE(task->gave_up.find("restarted without its store"), std::string::npos);
}

TEST(Tracker, StatusAndCancelAskOnce) {
    Tracker tracker = started();
    tracker.add_status(12);
    tracker.add_status(std::string("photo-42"));
    tracker.add_cancel(13);
    tracker.tick(kStart);
    const auto sent = drain(tracker);
    ASSERT_EQ(sent.size(), 3u);
    EXPECT_EQ(std::get<Query>(sent[0]).id, 12u);
    EXPECT_EQ(std::get<Query>(sent[0]).wait_ms, 0u);
    EXPECT_FALSE(std::get<Query>(sent[0]).key);
    EXPECT_EQ(std::get<Query>(sent[1]).id, 0u);
    EXPECT_EQ(std::get<Query>(sent[1]).key, "photo-42");
    EXPECT_EQ(std::get<Cancel>(sent[2]).id, 13u);
    tracker.received(state(req_of(sent[0]), 12, "running"), kStart);
    tracker.received(state(req_of(sent[1]), 0, "unknown"), kStart);
    tracker.received(state(req_of(sent[2]), 13, "cancelled"), kStart);
    const auto tasks = take_all(tracker);
    ASSERT_EQ(tasks.size(), 3u);
    EXPECT_EQ(tasks[0].report->state, "running");
    EXPECT_EQ(tasks[1].report->state, "unknown");
    EXPECT_EQ(tasks[2].report->state, "cancelled");
}

TEST(Tracker, StatusWithWaitLongPollsUntilTheTaskEnds) {
    Tracker tracker = started({.wait = true, .long_poll = 30s});
    tracker.add_status(std::string("k"));
    tracker.tick(kStart);
    auto sent = drain(tracker);
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(std::get<Query>(sent[0]).key, "k");
    EXPECT_EQ(std::get<Query>(sent[0]).wait_ms, 30000u);
    tracker.received(state(req_of(sent[0]), 9, "running"), kStart + 30s);
    tracker.tick(kStart + 30s);
    sent = drain(tracker);
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(std::get<Query>(sent[0]).id, 9u);     // by id, now that it is known
    tracker.received(done(9, "ok"), kStart + 31s);  // a push for it ends the wait too
    const auto task = tracker.take_complete();
    ASSERT_TRUE(task);
    EXPECT_EQ(task->report->state, "ok");
}

TEST(Tracker, TheDeadlineBoundsEveryWaitAndThenGivesUp) {
    Tracker tracker = started({.wait = true, .deadline = kStart + 10s, .push_grace = 2s});
    tracker.add_submit("x", std::nullopt);
    tracker.tick(kStart);
    tracker.received(accepted(req_of(drain(tracker)[0]), 5), kStart);
    tracker.tick(kStart + 2s);
    const auto sent = drain(tracker);
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(std::get<Query>(sent[0]).wait_ms, 8000u);  // no longer than the deadline
    EXPECT_EQ(tracker.next_wakeup(), kStart + 10s);
    tracker.tick(kStart + 10s);
    EXPECT_TRUE(tracker.stopped());
    EXPECT_FALSE(tracker.wants_more());
    const auto task = tracker.take_complete();
    ASSERT_TRUE(task);
    EXPECT_EQ(task->gave_up, "the --timeout passed");
    EXPECT_EQ(task->report->state, "queued");  // the last the head said
    EXPECT_TRUE(tracker.idle());
}

TEST(Tracker, NothingIsSentWhileTheConnectionIsDown) {
    Tracker tracker({});
    tracker.add_submit("x", std::nullopt);
    tracker.tick(kStart);
    EXPECT_EQ(tracker.next_request(), nullptr);
    tracker.connected(kStart);
    EXPECT_EQ(drain(tracker).size(), 1u);
}

TEST(Tracker, AfterADisconnectionWhatIsSafeToRepeatIsSentAgain) {
    Tracker tracker = started({.patience = 30s});
    tracker.add_submit("no key", std::nullopt);
    tracker.add_submit("keyed", "k");
    tracker.add_status(4);
    tracker.add_cancel(5);
    tracker.add_submit("not sent yet", std::nullopt);
    tracker.tick(kStart);
    for (int i = 0; i < 4; ++i) tracker.request_sent();  // the fifth is still in the outbox
    tracker.disconnected(kStart + 1s, "the connection to the head closed");
    EXPECT_EQ(tracker.next_request(), nullptr);
    tracker.connected(kStart + 2s);
    const auto sent = drain(tracker);
    ASSERT_EQ(sent.size(), 4u);
    EXPECT_EQ(std::get<Submit>(sent[0]).payload, "keyed");
    EXPECT_EQ(std::get<Query>(sent[1]).id, 4u);
    EXPECT_EQ(std::get<Cancel>(sent[2]).id, 5u);
    EXPECT_EQ(std::get<Submit>(sent[3]).payload, "not sent yet");
    const auto first = tracker.take_complete();
    ASSERT_TRUE(first);
    EXPECT_NE(first->gave_up.find("may or may not have been accepted"), std::string::npos);
    EXPECT_EQ(first->gave_up.find("the connection to the head closed"), 0u);
}

TEST(Tracker, WaitedTasksArePolledAgainOnceReconnected) {
    Tracker tracker = started({.wait = true, .push_grace = 2s});
    tracker.add_submit("x", std::nullopt);
    tracker.tick(kStart);
    tracker.received(accepted(req_of(drain(tracker)[0]), 5), kStart);
    tracker.disconnected(kStart + 1s, "closed");
    tracker.connected(kStart + 1500ms);  // before the grace: the push would go nowhere
    const auto sent = drain(tracker);
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(std::get<Query>(sent[0]).id, 5u);
}

TEST(Tracker, AHeadAwayLongerThanThePatienceEndsTheCommand) {
    Tracker tracker = started({.wait = true, .patience = 30s});
    tracker.add_submit("x", std::nullopt);
    tracker.tick(kStart);
    tracker.received(accepted(req_of(drain(tracker)[0]), 5), kStart);
    tracker.disconnected(kStart + 1s, "the connection to the head at ipc://h closed");
    EXPECT_EQ(tracker.next_wakeup(), kStart + 31s);
    tracker.tick(kStart + 30s);
    EXPECT_FALSE(tracker.stopped());
    tracker.tick(kStart + 31s);
    EXPECT_TRUE(tracker.stopped());
    const auto task = tracker.take_complete();
    ASSERT_TRUE(task);
    EXPECT_EQ(task->gave_up,
              "the connection to the head at ipc://h closed, and the head did not come back "
              "within 30 s");
}

// "A head that is connected but does not answer (stopped, hung) is given up on as one that is
// away: a request unanswered for `patience` (a long poll: its wait, then `patience`) ends the
// command."
TEST(Tracker, AHeadThatDoesNotAnswerWithinThePatienceEndsTheCommand) {
    Tracker tracker = started({.patience = 30s});
    tracker.add_submit("x", std::nullopt);
    tracker.tick(kStart);
    ASSERT_EQ(drain(tracker).size(), 1u);
    EXPECT_EQ(tracker.next_wakeup(), kStart + 30s);
    tracker.tick(kStart + 29s);
    EXPECT_FALSE(tracker.stopped());
    tracker.tick(kStart + 30s);
    EXPECT_TRUE(tracker.stopped());
    const auto task = tracker.take_complete();
    ASSERT_TRUE(task);
    EXPECT_EQ(task->gave_up,
              "the head did not answer a request within 30 s (is it stopped, or overloaded?)");
    EXPECT_FALSE(tracker.next_wakeup());
}

TEST(Tracker, ALongPollMayTakeItsWaitBeforeThePatienceStarts) {
    Tracker tracker = started({.wait = true, .long_poll = 30s, .patience = 10s});
    tracker.add_status(5);
    tracker.tick(kStart);
    const auto sent = drain(tracker);
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(std::get<Query>(sent[0]).wait_ms, 30000u);
    tracker.tick(kStart + 39s);
    EXPECT_FALSE(tracker.stopped());
    tracker.received(state(req_of(sent[0]), 5, "running"), kStart + 39s);
    tracker.tick(kStart + 39s);  // answered: asked again, and this one has its own time
    ASSERT_EQ(drain(tracker).size(), 1u);
    tracker.tick(kStart + 78s);
    EXPECT_FALSE(tracker.stopped());
    tracker.tick(kStart + 79s);
    EXPECT_TRUE(tracker.stopped());
}

TEST(Tracker, StopGivesUpOnEveryUnfinishedTask) {
    Tracker tracker = started();
    tracker.add_submit("a", std::nullopt);
    tracker.add_submit("b", std::nullopt);
    tracker.tick(kStart);
    const auto sent = drain(tracker);
    tracker.received(accepted(req_of(sent[0]), 1), kStart);
    tracker.stop("interrupted");
    const auto tasks = take_all(tracker);
    ASSERT_EQ(tasks.size(), 2u);
    EXPECT_EQ(tasks[0].gave_up, "");
    EXPECT_EQ(tasks[1].gave_up, "interrupted");
    EXPECT_FALSE(tracker.next_wakeup());
}

TEST(Tracker, ThePollsInFlightAreBounded) {
    Tracker tracker = started({.wait = true, .max_polls = 2});
    for (std::uint64_t id = 1; id <= 3; ++id) tracker.add_status(id);
    tracker.tick(kStart);
    auto sent = drain(tracker);
    ASSERT_EQ(sent.size(), 2u);
    tracker.received(state(req_of(sent[0]), 1, "ok"), kStart);
    sent = drain(tracker);
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(std::get<Query>(sent[0]).id, 3u);
}

}  // namespace
}  // namespace taskpipe
