#include "stats.hpp"

#include <numeric>

namespace taskpipe {

std::string worker_name(const std::string& host, std::uint32_t pid) {
    if (host.empty()) return {};
    // The host name comes off the network and goes into log lines, the summary table, --stats
    // (JSON), --joblog (tab-separated) and label values: anything but printable ASCII, which no
    // real host name holds, becomes '?'; and it is cut to the longest a DNS name can be, so that
    // a table of names stays small.
    constexpr std::size_t kMaxHostBytes = 255;
    std::string name = host.substr(0, kMaxHostBytes);
    for (char& c : name) {
        if (c <= ' ' || c > '~') c = '?';
    }
    return name + ":" + std::to_string(pid);
}

std::uint64_t StatsSnapshot::finished() const {
    return std::accumulate(by_status.begin(), by_status.end(), std::uint64_t{0});
}

std::size_t StatsSnapshot::live_workers() const {
    std::size_t live = 0;
    for (const auto& [name, worker] : workers) live += worker.live ? 1 : 0;
    return live;
}

void Stats::batch_started() {
    std::lock_guard lock(mutex_);
    if (!started_) started_ = Clock::now();
}

void Stats::serving() {
    std::lock_guard lock(mutex_);
    data_.service = true;
}

void Stats::batch_finished() {
    std::lock_guard lock(mutex_);
    if (!finished_) finished_ = Clock::now();
}

void Stats::total_known(std::uint64_t total) {
    std::lock_guard lock(mutex_);
    data_.total = total;
    data_.read = std::max(data_.read, total);
}

void Stats::progress(const Progress& p) {
    std::lock_guard lock(mutex_);
    data_.read = std::max(data_.read, p.read);
    data_.in_flight = p.in_flight;
    data_.resent = p.resent;
    data_.expected = p.expected;
    data_.queued = p.queued;
    data_.delayed = p.delayed;
}

void Stats::result(const Result& r, bool first, std::uint64_t received_us) {
    std::lock_guard lock(mutex_);
    ++data_.received;
    // A result that names no worker (not from our worker) counts for none.
    WorkerStats* worker =
        r.host.empty() ? nullptr : &workers_.result(worker_name(r.host, r.pid), Clock::now());
    if (!first) {
        ++data_.duplicates;
        return;
    }
    ++data_.by_status[static_cast<std::size_t>(r.status)];
    if (r.sent_us != 0) data_.latency.add(received_us > r.sent_us ? received_us - r.sent_us : 0);
    if (worker) {
        ++worker->tasks;
        worker->failed += r.status == Status::ok ? 0 : 1;
        worker->busy_us += r.duration_us;
    }
}

void Stats::lost() {
    std::lock_guard lock(mutex_);
    ++data_.by_status[static_cast<std::size_t>(Status::lost)];
}

void Stats::skipped(std::uint64_t count, std::uint64_t failed) {
    std::lock_guard lock(mutex_);
    data_.skipped += count;
    data_.skipped_failed += failed;
}

void Stats::handed_over(std::uint64_t count, std::uint64_t failed) {
    std::lock_guard lock(mutex_);
    data_.handed_over += count;
    data_.handed_over_failed += failed;
}

bool Stats::heartbeat(const std::string& worker, std::uint32_t capacity, std::uint32_t group_max) {
    std::lock_guard lock(mutex_);
    return workers_.heartbeat(worker, capacity, Clock::now(), group_max);
}

std::uint64_t Stats::live_capacity() {
    std::lock_guard lock(mutex_);
    return workers_.live_capacity(Clock::now());
}

std::uint64_t Stats::live_group_max() {
    std::lock_guard lock(mutex_);
    return workers_.live_group_max(Clock::now());
}

void Stats::paused(Clock::duration gap) {
    std::lock_guard lock(mutex_);
    workers_.paused(gap);
}

void Stats::foreign() {
    std::lock_guard lock(mutex_);
    ++data_.foreign;
}

void Stats::malformed(std::uint64_t total) {
    std::lock_guard lock(mutex_);
    data_.malformed = total;
}

void Stats::refused(std::uint64_t total) {
    std::lock_guard lock(mutex_);
    data_.refused = total;
}

StatsSnapshot Stats::snapshot() const {
    const auto now = Clock::now();
    std::lock_guard lock(mutex_);
    StatsSnapshot copy = data_;
    if (started_) {
        copy.elapsed_s = std::chrono::duration<double>(finished_.value_or(now) - *started_).count();
    }
    workers_.for_each([&](const std::string& name, const WorkerStats& worker) {
        WorkerStats& shown = copy.workers[name];
        shown = worker;
        shown.live = workers_.live(worker, now);
    });
    copy.other_workers = workers_.others();
    copy.workers_dropped = workers_.dropped();
    copy.workers_untracked = workers_.untracked();
    copy.max_workers = workers_.max_workers();
    return copy;
}

}  // namespace taskpipe
