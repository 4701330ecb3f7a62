// The sink's table of workers: which are live, their total capacity (what the ventilator's
// window follows), and what each did (the summary's rows, --stats, the per-worker metrics). It
// takes worker names, capacities and the time, and does no I/O and reads no clock, so that tests
// drive it with a fake one.
//
// Names come off the network (a heartbeat's host and pid), so the table is bounded:
// - A worker is live while it has been heard from (a heartbeat, or a result) within `silence`;
//   the live capacity is the sum of the live workers' last announced capacities, kept as a
//   running total: a heartbeat, a result and live_capacity() cost O(1), amortised, whatever the
//   number of workers.
// - At most `max_workers` workers have an entry. A new worker takes the place of the one silent
//   the longest, whose counts move to others(); when every entry is live, the new worker is not
//   tracked: its heartbeats do not count towards the capacity, its results count in others(),
//   and untracked() counts its messages. Silent entries stay (up to the cap) so that the summary
//   still shows workers that finished and left.
//
// Not thread-safe (Stats guards it with its mutex).
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <set>
#include <string>
#include <unordered_map>

namespace taskpipe {

struct WorkerStats {
    std::uint64_t tasks = 0;                          // first results it produced
    std::uint64_t failed = 0;                         // of those, not ok
    std::uint64_t busy_us = 0;                        // sum of their durations
    std::chrono::steady_clock::time_point last_seen;  // its last result or heartbeat
    bool live = false;  // heard from in the last few seconds (set by a snapshot)
};

class WorkerTable {
  public:
    using Clock = std::chrono::steady_clock;
    using TimePoint = Clock::time_point;

    struct Settings {
        // A worker not heard from for this long is silent: its capacity no longer counts.
        std::chrono::milliseconds silence{5000};
        std::size_t max_workers = 1000;  // sink --max-workers
    };

    explicit WorkerTable(Settings settings) : settings_(settings) {}

    // A heartbeat from `name` announcing `capacity` (0 when draining) and the most tasks it takes
    // in one frame (`group_max`, 0: single tasks only). Returns false when it is not tracked
    // (the table is full of live workers).
    bool heartbeat(const std::string& name, std::uint32_t capacity, TimePoint now,
                   std::uint32_t group_max = 0);
    // Any result from `name`: the worker is live. Returns its entry, or others() when it is not
    // tracked, to count the result's task in. Valid until the next call that adds a worker.
    WorkerStats& result(const std::string& name, TimePoint now);

    // The sum of the live workers' capacities.
    std::uint64_t live_capacity(TimePoint now);
    // The smallest group_max of the live workers that take tasks: no frame may hold more, so
    // that one frame does not hand all the work to one worker. 0 when one of them takes single
    // tasks only, or none is live. O(log workers).
    std::uint64_t live_group_max(TimePoint now);
    // This process did not run for `gap` (SIGSTOP, a suspended machine): the workers' silence
    // meanwhile is not theirs. O(workers), and rare.
    void paused(Clock::duration gap);

    std::size_t size() const { return entries_.size(); }
    // Whether `worker` (an entry, or others()) counts as live at `now`.
    bool live(const WorkerStats& worker, TimePoint now) const {
        return now - worker.last_seen < settings_.silence;
    }
    // The tasks of workers whose entries were dropped, and of workers never tracked.
    const WorkerStats& others() const { return others_; }
    std::uint64_t dropped() const { return dropped_; }      // entries dropped for newer workers
    std::uint64_t untracked() const { return untracked_; }  // messages from untracked workers
    std::size_t max_workers() const { return settings_.max_workers; }

    // Calls f(name, stats) for each entry, the one heard from longest ago first.
    template <class F>
    void for_each(F&& f) const {
        for (const Entry& e : silent_) f(e.name, e.stats);
        for (const Entry& e : live_) f(e.name, e.stats);
    }

  private:
    struct Entry {
        std::string name;
        WorkerStats stats;
        std::uint32_t capacity = 0;
        std::uint32_t group_max = 0;
    };
    using List = std::list<Entry>;
    struct Where {
        List::iterator entry;
        bool live;
    };

    // The entry for `name`, made live and moved to the back of live_ (heard from last); nullptr
    // when there is no room for a new one.
    Entry* touch(const std::string& name, TimePoint now);
    // Moves the workers silent at `now` from live_ to silent_, taking their capacity off.
    void expire(TimePoint now);
    // Adds a live entry's capacity and group_max to the running totals, or takes them off.
    void count_in(const Entry& entry);
    void count_out(const Entry& entry);

    Settings settings_;
    // Both in the order last heard from: silent_ holds the entries silent since before any of
    // live_ was last heard from, so each list is sorted by last_seen.
    List live_;
    List silent_;
    std::unordered_map<std::string, Where> entries_;
    std::uint64_t live_capacity_ = 0;           // the sum over live_
    std::multiset<std::uint32_t> live_groups_;  // group_max of each of live_ with capacity
    WorkerStats others_;
    std::uint64_t dropped_ = 0;
    std::uint64_t untracked_ = 0;
};

}  // namespace taskpipe
