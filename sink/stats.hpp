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

namespace taskpipe {

struct WorkerStats {
    std::uint64_t tasks = 0;                          // first results it produced
    std::uint64_t failed = 0;                         // of those, not ok
    std::uint64_t busy_us = 0;                        // sum of their durations
    std::chrono::steady_clock::time_point last_seen;  // its last result or heartbeat
    bool live = false;  // heard from in the last few seconds (set by snapshot())
};

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
    std::map<std::string, WorkerStats> workers;  // by "host:pid"

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
    void heartbeat(const std::string& worker);
    void foreign();
    void malformed(std::uint64_t total);
    void refused(std::uint64_t total);

    StatsSnapshot snapshot() const;

  private:
    // The entry of the worker that ran a result: found in a few recent ones without building
    // its name, on the path every result takes. Call with mutex_ held.
    WorkerStats* worker_for(const Result& result);

    mutable std::mutex mutex_;
    StatsSnapshot data_;
    struct Recent {
        std::uint32_t pid = 0;
        std::string host;
        WorkerStats* stats = nullptr;  // into data_.workers, whose nodes never move
    };
    std::array<Recent, 8> recent_{};
    std::size_t next_recent_ = 0;
    std::optional<Clock::time_point> started_;
    std::optional<Clock::time_point> finished_;
};

// "host:pid", with every byte of the host that is not printable ASCII (a space, a control
// character, not ASCII) shown as '?'; or "" for a result that names no worker.
std::string worker_name(const std::string& host, std::uint32_t pid);

}  // namespace taskpipe
