// ServiceDesk (ventilator/service_desk.hpp) over the memory store, or over one whose commit
// fails on demand: the decisions that the integration tests of service mode found wrong.
#include "service_desk.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string_view>

namespace taskpipe {
namespace {

// The memory store, but commit() fails (rolling the group back, as a store must) while `full`.
class FillableStore : public TaskStore {
  public:
    bool full = false;

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
        if (full) {
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

class ServiceDeskTest : public ::testing::Test {
  protected:
    static constexpr std::uint64_t kNow = 1'700'000'000'000'000;
    const Producer producer_{"p1", false};

    ServiceDesk::Effects commit() { return desk_.commit(ServiceDesk::Clock::now(), kNow); }

    // Submits one task and commits; returns its id.
    std::uint64_t submit_one() {
        desk_.submit(producer_, Submit{.req = 1, .payload = "x"}, kNow);
        const ServiceDesk::Effects effects = commit();
        EXPECT_EQ(effects.replies.size(), 1u);
        const auto* accepted = std::get_if<Accepted>(&effects.replies.at(0).message);
        EXPECT_NE(accepted, nullptr);
        return accepted != nullptr ? accepted->id : 0;
    }

    Outcome outcome_of(std::uint64_t id) {
        return Outcome{.batch = desk_.batch(), .id = id, .host = "w", .pid = 7, .started_us = kNow};
    }

    // The State answered to a status query for `id`.
    State status(std::uint64_t id) {
        desk_.query(producer_, Query{.req = 9, .id = id}, ServiceDesk::Clock::now(), kNow);
        const ServiceDesk::Effects effects = commit();
        EXPECT_EQ(effects.replies.size(), 1u);
        const auto* state = std::get_if<State>(&effects.replies.at(0).message);
        return state != nullptr ? *state : State{};
    }

    FillableStore store_;
    ServiceDesk desk_{store_, {}, kNow};
};

TEST_F(ServiceDeskTest, AFinishedTaskAskedForLaterCountsItsAttempts) {
    const std::uint64_t id = submit_one();
    ASSERT_TRUE(desk_.next_ready(kNow));
    desk_.sent(id);
    desk_.outcome(outcome_of(id), kNow);
    const ServiceDesk::Effects effects = commit();
    const auto* done = std::get_if<Done>(&effects.replies.at(0).message);
    ASSERT_NE(done, nullptr);
    EXPECT_EQ(done->attempts, 1u);

    const State state = status(id);
    EXPECT_EQ(state.state, "ok");
    EXPECT_EQ(state.attempts, 1u) << "the state from the store must agree with the done";
}

TEST_F(ServiceDeskTest, ATaskHandedOutButNeverSentIsCancelledAndLeavesTheLedger) {
    const std::uint64_t id = submit_one();
    ASSERT_TRUE(desk_.next_ready(kNow));  // to the ledger; no worker took it: not sent
    desk_.cancel(producer_, Cancel{.req = 2, .id = id}, kNow);
    const ServiceDesk::Effects effects = commit();
    const auto* state = std::get_if<State>(&effects.replies.at(0).message);
    ASSERT_NE(state, nullptr);
    EXPECT_EQ(state->state, "cancelled");
    EXPECT_NE(std::find(effects.finished.begin(), effects.finished.end(), id),
              effects.finished.end())
        << "the ledger must drop it";
    EXPECT_EQ(desk_.running(), 0u);
}

TEST_F(ServiceDeskTest, ASentTaskIsNotCancelled) {
    const std::uint64_t id = submit_one();
    ASSERT_TRUE(desk_.next_ready(kNow));
    desk_.sent(id);
    desk_.cancel(producer_, Cancel{.req = 2, .id = id}, kNow);
    const ServiceDesk::Effects effects = commit();
    const auto* state = std::get_if<State>(&effects.replies.at(0).message);
    ASSERT_NE(state, nullptr);
    EXPECT_EQ(state->state, "running");
    EXPECT_TRUE(effects.finished.empty());
}

// The sink holds a result until the head answers, and does not send it again: a result whose
// group failed to commit must be recorded at a later commit.
TEST_F(ServiceDeskTest, AResultWhoseCommitFailedIsRecordedAtTheNextCommit) {
    const std::uint64_t id = submit_one();
    ASSERT_TRUE(desk_.next_ready(kNow));
    desk_.sent(id);
    store_.full = true;
    desk_.outcome(outcome_of(id), kNow);
    const ServiceDesk::Effects failed = commit();
    ASSERT_TRUE(failed.store_error);
    EXPECT_TRUE(failed.record.ids.empty());
    EXPECT_TRUE(failed.finished.empty());

    store_.full = false;
    const ServiceDesk::Effects effects = commit();
    EXPECT_FALSE(effects.store_error);
    EXPECT_EQ(effects.record.ids, std::vector<std::uint64_t>{id});
    EXPECT_EQ(effects.finished, std::vector<std::uint64_t>{id});
    EXPECT_EQ(status(id).state, "ok");
}

}  // namespace
}  // namespace taskpipe
