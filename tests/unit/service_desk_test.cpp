// The head of a service (ServiceDesk) over a memory store, with a fake clock: what producers
// are told and when, the one recorded result of each task, the queue bound, delays, waits,
// cancels, a restart, and a store that cannot be written. See docs/protocol.md "Service mode".
#include "service_desk.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace taskpipe {
namespace {

using namespace std::chrono_literals;
using TimePoint = ServiceDesk::TimePoint;

// The memory store, whose commit() can be made to fail like a full disk.
class FlakyStore final : public TaskStore {
  public:
    bool fail_commits = false;

    std::uint64_t batch() const override { return inner_->batch(); }
    SubmitOutcome submit(const Submission& s) override { return inner_->submit(s); }
    std::optional<TaskState> cancel(std::uint64_t id, std::uint64_t now_us) override {
        return inner_->cancel(id, now_us);
    }
    bool mark_sent(std::uint64_t id, std::uint32_t attempts) override {
        return inner_->mark_sent(id, attempts);
    }
    bool record(std::uint64_t id, const StoredResult& result) override {
        return inner_->record(id, result);
    }
    std::size_t expire(std::uint64_t before_us, std::size_t limit) override {
        return inner_->expire(before_us, limit);
    }
    void commit() override {
        if (fail_commits) {
            inner_->rollback();
            throw StoreError("tasks.db: database or disk is full");
        }
        inner_->commit();
    }
    void rollback() override { inner_->rollback(); }
    std::optional<StoredTask> find(std::uint64_t id) const override { return inner_->find(id); }
    std::optional<StoredTask> find_key(std::string_view key) const override {
        return inner_->find_key(key);
    }
    std::vector<StoredTask> unfinished() const override { return inner_->unfinished(); }
    StoreCounts counts() const override { return inner_->counts(); }

  private:
    std::unique_ptr<TaskStore> inner_ = make_memory_store();
};

const Producer kAlice{"alice", false};
const Producer kBob{"bob", true};

class ServiceDeskTest : public ::testing::Test {
  protected:
    FlakyStore store;
    ServiceDesk::Settings settings{.keep_results = 1h, .max_queue = 3};
    TimePoint now = TimePoint{} + 1h;
    std::uint64_t now_us = 1'800'000'000'000'000;
    std::unique_ptr<ServiceDesk> desk = std::make_unique<ServiceDesk>(store, settings, now_us);

