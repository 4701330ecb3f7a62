#include "worker_table.hpp"

namespace taskpipe {

void WorkerTable::count_in(const Entry& entry) {
    live_capacity_ += entry.capacity;
    if (entry.capacity > 0) live_groups_.insert(entry.group_max);
}

void WorkerTable::count_out(const Entry& entry) {
    live_capacity_ -= entry.capacity;
    if (entry.capacity > 0) live_groups_.erase(live_groups_.find(entry.group_max));
}

void WorkerTable::expire(TimePoint now) {
    while (!live_.empty() && now - live_.front().stats.last_seen >= settings_.silence) {
        Entry& entry = live_.front();
        count_out(entry);
        entries_.at(entry.name).live = false;
        silent_.splice(silent_.end(), live_, live_.begin());
    }
}

WorkerTable::Entry* WorkerTable::touch(const std::string& name, TimePoint now) {
    expire(now);
    if (const auto it = entries_.find(name); it != entries_.end()) {
        Where& where = it->second;
        if (where.live) {
            live_.splice(live_.end(), live_, where.entry);
        } else {
            live_.splice(live_.end(), silent_, where.entry);
            count_in(*where.entry);
            where.live = true;
        }
        where.entry->stats.last_seen = now;
        return &*where.entry;
    }
    if (entries_.size() >= settings_.max_workers) {
        if (silent_.empty()) return nullptr;
        const Entry& oldest = silent_.front();
        others_.tasks += oldest.stats.tasks;
        others_.failed += oldest.stats.failed;
        others_.busy_us += oldest.stats.busy_us;
        entries_.erase(oldest.name);
        silent_.pop_front();
        ++dropped_;
    }
    Entry& entry = live_.emplace_back(Entry{name, {}, 0, 0});
    entry.stats.last_seen = now;
    entries_.emplace(name, Where{std::prev(live_.end()), true});
    return &entry;
}

bool WorkerTable::heartbeat(const std::string& name, std::uint32_t capacity, TimePoint now,
                            std::uint32_t group_max) {
    Entry* entry = touch(name, now);
    if (!entry) {
        ++untracked_;
        return false;
    }
    count_out(*entry);
    entry->capacity = capacity;
    entry->group_max = group_max;
    count_in(*entry);
    return true;
}

WorkerStats& WorkerTable::result(const std::string& name, TimePoint now) {
    Entry* entry = touch(name, now);
    if (!entry) {
        ++untracked_;
        return others_;
    }
    return entry->stats;
}

std::uint64_t WorkerTable::live_capacity(TimePoint now) {
    expire(now);
    return live_capacity_;
}

std::uint64_t WorkerTable::live_group_max(TimePoint now) {
    expire(now);
    return live_groups_.empty() ? 0 : *live_groups_.begin();
}

void WorkerTable::paused(Clock::duration gap) {
    // Only the live: the silent ones were silent before the pause, and stay older than the rest.
    for (Entry& entry : live_) entry.stats.last_seen += gap;
}

}  // namespace taskpipe
