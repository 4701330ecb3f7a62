// The head of a service (ventilator --serve), as the counter of a café that hands out pagers:
// it takes submissions, answers questions about tasks, records each task's one result and tells
// the producers, over a TaskStore. It does no I/O and reads no clock: the Service feeds it what
// arrived in one loop iteration, with the time, and sends what it returns.
//
// Group commit. The Service calls submit(), query(), cancel(), outcome(), lost() and expire()
// for everything of one iteration, then commit() once. Only then are the effects returned:
// answers and notices for producers, the Record for the sink, and the ids of the tasks that
// finished (for the ledger). With --store, commit() returns once the group is on disk. If the
// store cannot be written, the whole group is undone: its submissions and cancels are answered
// `error store`, and its outcomes and lost tasks are kept to be recorded at the next commit.
//
// Tasks to run are taken with next_ready(), oldest first, delayed ones when their time comes.
// Unfinished tasks are held in memory (their payload until they are sent), at most max_queue of
// them; finished ones live only in the store, until keep_results after they finished.
//
// Not thread-safe; the store must outlive the desk.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "store.hpp"
#include "taskpipe/message.hpp"

namespace taskpipe {

// A producer's connection: its routing id on the listen socket, and whether it speaks through a
// REQ socket (its messages carry an empty delimiter frame, and so must the answers).
struct Producer {
    std::string id;
    bool delimited = false;
    friend bool operator==(const Producer&, const Producer&) = default;
};

class ServiceDesk {
  public:
    using Clock = std::chrono::steady_clock;
    using TimePoint = Clock::time_point;

    struct Settings {
        std::chrono::milliseconds keep_results{std::chrono::hours(24)};
        std::size_t max_queue = 1'000'000;   // unfinished tasks at most
        std::size_t max_output = 64 * 1024;  // stdout kept per result
        std::size_t max_waiters = 100'000;   // status queries waiting at once
        std::size_t max_subscribers = 16;    // connections told when one task finishes
    };

    struct Reply {
        Producer to;
        ToProducer message;
    };
    struct Effects {
        std::vector<Reply> replies;
        Record record;                        // for the sink: write ids, forget drop
        std::vector<std::uint64_t> finished;  // no longer in flight: off the ledger
        std::vector<Lost> lost;               // for the sink to write (a service's lost tasks)
        std::optional<std::string> store_error;
    };

    // Takes over the unfinished tasks of `store` (after a restart: queued, delayed, and running
    // ones, which are sent again).
    ServiceDesk(TaskStore& store, Settings settings, std::uint64_t now_us);

    void submit(const Producer& from, const Submit& submit, std::uint64_t now_us);
    void query(const Producer& from, const Query& query, TimePoint now, std::uint64_t now_us);
    void cancel(const Producer& from, const Cancel& cancel, std::uint64_t now_us);
    // The sink holds a result for a task: record it if it is the task's first.
    void outcome(Outcome outcome, std::uint64_t now_us);
    // The ledger gave up on a task after its maximum attempts.
    void lost(std::uint64_t id, std::uint32_t attempts, std::uint64_t now_us);
    // Drops from the store results that finished more than keep_results ago (a bounded number).
    void expire(std::uint64_t now_us);
    // Ends the group. See the comment at the top.
    Effects commit(TimePoint now, std::uint64_t now_us);

    struct Ready {
        std::uint64_t id;
        std::string payload;
        std::uint32_t attempts;  // sends before this one (after a restart: as stored)
    };
    // The next task to send to the workers, if any is due; it counts as running from then on.
    std::optional<Ready> next_ready(std::uint64_t now_us);
    // A running task was sent (again).
    void sent(std::uint64_t id);

    // Answers the status queries whose wait has run out.
    std::vector<Reply> expire_waiters(TimePoint now, std::uint64_t now_us);
    // When the next delayed task becomes due (microseconds), or waiter runs out; for the poll.
    std::optional<std::uint64_t> next_delayed_us() const;
    std::optional<TimePoint> next_waiter() const;

    // Stop accepting: later submissions are answered `error draining`.
    void drain() { draining_ = true; }

    std::uint64_t batch() const { return store_.batch(); }
    std::size_t queued() const { return ready_count_; }
    std::size_t delayed() const { return delayed_.size(); }
    std::size_t running() const { return running_count_; }
    std::uint64_t accepted() const { return accepted_; }
    std::uint64_t refused() const { return refused_; }

  private:
    enum class Where : std::uint8_t { delayed, ready, running };
    struct Unfinished {
        std::string payload;  // moved out once sent
        std::optional<std::string> key;
        std::uint64_t submitted_us = 0;
        std::uint64_t not_before_us = 0;
        std::uint32_t attempts = 0;
        Where where = Where::ready;
        std::vector<Producer> subscribers;
    };
    struct Waiter {
        Producer to;
        std::uint64_t req;
        TimePoint until;
    };
    // What happens once the group is committed.
    struct Pending {
        std::vector<Reply> replies;                               // answers to send
        std::vector<std::pair<Producer, std::uint64_t>> submits;  // to answer `store` on failure
        std::vector<std::pair<Producer, std::uint64_t>> cancels;
        std::vector<std::pair<std::uint64_t, Unfinished>> created;  // new tasks
        std::vector<std::uint64_t> cancelled;
        std::vector<std::pair<std::uint64_t, StoredResult>> recorded;
        std::vector<Lost> lost;
        Record record;
        std::vector<Outcome> outcomes;  // every one of the group, to try again if it fails
    };

    static Error error(std::uint64_t req, std::string code, std::string message,
                       std::uint64_t id = 0);
    TaskReport report(const StoredTask& task, std::uint64_t now_us) const;
    TaskReport report_unknown(std::uint64_t id) const;
    std::optional<TaskReport> report_in_memory(std::uint64_t id, std::uint64_t now_us) const;
    void finish(std::uint64_t id, const TaskReport& report, std::vector<Reply>& replies);
    void place(std::uint64_t id, Unfinished task, std::uint64_t now_us);
    std::size_t unfinished_count() const { return unfinished_.size() + pending_.created.size(); }

    TaskStore& store_;
    Settings settings_;
    std::unordered_map<std::uint64_t, Unfinished> unfinished_;
    std::deque<std::uint64_t> ready_;                      // in order; may hold finished ids
    std::multimap<std::uint64_t, std::uint64_t> delayed_;  // not_before_us -> id
    std::unordered_map<std::uint64_t, std::vector<Waiter>> waiters_;
    std::multimap<TimePoint, std::uint64_t> waiter_deadlines_;
    std::size_t waiter_count_ = 0;
    Pending pending_;
    std::vector<Outcome> retry_outcomes_;  // not recorded: the store failed
    std::vector<Lost> retry_lost_;
    std::size_t ready_count_ = 0;
    std::size_t running_count_ = 0;
    std::uint64_t accepted_ = 0;
    std::uint64_t refused_ = 0;
    bool draining_ = false;
};

}  // namespace taskpipe
