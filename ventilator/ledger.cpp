#include "ledger.hpp"

#include <algorithm>
#include <cassert>
#include <unordered_set>

namespace taskpipe {

void Ledger::add(std::uint64_t id, std::string payload) {
    Entry& entry = tasks_[id];
    entry.payload = std::move(payload);
    fresh_.push_back(id);
}

std::optional<Ledger::Send> Ledger::next_to_send(TimePoint now) {
    offered_ = Queue::none;
    // An id in a queue may have been acknowledged since it was queued (a late result).
    auto offer = [&](std::uint64_t id, Queue queue) -> std::optional<Send> {
        const Entry& entry = tasks_.at(id);
        offered_ = queue;
        return Send{id, entry.attempt, entry.payload};
    };
    while (!resend_.empty()) {
        if (tasks_.contains(resend_.front())) return offer(resend_.front(), Queue::resend);
        resend_.pop_front();
    }
    while (!released_.empty() && released_.front().not_before <= now) {
        if (tasks_.contains(released_.front().id))
            return offer(released_.front().id, Queue::released);
        released_.pop_front();
    }
    while (!fresh_.empty()) {
        if (tasks_.contains(fresh_.front())) return offer(fresh_.front(), Queue::fresh);
        fresh_.pop_front();
    }
    return std::nullopt;
}

void Ledger::sent(TimePoint now) {
    std::uint64_t id = 0;
    switch (offered_) {
        case Queue::resend:
            id = resend_.front();
            resend_.pop_front();
            break;
        case Queue::released:
            id = released_.front().id;
            released_.pop_front();
            break;
        case Queue::fresh:
            id = fresh_.front();
            fresh_.pop_front();
            break;
        case Queue::none:
            assert(false && "sent() without an offer from next_to_send()");
            return;
    }
    offered_ = Queue::none;
    Entry& entry = tasks_.at(id);
    entry.overtime =
        settings_.max_task_time.count() > 0 ? now + settings_.max_task_time : TimePoint::max();
    entry.deadline = deadline_after(entry, now);
    entry.seen = Seen::unnamed;
}

bool Ledger::acknowledge(std::uint64_t id) {
    if (settings_.remember_acknowledged) acknowledged_.insert(id);
    return tasks_.erase(id) == 1;
}

void Ledger::alive(std::span<const std::uint64_t> ids,
                   const std::optional<std::vector<std::uint64_t>>& running, TimePoint now) {
    std::unordered_set<std::uint64_t> started;
    if (running) started.insert(running->begin(), running->end());
    for (std::uint64_t id : ids) {
        auto it = tasks_.find(id);
        // A task queued here to be sent (again) is not held by anyone any more.
        if (it == tasks_.end() || it->second.deadline == TimePoint::max()) continue;
        it->second.deadline = deadline_after(it->second, now);
        if (running) it->second.seen = started.contains(id) ? Seen::running : Seen::queued;
    }
}

void Ledger::released(std::span<const std::uint64_t> ids, TimePoint now) {
    const TimePoint when = now + settings_.release_delay;
    for (std::uint64_t id : ids) {
        auto it = tasks_.find(id);
        if (it == tasks_.end() || it->second.deadline == TimePoint::max()) continue;
        it->second.deadline = TimePoint::max();
        released_.push_back({id, when});
        ++released_count_;
    }
}

std::vector<Ledger::LostTask> Ledger::expire(TimePoint now) {
    std::vector<LostTask> lost;
    std::vector<std::uint64_t> due;
    for (auto& [id, entry] : tasks_) {
        if (entry.deadline <= now) due.push_back(id);
    }
    // In id order, so that re-sends (and lost reports) follow the input's order.
    std::sort(due.begin(), due.end());
    for (std::uint64_t id : due) {
        Entry& entry = tasks_.at(id);
        // Held too long: it may be running, or held by a thief; either way it counts.
        const bool overtime = entry.overtime <= now;
        // Its worker went away before starting it. Only max_attempts times free: a worker killed
        // by a task it started before its heartbeat saying so left could otherwise keep that
        // task circling for ever.
        const bool never_started =
            !overtime && entry.seen == Seen::queued && entry.free_resends < settings_.max_attempts;
        if (!never_started && entry.attempt >= settings_.max_attempts) {
            lost.push_back({id, entry.attempt, overtime});  // acknowledged once the sink records it
            tasks_.erase(id);
            continue;
        }
        if (never_started) {
            ++requeued_;
            ++entry.free_resends;
        } else {
            ++entry.attempt;
        }
        resends_.push_back({id, entry.attempt, !never_started, overtime});
        ++resent_;
        entry.deadline = TimePoint::max();
        entry.overtime = TimePoint::max();
        resend_.push_back(id);
    }
    return lost;
}

void Ledger::hold(TimePoint now) {
    const TimePoint earliest = now + settings_.liveness_timeout;
    for (auto& [id, entry] : tasks_) {
        if (entry.deadline != TimePoint::max()) entry.deadline = std::max(entry.deadline, earliest);
    }
}

std::size_t Ledger::window() const {
    // With no live worker known, one task may go out to whoever connects first.
    return static_cast<std::size_t>(
        std::min<std::uint64_t>(settings_.window, std::max<std::uint64_t>(capacity_, 1)));
}

bool Ledger::wants(std::uint64_t next_id) const {
    if (!resend_.empty() || fresh_.size() >= std::max<std::uint64_t>(group_max_, 1) ||
        tasks_.size() >= window()) {
        return false;
    }
    return reorder_window_ == 0 || next_id < acknowledged_.prefix() + 1 + reorder_window_;
}

std::vector<std::uint64_t> Ledger::in_flight_ids() const {
    std::vector<std::uint64_t> ids;
    ids.reserve(tasks_.size());
    for (const auto& [id, entry] : tasks_) {
        if (entry.deadline != TimePoint::max()) ids.push_back(id);
    }
    return ids;
}

Ledger::TimePoint Ledger::next_release() const {
    return released_.empty() ? TimePoint::max() : released_.front().not_before;
}

std::string resend_reason(const Ledger::Resend& resend) {
    if (resend.overtime) return "held longer than --max-task-time, though a worker still names it";
    return resend.counted ? "no result, and no live worker holds it"
                          : "no result, and no live worker holds it; it had not started there, "
                            "so no attempt is counted";
}

}  // namespace taskpipe
