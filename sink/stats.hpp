// What the sink has seen of its batch: counts by status, latency, and per worker. The progress
// line, the end summary, --stats and --metrics all read it.
//
// Thread-safety: the sink's thread records; snapshot() may be called from any other thread (the
// metrics server's) at the same time. Each call takes one uncontended mutex.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "latency_histogram.hpp"
#include "taskpipe/message.hpp"
#include "worker_table.hpp"

namespace taskpipe {

inline constexpr std::size_t kStatusCount = 5;  // ok, failed, error, timeout, lost

struct StatsSnapshot {
    double elapsed_s = 0;                // since the batch started (or finished: frozen then)
    std::optional<std::uint64_t> total;  // from the ventilator's End
    std::uint64_t read = 0;              // tasks the ventilator has read (its Progress)
    std::uint64_t expected = 0;          // tasks its input file holds (Progress); 0: unknown
    bool service = false;                // a service (sink --serve): no end, no total
    std::uint64_t queued = 0;            // a service: accepted, waiting for a worker (Progress)
    std::uint64_t delayed = 0;           // a service: accepted, waiting for their time
    std::uint64_t in_flight = 0;         // ventilator: sent, not yet acknowledged
    std::uint64_t resent = 0;            // ventilator: sent again after a liveness timeout
    std::uint64_t received = 0;          // results of the batch received, duplicates included
    std::array<std::uint64_t, kStatusCount> by_status{};  // tasks finished, by Status
    std::uint64_t skipped = 0;         // finished in an earlier run (ventilator --resume)
    std::uint64_t skipped_failed = 0;  // of those, not ok
    std::uint64_t handed_over = 0;     // recorded by an earlier sink instance (this one restarted)
    std::uint64_t handed_over_failed = 0;  // of those, not ok
    std::uint64_t duplicates = 0;          // results dropped: the task already had one
    std::uint64_t foreign = 0;             // results of another batch, dropped
    std::uint64_t malformed = 0;           // messages dropped as malformed
    std::uint64_t refused = 0;  // control messages not from the batch's ventilator, dropped
    LatencyHistogram latency;   // task sent to result received
    std::map<std::string, WorkerStats> workers;  // by "host:pid", at most max_workers
    WorkerStats other_workers;  // the tasks of workers dropped from the table or never in it
    std::uint64_t workers_dropped = 0;    // entries dropped for newer workers
    std::uint64_t workers_untracked = 0;  // heartbeats and results from workers not in the table
    std::size_t max_workers = 0;          // sink --max-workers

    // Tasks with a final outcome in this run (every status, lost included; skipped excluded).
    std::uint64_t finished() const;
    // Of those, the ones not ok.
    std::uint64_t unsuccessful() const { return finished() - by_status[0]; }
    // Tasks done one way or another: finished here, skipped, or handed over.
    std::uint64_t done() const { return finished() + skipped + handed_over; }
    // Whether any task of the batch did not succeed, here or earlier.
    bool any_failed() const { return unsuccessful() + skipped_failed + handed_over_failed > 0; }
    std::uint64_t count(Status status) const { return by_status[static_cast<std::size_t>(status)]; }
    std::size_t live_workers() const;
};

class Stats {
  public:
    using Clock = std::chrono::steady_clock;

    explicit Stats(WorkerTable::Settings workers = {}) : workers_(workers) {}

    void batch_started();
    void serving();         // the batch is a service's
    void batch_finished();  // freezes elapsed_s
    void total_known(std::uint64_t total);
    void progress(const Progress& progress);
    // Any result for the batch: `first` when it is the task's first.
    void result(const Result& result, bool first, std::uint64_t received_us);
    void lost();
    void skipped(std::uint64_t count, std::uint64_t failed);
    void handed_over(std::uint64_t count, std::uint64_t failed);
    // A worker's heartbeat; returns whether the worker table tracks it (see WorkerTable).
    bool heartbeat(const std::string& worker, std::uint32_t capacity, std::uint32_t group_max);
    // The sum of the capacities of the workers heard from lately.
    std::uint64_t live_capacity();
    // The most tasks in one frame (see WorkerTable::live_group_max).
    std::uint64_t live_group_max();
    // This process did not run for `gap`: the workers' silence meanwhile is not theirs.
    void paused(Clock::duration gap);
    void foreign();
    void malformed(std::uint64_t total);
    void refused(std::uint64_t total);

    StatsSnapshot snapshot() const;

  private:
    mutable std::mutex mutex_;
    StatsSnapshot data_;  // all but the workers
    WorkerTable workers_;
    std::optional<Clock::time_point> started_;
    std::optional<Clock::time_point> finished_;
};

// "host:pid", with every byte of the host that is not printable ASCII (a space, a control
// character, not ASCII) shown as '?' and the host cut to 255 bytes; or "" for a result that
// names no worker.
std::string worker_name(const std::string& host, std::uint32_t pid);

}  // namespace taskpipe