    ServiceDesk::Effects commit() { return desk->commit(now, now_us); }
    void advance(std::chrono::milliseconds by) {
        now += by;
        now_us += static_cast<std::uint64_t>(by.count()) * 1000;
    }
    // Submits `payload` from `from` and commits; returns the task's id.
    std::uint64_t submit_one(const std::string& payload, const Producer& from = kAlice) {
        desk->submit(from, Submit{.req = 1, .payload = payload}, now_us);
        const ServiceDesk::Effects effects = commit();
        EXPECT_EQ(effects.replies.size(), 1u);
        const auto* accepted = std::get_if<Accepted>(&effects.replies.at(0).message);
        EXPECT_NE(accepted, nullptr);
        return accepted ? accepted->id : 0;
    }
    // The task the ledger takes next, sent once.
    std::uint64_t send_next() {
        const auto ready = desk->next_ready(now_us);
        EXPECT_TRUE(ready.has_value());
        if (!ready) return 0;
        desk->sent(ready->id);
        return ready->id;
    }
    Outcome outcome_of(std::uint64_t id, const std::string& out, std::uint64_t started_us) {
        Outcome o;
        o.batch = desk->batch();
        o.id = id;
        o.out = out;
        o.host = "h";
        o.pid = 7;
        o.started_us = started_us;
        return o;
    }
};

template <typename T>
const T& only(const ServiceDesk::Effects& effects, const Producer& to) {
    std::vector<const T*> found;
    for (const ServiceDesk::Reply& r : effects.replies) {
        if (const T* m = std::get_if<T>(&r.message); m && r.to == to) found.push_back(m);
    }
    if (found.size() != 1) throw std::runtime_error("expected one such reply to that producer");
    return *found.front();
}

TEST_F(ServiceDeskTest, NothingIsAnsweredBeforeTheGroupIsCommitted) {
    desk->submit(kAlice, Submit{.req = 5, .payload = "a"}, now_us);
    EXPECT_FALSE(desk->next_ready(now_us).has_value()) << "a task ran before it was durable";
    const ServiceDesk::Effects effects = commit();
    const Accepted& accepted = only<Accepted>(effects, kAlice);
    EXPECT_EQ(accepted.req, 5u);
    EXPECT_TRUE(accepted.created);
    EXPECT_EQ(accepted.state, "queued");
    EXPECT_EQ(accepted.head, desk->batch());
    const auto ready = desk->next_ready(now_us);
    ASSERT_TRUE(ready.has_value());
    EXPECT_EQ(ready->id, accepted.id);
    EXPECT_EQ(ready->payload, "a");
}

TEST_F(ServiceDeskTest, TheFirstOutcomeIsRecordedAndAnyLaterOneDropped) {
    const std::uint64_t id = submit_one("a");
    EXPECT_EQ(send_next(), id);

    desk->outcome(outcome_of(id, "first", 100), now_us);
    ServiceDesk::Effects effects = commit();
    EXPECT_EQ(effects.record.ids, std::vector<std::uint64_t>{id});
    EXPECT_TRUE(effects.record.drop.empty());
    EXPECT_EQ(effects.finished, std::vector<std::uint64_t>{id});
    const Done& done = only<Done>(effects, kAlice);
    EXPECT_EQ(done.id, id);
    EXPECT_EQ(done.state, "ok");
    EXPECT_EQ(done.out, "first");
    EXPECT_EQ(done.worker, "h:7");

    // A second worker's result (a re-send) is dropped; the same one again (its Record was lost)
    // is written.
    desk->outcome(outcome_of(id, "second", 200), now_us);
    desk->outcome(outcome_of(id, "first", 100), now_us);
    effects = commit();
    EXPECT_EQ(effects.record.drop, std::vector<std::uint64_t>{id});
    EXPECT_EQ(effects.record.ids, std::vector<std::uint64_t>{id});
    EXPECT_TRUE(effects.replies.empty()) << "a producer was told twice";
    EXPECT_EQ(store.find(id)->result->out, "first");
}

TEST_F(ServiceDeskTest, AKeyedSubmissionAgainGetsTheSameTaskAndAnotherPayloadAConflict) {
    desk->submit(kAlice, Submit{.req = 1, .payload = "a", .key = "k"}, now_us);
    const std::uint64_t id = only<Accepted>(commit(), kAlice).id;

    desk->submit(kBob, Submit{.req = 2, .payload = "a", .key = "k"}, now_us);
    const Accepted& again = only<Accepted>(commit(), kBob);
    EXPECT_EQ(again.id, id);
    EXPECT_FALSE(again.created);

    desk->submit(kBob, Submit{.req = 3, .payload = "b", .key = "k"}, now_us);
    const Error& conflict = only<Error>(commit(), kBob);
    EXPECT_EQ(conflict.code, "conflict");
    EXPECT_EQ(conflict.id, id);
}

// --max-queue refuses a new task, but not the answer for a task kept already; and a refusal
// takes nothing away from the rest of its group (it once rolled the whole group back).
TEST_F(ServiceDeskTest, AFullQueueRefusesOnlyNewTasksAndLeavesTheRestOfTheGroupAccepted) {
    desk->submit(kAlice, Submit{.req = 1, .payload = "a", .key = "k1"}, now_us);
    desk->submit(kAlice, Submit{.req = 2, .payload = "b", .key = "k2"}, now_us);
    desk->submit(kAlice, Submit{.req = 3, .payload = "c", .key = "k3"}, now_us);
    desk->submit(kAlice, Submit{.req = 4, .payload = "d", .key = "k4"}, now_us);  // the 4th of 3
    desk->submit(kAlice, Submit{.req = 5, .payload = "a", .key = "k1"}, now_us);  // kept: k1
    desk->submit(kAlice, Submit{.req = 6, .payload = "e"}, now_us);
    const ServiceDesk::Effects effects = commit();

    std::map<std::uint64_t, std::string> answers;  // req -> accepted or the error's code
    for (const ServiceDesk::Reply& r : effects.replies) {
        if (const auto* a = std::get_if<Accepted>(&r.message)) answers[a->req] = "accepted";
        if (const auto* e = std::get_if<Error>(&r.message)) answers[e->req] = e->code;
    }
    EXPECT_EQ(answers, (std::map<std::uint64_t, std::string>{{1, "accepted"},
                                                             {2, "accepted"},
                                                             {3, "accepted"},
                                                             {4, "full"},
                                                             {5, "accepted"},
                                                             {6, "full"}}));
    EXPECT_EQ(store.counts().queued, 3u);
    EXPECT_EQ(desk->queued(), 3u);
    EXPECT_EQ(desk->refused(), 2u);
}

TEST_F(ServiceDeskTest, ADelayedTaskIsReadyOnlyWhenItsTimeComes) {
    desk->submit(kAlice, Submit{.req = 1, .payload = "later", .delay_ms = 500}, now_us);
    const Accepted& accepted = only<Accepted>(commit(), kAlice);
    EXPECT_EQ(accepted.state, "delayed");
    EXPECT_EQ(desk->delayed(), 1u);
    EXPECT_EQ(desk->next_delayed_us(), now_us + 500'000);
    advance(499ms);
    EXPECT_FALSE(desk->next_ready(now_us).has_value());
    advance(1ms);
    const auto ready = desk->next_ready(now_us);
    ASSERT_TRUE(ready.has_value());
    EXPECT_EQ(ready->id, accepted.id);
}

TEST_F(ServiceDeskTest, AWaitingStatusQueryIsAnsweredWhenTheTaskEndsOrItsWaitRunsOut) {
    const std::uint64_t a = submit_one("a");
    const std::uint64_t b = submit_one("b");
    desk->query(kBob, Query{.req = 8, .id = a, .wait_ms = 1000}, now, now_us);
    desk->query(kBob, Query{.req = 9, .id = b, .wait_ms = 1000}, now, now_us);
    EXPECT_TRUE(commit().replies.empty()) << "a waiting query was answered at once";
    EXPECT_EQ(send_next(), a);

    desk->outcome(outcome_of(a, "done", 1), now_us);
    const ServiceDesk::Effects effects = commit();
    const State& state = only<State>(effects, kBob);
    EXPECT_EQ(state.req, 8u);
    EXPECT_EQ(state.state, "ok");

    EXPECT_EQ(desk->next_waiter(), now + 1000ms);
    advance(999ms);
    EXPECT_TRUE(desk->expire_waiters(now, now_us).empty());
    advance(1ms);
    const auto expired = desk->expire_waiters(now, now_us);
    ASSERT_EQ(expired.size(), 1u);
    const auto* late = std::get_if<State>(&expired[0].message);
    ASSERT_NE(late, nullptr);
    EXPECT_EQ(late->req, 9u);
    EXPECT_EQ(late->state, "queued");
}

TEST_F(ServiceDeskTest, ACancelStopsATaskNotYetSentAndNotOneAlreadySent) {
    const std::uint64_t sent = submit_one("sent");
    const std::uint64_t handed = submit_one("handed to the ledger");
    const std::uint64_t queued = submit_one("queued");
    EXPECT_EQ(send_next(), sent);
    const auto in_ledger = desk->next_ready(now_us);  // taken, not sent (no worker yet)
    ASSERT_TRUE(in_ledger.has_value());
    EXPECT_EQ(in_ledger->id, handed);

    desk->cancel(kBob, Cancel{.req = 1, .id = sent}, now_us);
    desk->cancel(kBob, Cancel{.req = 2, .id = handed}, now_us);
    desk->cancel(kBob, Cancel{.req = 3, .id = queued}, now_us);
    desk->cancel(kBob, Cancel{.req = 4, .id = 999}, now_us);
    const ServiceDesk::Effects effects = commit();
    std::map<std::uint64_t, std::string> states;  // req -> state
    for (const ServiceDesk::Reply& r : effects.replies) {
        if (const auto* s = std::get_if<State>(&r.message); s && r.to == kBob) {
            states[s->req] = s->state;
        }
    }
    EXPECT_EQ(states, (std::map<std::uint64_t, std::string>{
                          {1, "running"}, {2, "cancelled"}, {3, "cancelled"}, {4, "unknown"}}));
    // The ledger gives up the one it holds unsent; the submitter hears of both cancels.
    EXPECT_NE(std::find(effects.finished.begin(), effects.finished.end(), handed),
              effects.finished.end());
    std::size_t done_to_alice = 0;
    for (const ServiceDesk::Reply& r : effects.replies) {
        if (std::holds_alternative<Done>(r.message) && r.to == kAlice) ++done_to_alice;
    }
    EXPECT_EQ(done_to_alice, 2u);
    EXPECT_FALSE(desk->next_ready(now_us).has_value()) << "a cancelled task was offered";
    EXPECT_EQ(desk->running(), 1u);
}

TEST_F(ServiceDeskTest, ARestartedHeadSendsEveryUnfinishedTaskAgainAndKeepsTheFinished) {
    const std::uint64_t finished = submit_one("finished");
    const std::uint64_t running = submit_one("running");
    const std::uint64_t queued = submit_one("queued");
    EXPECT_EQ(send_next(), finished);
    EXPECT_EQ(send_next(), running);
    desk->outcome(outcome_of(finished, "out", 1), now_us);
    (void)commit();

    desk = std::make_unique<ServiceDesk>(store, settings, now_us);  // the same store, reopened
    std::vector<std::uint64_t> offered;
    while (auto ready = desk->next_ready(now_us)) offered.push_back(ready->id);
    EXPECT_EQ(offered, (std::vector<std::uint64_t>{running, queued}));
    desk->query(kBob, Query{.req = 1, .id = finished}, now, now_us);
    EXPECT_EQ(only<State>(commit(), kBob).out, "out");
}

TEST_F(ServiceDeskTest, AStoreThatCannotBeWrittenRefusesTheGroupAndRecordsItsResultsLater) {
    const std::uint64_t id = submit_one("a");
    EXPECT_EQ(send_next(), id);

    store.fail_commits = true;
    desk->submit(kBob, Submit{.req = 2, .payload = "b"}, now_us);
    desk->outcome(outcome_of(id, "out", 1), now_us);
    ServiceDesk::Effects effects = commit();
    ASSERT_TRUE(effects.store_error.has_value());
    EXPECT_EQ(only<Error>(effects, kBob).code, "store");
    EXPECT_TRUE(effects.record.ids.empty()) << "the sink was told to write an unrecorded result";
    EXPECT_TRUE(effects.finished.empty());
    EXPECT_FALSE(desk->next_ready(now_us).has_value()) << "a refused task was offered";

    store.fail_commits = false;
    effects = commit();
    EXPECT_FALSE(effects.store_error.has_value());
    EXPECT_EQ(effects.record.ids, std::vector<std::uint64_t>{id});
    EXPECT_EQ(only<Done>(effects, kAlice).out, "out");
}

TEST_F(ServiceDeskTest, ALostTaskIsRecordedAsLostAndItsProducerTold) {
    const std::uint64_t id = submit_one("poison");
    EXPECT_EQ(send_next(), id);
    desk->lost(id, 3, now_us);
    const ServiceDesk::Effects effects = commit();
    EXPECT_EQ(only<Done>(effects, kAlice).state, "lost");
    ASSERT_EQ(effects.lost.size(), 1u);
    EXPECT_EQ(effects.lost[0].id, id);
    EXPECT_EQ(effects.lost[0].attempts, 3u);
    EXPECT_EQ(desk->running(), 0u);
}

TEST_F(ServiceDeskTest, ADrainingHeadRefusesSubmissionsButStillAnswersQuestions) {
    const std::uint64_t id = submit_one("a");
    desk->drain();
    desk->submit(kBob, Submit{.req = 2, .payload = "b"}, now_us);
    desk->query(kAlice, Query{.req = 3, .id = id}, now, now_us);
    const ServiceDesk::Effects effects = commit();
    EXPECT_EQ(only<Error>(effects, kBob).code, "draining");
    EXPECT_EQ(only<State>(effects, kAlice).state, "queued");
}

TEST_F(ServiceDeskTest, FinishedResultsAreForgottenAfterKeepResults) {
    const std::uint64_t id = submit_one("a");
    EXPECT_EQ(send_next(), id);
    desk->outcome(outcome_of(id, "out", 1), now_us);
    (void)commit();
    advance(59min);
    desk->expire(now_us);
    (void)commit();
    EXPECT_TRUE(store.find(id).has_value());
    advance(2min);
    desk->expire(now_us);
    (void)commit();
    EXPECT_FALSE(store.find(id).has_value());
    desk->query(kBob, Query{.req = 1, .id = id}, now, now_us);
    EXPECT_EQ(only<State>(commit(), kBob).state, "unknown");
}

}  // namespace
}  // namespace taskpipe
