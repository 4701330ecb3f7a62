// The ventilator's ledger: every task read and not yet acknowledged by the sink, with its
// attempts, its deadline and its place in the send order. It takes what the sink reports and the
// current time, and says which task to send next and which are lost; it does no I/O and reads
// no clock, so that tests drive it with a fake one.
//
// A sent task has a deadline, now + the liveness timeout. An `alive` naming the task moves it
// forward; when it passes, the task is sent again with attempt + 1, or, after max_attempts
// sends, reported lost. A task the last heartbeat named as queued but not started (a worker
// that reports `running`) is sent again without counting an attempt when its worker goes
// silent: it never ran, so it cannot be what killed its worker. A task a worker released is
// sent again after a short delay, with the same attempt. Re-sends go out before new tasks.
//
// Heartbeats alone never bound how long a task is held: a worker (or a peer posing as one, when
// the network is trusted) may name a task for ever. So a task sent more than max_task_time ago
// is sent again even if heartbeats name it, with attempt + 1; whichever result reaches the sink
// first is the task's one result, and the sink drops the other as a duplicate.
//
// At most window() tasks are in flight: min(--window, the live workers' capacity), at least
// one. With a reorder window W (the sink keeps input order), no new task is read whose id is W
// or more above the lowest id not yet acknowledged.
//
// Not thread-safe. Payloads are kept until the task is acknowledged.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "taskpipe/done_set.hpp"

namespace taskpipe {

class Ledger {
  public:
    using Clock = std::chrono::steady_clock;
    using TimePoint = Clock::time_point;

    struct Settings {
        std::chrono::milliseconds liveness_timeout{5000};
        std::uint32_t max_attempts = 3;
        std::size_t window = 1000;  // --window
        // A released task waits this long before it is sent again, so that while the capacity
        // the sink reported is out of date (a worker just died) released tasks do not bounce at
        // full speed.
        std::chrono::milliseconds release_delay{20};
        // --max-task-time: a task held longer than this since it was sent is sent again, even
        // while heartbeats name it (0: no limit).
        std::chrono::milliseconds max_task_time{24LL * 3600 * 1000};
        // Keep the set of acknowledged ids (acknowledged()): a batch's reorder window and
        // hand-over need it; a service, whose ids never end, does not.
        bool remember_acknowledged = true;
    };

    explicit Ledger(Settings settings) : settings_(settings) {}

    // A task read from the input. It is offered by next_to_send() after every re-send.
    void add(std::uint64_t id, std::string payload);

    struct Send {
        std::uint64_t id;
        std::uint32_t attempt;
        std::string_view payload;  // valid until the ledger changes
    };
    // The task to send now, if any: re-sends first, then released tasks that are due, then new
    // tasks in id order. (It forgets queued ids that were acknowledged meanwhile.)
    std::optional<Send> next_to_send(TimePoint now);
    // The task next_to_send() offered last was sent: its deadline starts now.
    void sent(TimePoint now);

    // The sink acknowledged `id` (a result, or its record of a lost or skipped task). Returns
    // whether the ledger held it.
    bool acknowledge(std::uint64_t id);
    // A live worker holds `ids`. `running`, when the worker said, lists those of them that have
    // started; the others are only queued there.
    void alive(std::span<const std::uint64_t> ids,
               const std::optional<std::vector<std::uint64_t>>& running, TimePoint now);
    // A worker handed these tasks back without running them.
    void released(std::span<const std::uint64_t> ids, TimePoint now);

    struct LostTask {
        std::uint64_t id;
        std::uint32_t attempts;
        bool overtime;  // held past max_task_time, rather than by no live worker
    };
    // Handles the deadlines that have passed: each such task is queued to be sent again, or,
    // after max_attempts sends, dropped from the ledger and returned.
    std::vector<LostTask> expire(TimePoint now);
    struct Resend {
        std::uint64_t id;
        std::uint32_t attempt;
        bool counted;   // false: it had not started, the attempt stays
        bool overtime;  // held past max_task_time, rather than by no live worker
    };
    // The tasks expire() queued to be sent again since the last call, for the log.
    std::vector<Resend> take_resends() { return std::exchange(resends_, {}); }
    // Moves every deadline so that none passes before now + the liveness timeout: nothing can be
    // learnt about the workers now (the sink is silent, or this process was not running).
    void hold(TimePoint now);

    // The live workers' total capacity, from the sink (0: unknown).
    void set_capacity(std::uint64_t capacity) { capacity_ = capacity; }
    // The sink's reorder window (0: none).
    void set_reorder_window(std::uint64_t window) { reorder_window_ = window; }
    // How many new tasks may wait to be sent together in one frame (0 or 1: one at a time).
    void set_group_max(std::uint64_t most) { group_max_ = most; }
    std::size_t window() const;
    // Whether a new task, `next_id`, may be read now: room in the window, no re-send waiting,
    // fewer new tasks waiting than fill one frame (group_max), and inside the reorder window.
    bool wants(std::uint64_t next_id) const;
    // Whether a task is waiting to be sent now (the task socket was full).
    bool sendable(TimePoint now) const {
        return !resend_.empty() || !fresh_.empty() || next_release() <= now;
    }
    // When the earliest released task becomes due (TimePoint::max() if none).
    TimePoint next_release() const;

    std::size_t size() const { return tasks_.size(); }
    bool empty() const { return tasks_.empty(); }
    bool holds(std::uint64_t id) const { return tasks_.contains(id); }
    // The ids of the tasks sent and not acknowledged, in no particular order.
    std::vector<std::uint64_t> in_flight_ids() const;
    // Every id acknowledged so far (a prefix and the ids above it).
    const DoneSet& acknowledged() const { return acknowledged_; }
    std::uint64_t resent() const { return resent_; }      // after a deadline
    std::uint64_t requeued() const { return requeued_; }  // of those, without an attempt
    std::uint64_t released_count() const { return released_count_; }

  private:
    // What the last heartbeat naming a task said of it.
    enum class Seen : std::uint8_t { unnamed, queued, running };

    struct Entry {
        std::string payload;
        std::uint32_t attempt = 1;
        std::uint32_t free_resends = 0;         // re-sent without counting (never started)
        TimePoint deadline = TimePoint::max();  // max: not sent yet (queued here)
        TimePoint overtime = TimePoint::max();  // sent + max_task_time (max: no limit)
        Seen seen = Seen::unnamed;
    };
    struct Released {
        std::uint64_t id;
        TimePoint not_before;
    };

    enum class Queue : std::uint8_t { none, resend, released, fresh };

    // The deadline a heartbeat naming `entry` at `now` gives it.
    TimePoint deadline_after(const Entry& entry, TimePoint now) const {
        return std::min(now + settings_.liveness_timeout, entry.overtime);
    }

    Settings settings_;
    std::unordered_map<std::uint64_t, Entry> tasks_;
    std::deque<std::uint64_t> resend_;  // deadline passed, to be sent again
    std::deque<Released> released_;     // handed back by a full worker
    std::deque<std::uint64_t> fresh_;   // read, never sent
    std::vector<Resend> resends_;       // for take_resends()
    Queue offered_ = Queue::none;       // where next_to_send() found its offer
    DoneSet acknowledged_;
    std::uint64_t capacity_ = 0;
    std::uint64_t reorder_window_ = 0;
    std::uint64_t group_max_ = 0;
    std::uint64_t resent_ = 0;
    std::uint64_t requeued_ = 0;
    std::uint64_t released_count_ = 0;
};

// Why `resend` was sent again, for a log line: "no result, and no live worker holds it", ...
std::string resend_reason(const Ledger::Resend& resend);

}  // namespace taskpipe
