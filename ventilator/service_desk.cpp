#include "service_desk.hpp"

#include <algorithm>
#include <iterator>
#include <utility>

namespace taskpipe {

namespace {

constexpr std::size_t kMaxKeyBytes = 256;
constexpr std::uint64_t kMaxWaitMs = 600'000;
constexpr std::size_t kExpiredPerCall = 1000;

const char* where_name(bool delayed, bool running) {
    if (running) return "running";
    return delayed ? "delayed" : "queued";
}

}  // namespace

ServiceDesk::ServiceDesk(TaskStore& store, Settings settings, std::uint64_t now_us)
    : store_(store), settings_(settings) {
    for (StoredTask& task : store_.unfinished()) {
        Unfinished u;
        u.payload = std::move(task.payload);
        u.key = std::move(task.key);
        u.submitted_us = task.submitted_us;
        u.not_before_us = task.not_before_us;
        u.attempts = task.attempts;
        place(task.id, std::move(u), now_us);  // a running task is sent again
    }
}

Error ServiceDesk::error(std::uint64_t req, std::string code, std::string message,
                         std::uint64_t id) {
    return Error{req, std::move(code), std::move(message), id};
}

void ServiceDesk::place(std::uint64_t id, Unfinished task, std::uint64_t now_us) {
    const bool later = task.not_before_us > now_us;
    task.where = later ? Where::delayed : Where::ready;
    if (later) {
        delayed_.emplace(task.not_before_us, id);
    } else {
        ready_.push_back(id);
        ++ready_count_;
    }
    unfinished_.insert_or_assign(id, std::move(task));
}

TaskReport ServiceDesk::report_unknown(std::uint64_t id) const {
    TaskReport r;
    r.id = id;
    r.state = "unknown";
    r.head = store_.batch();
    return r;
}

std::optional<TaskReport> ServiceDesk::report_in_memory(std::uint64_t id,
                                                        std::uint64_t now_us) const {
    const auto it = unfinished_.find(id);
    if (it == unfinished_.end()) return std::nullopt;
    const Unfinished& u = it->second;
    TaskReport r;
    r.id = id;
    // Running once a worker may have it: handed to the ledger is not yet sent.
    r.state = where_name(u.where == Where::delayed && u.not_before_us > now_us,
                         u.where == Where::running && u.attempts > 0);
    r.key = u.key;
    r.submitted_us = u.submitted_us;
    r.attempts = u.attempts;
    r.head = store_.batch();
    return r;
}

TaskReport ServiceDesk::report(const StoredTask& task, std::uint64_t now_us) const {
    if (auto in_memory = report_in_memory(task.id, now_us)) return *in_memory;
    TaskReport r;
    r.id = task.id;
    r.state = state_name(task, now_us);
    r.key = task.key;
    r.submitted_us = task.submitted_us;
    r.attempts = task.attempts;
    r.head = store_.batch();
    if (task.state == TaskState::cancelled) r.finished_us = task.final_us;
    if (const auto& result = task.result) {
        r.status = to_string(result->status);
        r.exit_code = result->exit_code;
        r.signal = result->signal;
        r.out = result->out;
        r.out_truncated = result->out_truncated;
        r.err = result->err;
        if (!result->worker.empty()) r.worker = result->worker;
        r.started_us = result->started_us;
        r.duration_us = result->duration_us;
        r.finished_us = result->finished_us;
    }
    return r;
}

void ServiceDesk::submit(const Producer& from, const Submit& s, std::uint64_t now_us) {
    auto refuse = [&](Error e) {
        ++refused_;
        pending_.replies.push_back({from, std::move(e)});
    };
    if (draining_) return refuse(error(s.req, "draining", "the head is shutting down"));
    if (s.payload.size() > kMaxPayloadBytes) {
        return refuse(error(s.req, "too_large", "the payload is over 1 MiB"));
    }
    if (s.key && (s.key->empty() || s.key->size() > kMaxKeyBytes)) {
        return refuse(error(s.req, "invalid", "a key must be 1 to 256 bytes"));
    }
    std::uint64_t not_before = s.not_before_us > now_us ? s.not_before_us : 0;
    if (s.delay_ms > 0) {
        const std::uint64_t delay_us = std::min<std::uint64_t>(s.delay_ms, 1ull << 40) * 1000;
        not_before = std::max(not_before, now_us + delay_us);
    }
    try {
        // A keyed submission of a task already kept is answered even when the queue is full.
        if (unfinished_count() >= settings_.max_queue && (!s.key || !store_.find_key(*s.key))) {
            return refuse(error(s.req, "full",
                                "the head holds --max-queue (" +
                                    std::to_string(settings_.max_queue) + ") unfinished tasks"));
        }
        SubmitOutcome outcome = store_.submit({s.payload, s.key, not_before, now_us});
        const StoredTask& task = outcome.task;
        switch (outcome.kind) {
            case SubmitOutcome::Kind::created: {
                Unfinished u;
                u.payload = s.payload;
                u.key = s.key;
                u.submitted_us = now_us;
                u.not_before_us = not_before;
                if (s.notify) u.subscribers.push_back(from);
                pending_.created.emplace_back(task.id, std::move(u));
                pending_.submits.emplace_back(from, s.req);
                pending_.replies.push_back(
                    {from, Accepted{s.req, task.id, true, state_name(task, now_us), batch()}});
                return;
            }
            case SubmitOutcome::Kind::duplicate: {
                const TaskReport now = report(task, now_us);
                if (s.notify) {
                    if (auto it = unfinished_.find(task.id); it != unfinished_.end()) {
                        auto& subscribers = it->second.subscribers;
                        if (subscribers.size() < settings_.max_subscribers &&
                            std::find(subscribers.begin(), subscribers.end(), from) ==
                                subscribers.end()) {
                            subscribers.push_back(from);
                        }
                    }
                }
                pending_.submits.emplace_back(from, s.req);
                pending_.replies.push_back(
                    {from, Accepted{s.req, task.id, false, now.state, batch()}});
                return;
            }
            case SubmitOutcome::Kind::conflict:
                return refuse(error(s.req, "conflict",
                                    "task " + std::to_string(task.id) +
                                        " was submitted with this key and another payload",
                                    task.id));
        }
    } catch (const StoreError& e) {
        refuse(error(s.req, "store", e.what()));
    }
}

void ServiceDesk::query(const Producer& from, const Query& q, TimePoint now, std::uint64_t now_us) {
    if (q.id == 0 && !q.key) {
        pending_.replies.push_back({from, error(q.req, "invalid", "give an id or a key")});
        return;
    }
    std::optional<TaskReport> found;
    try {
        if (q.id != 0) found = report_in_memory(q.id, now_us);
        if (!found) {
            const std::optional<StoredTask> task =
                q.key ? store_.find_key(*q.key) : store_.find(q.id);
            if (task) found = report(*task, now_us);
        }
    } catch (const StoreError& e) {
        pending_.replies.push_back({from, error(q.req, "store", e.what())});
        return;
    }
    TaskReport r = found ? std::move(*found) : report_unknown(q.key ? 0 : q.id);
    const bool waiting = r.state == "delayed" || r.state == "queued" || r.state == "running";
    if (waiting && q.wait_ms > 0 && waiter_count_ < settings_.max_waiters) {
        const TimePoint until = now + std::chrono::milliseconds(std::min(q.wait_ms, kMaxWaitMs));
        waiters_[r.id].push_back({from, q.req, until});
        waiter_deadlines_.emplace(until, r.id);
        ++waiter_count_;
        return;
    }
    State state;
    static_cast<TaskReport&>(state) = std::move(r);
    state.req = q.req;
    pending_.replies.push_back({from, std::move(state)});
}

void ServiceDesk::cancel(const Producer& from, const Cancel& c, std::uint64_t now_us) {
    auto answer = [&](TaskReport r) {
        State state;
        static_cast<TaskReport&>(state) = std::move(r);
        state.req = c.req;
        pending_.replies.push_back({from, std::move(state)});
    };
    const auto it = unfinished_.find(c.id);
    // Too late once it was sent. A task handed to the ledger and not sent yet is taken back
    // from it at the commit (Effects::finished), before anything more is sent.
    if (it != unfinished_.end() && it->second.where == Where::running && it->second.attempts > 0) {
        return answer(*report_in_memory(c.id, now_us));
    }
    try {
        const std::optional<TaskState> state = store_.cancel(c.id, now_us);
        if (!state) return answer(report_unknown(c.id));
        if (*state == TaskState::cancelled && it != unfinished_.end()) {
            pending_.cancelled.push_back(c.id);
            pending_.cancels.emplace_back(from, c.req);
            TaskReport r = *report_in_memory(c.id, now_us);
            r.state = "cancelled";
            r.finished_us = now_us;
            return answer(std::move(r));
        }
        const std::optional<StoredTask> task = store_.find(c.id);
        answer(task ? report(*task, now_us) : report_unknown(c.id));
    } catch (const StoreError& e) {
        ++refused_;
        pending_.replies.push_back({from, error(c.req, "store", e.what())});
    }
}

void ServiceDesk::outcome(Outcome o, std::uint64_t now_us) {
    StoredResult result;
    result.status = o.status;
    result.exit_code = o.exit_code;
    result.signal = o.signal;
    result.out = o.out.substr(0, settings_.max_output);
    result.out_truncated = o.out_truncated || o.out.size() > settings_.max_output;
    result.err = o.err;
    if (!o.host.empty()) result.worker = o.host + ":" + std::to_string(o.pid);
    result.started_us = o.started_us;
    result.duration_us = o.duration_us;
    result.finished_us = now_us;
    try {
        if (store_.record(o.id, result)) {
            pending_.recorded.emplace_back(o.id, std::move(result));
            pending_.record.ids.push_back(o.id);
        } else {
            // Recorded before: the same result again (its Record was lost), or another one.
            const std::optional<StoredTask> task = store_.find(o.id);
            const bool same = task && task->result && task->result->worker == result.worker &&
                              task->result->started_us == result.started_us;
            (same ? pending_.record.ids : pending_.record.drop).push_back(o.id);
        }
    } catch (const StoreError&) {
        retry_outcomes_.push_back(std::move(o));
        return;
    }
    pending_.outcomes.push_back(std::move(o));
}

void ServiceDesk::lost(std::uint64_t id, std::uint32_t attempts, std::uint64_t now_us) {
    StoredResult result;
    result.status = Status::lost;
    result.finished_us = now_us;
    try {
        if (store_.record(id, result)) {
            pending_.recorded.emplace_back(id, std::move(result));
            pending_.lost.push_back(Lost{batch(), id, attempts});
        }
    } catch (const StoreError&) {
        retry_lost_.push_back(Lost{batch(), id, attempts});
    }
}

void ServiceDesk::expire(std::uint64_t now_us) {
    const auto keep_us = static_cast<std::uint64_t>(settings_.keep_results.count()) * 1000;
    if (now_us <= keep_us) return;
    try {
        (void)store_.expire(now_us - keep_us, kExpiredPerCall);
    } catch (const StoreError&) {
        // Tried again at the next expiry; nothing else depends on it.
    }
}

void ServiceDesk::finish(std::uint64_t id, const TaskReport& report, std::vector<Reply>& replies) {
    if (const auto it = unfinished_.find(id); it != unfinished_.end()) {
        for (const Producer& to : it->second.subscribers) {
            Done done;
            static_cast<TaskReport&>(done) = report;
            replies.push_back({to, std::move(done)});
        }
        if (it->second.where == Where::running) --running_count_;
        if (it->second.where == Where::ready) --ready_count_;
        unfinished_.erase(it);
    }
    if (const auto it = waiters_.find(id); it != waiters_.end()) {
        for (const Waiter& waiter : it->second) {
            State state;
            static_cast<TaskReport&>(state) = report;
            state.req = waiter.req;
            replies.push_back({waiter.to, std::move(state)});
            --waiter_count_;
        }
        waiters_.erase(it);
    }
}

ServiceDesk::Effects ServiceDesk::commit(TimePoint, std::uint64_t now_us) {
    for (Outcome& o : std::exchange(retry_outcomes_, {})) outcome(std::move(o), now_us);
    for (const Lost& l : std::exchange(retry_lost_, {})) lost(l.id, l.attempts, now_us);
    Pending group = std::exchange(pending_, {});
    Effects effects;
    try {
        store_.commit();
    } catch (const StoreError& e) {
        effects.store_error = e.what();
        // Nothing of the group was kept: its submissions and cancels failed; its results are
        // recorded at the next commit (the sink holds them meanwhile).
        auto failed = [&](const Producer& to, std::uint64_t req) {
            return std::any_of(group.submits.begin(), group.submits.end(),
                               [&](const auto& s) { return s.first == to && s.second == req; }) ||
                   std::any_of(group.cancels.begin(), group.cancels.end(),
                               [&](const auto& c) { return c.first == to && c.second == req; });
        };
        for (Reply& reply : group.replies) {
            const std::uint64_t req = std::visit(
                [](const auto& m) -> std::uint64_t {
                    if constexpr (requires { m.req; }) return m.req;
                    return 0;
                },
                reply.message);
            if (failed(reply.to, req)) {
                ++refused_;
                reply.message = error(req, "store",
                                      "the task store cannot be written: " + std::string(e.what()));
            }
        }
        effects.replies = std::move(group.replies);
        // Every lost task of the group was recorded in it (see lost()).
        retry_lost_.insert(retry_lost_.end(), group.lost.begin(), group.lost.end());
        // Recorded at the next commit. The sink holds their results meanwhile, and would not
        // tell again: a result that comes again for a task it holds one for is dropped.
        retry_outcomes_.insert(retry_outcomes_.end(),
                               std::make_move_iterator(group.outcomes.begin()),
                               std::make_move_iterator(group.outcomes.end()));
        return effects;
    }
    for (auto& [id, task] : group.created) {
        ++accepted_;
        place(id, std::move(task), now_us);
    }
    effects.replies = std::move(group.replies);
    for (std::uint64_t id : group.cancelled) {
        if (auto r = report_in_memory(id, now_us)) {
            r->state = "cancelled";
            r->finished_us = now_us;
            finish(id, *r, effects.replies);
            effects.finished.push_back(id);
        }
    }
    for (const auto& [id, result] : group.recorded) {
        TaskReport r = report_in_memory(id, now_us).value_or(report_unknown(id));
        r.state = to_string(result.status);
        r.status = r.state;
        r.exit_code = result.exit_code;
        r.signal = result.signal;
        r.out = result.out;
        r.out_truncated = result.out_truncated;
        r.err = result.err;
        if (!result.worker.empty()) r.worker = result.worker;
        r.started_us = result.started_us;
        r.duration_us = result.duration_us;
        r.finished_us = result.finished_us;
        finish(id, r, effects.replies);
        effects.finished.push_back(id);
    }
    effects.record = std::move(group.record);
    effects.record.batch = batch();
    effects.lost = std::move(group.lost);
    return effects;
}

std::optional<ServiceDesk::Ready> ServiceDesk::next_ready(std::uint64_t now_us) {
    while (!delayed_.empty() && delayed_.begin()->first <= now_us) {
        const std::uint64_t id = delayed_.begin()->second;
        delayed_.erase(delayed_.begin());
        auto it = unfinished_.find(id);
        if (it == unfinished_.end() || it->second.where != Where::delayed) continue;
        it->second.where = Where::ready;
        ready_.push_back(id);
        ++ready_count_;
    }
    while (!ready_.empty()) {
        const std::uint64_t id = ready_.front();
        ready_.pop_front();
        auto it = unfinished_.find(id);
        if (it == unfinished_.end() || it->second.where != Where::ready) continue;
        Unfinished& u = it->second;
        u.where = Where::running;
        --ready_count_;
        ++running_count_;
        return Ready{id, std::move(u.payload), u.attempts};
    }
    return std::nullopt;
}

void ServiceDesk::sent(std::uint64_t id) {
    const auto it = unfinished_.find(id);
    if (it == unfinished_.end()) return;
    ++it->second.attempts;
    try {
        // Committed with the next group: a status asked once the task has finished (from the
        // store) counts its attempts, and a running task is no longer cancelled in the store.
        (void)store_.mark_sent(id, it->second.attempts);
    } catch (const StoreError&) {
        // The group fails at its commit; a restart sends the task again anyway.
    }
}

std::vector<ServiceDesk::Reply> ServiceDesk::expire_waiters(TimePoint now, std::uint64_t now_us) {
    std::vector<Reply> replies;
    while (!waiter_deadlines_.empty() && waiter_deadlines_.begin()->first <= now) {
        const auto [until, id] = *waiter_deadlines_.begin();
        waiter_deadlines_.erase(waiter_deadlines_.begin());
        auto it = waiters_.find(id);
        if (it == waiters_.end()) continue;  // answered when the task finished
        auto& list = it->second;
        const auto due = std::stable_partition(list.begin(), list.end(),
                                               [&](const Waiter& w) { return w.until > now; });
        if (due == list.end()) continue;
        TaskReport r = report_in_memory(id, now_us).value_or(report_unknown(id));
        if (r.state == "unknown") {
            try {
                if (auto task = store_.find(id)) r = report(*task, now_us);
            } catch (const StoreError&) {
                // Answered as unknown: better than never.
            }
        }
        for (auto w = due; w != list.end(); ++w) {
            State state;
            static_cast<TaskReport&>(state) = r;
            state.req = w->req;
            replies.push_back({w->to, std::move(state)});
            --waiter_count_;
        }
        list.erase(due, list.end());
        if (list.empty()) waiters_.erase(it);
    }
    return replies;
}

std::optional<std::uint64_t> ServiceDesk::next_delayed_us() const {
    if (delayed_.empty()) return std::nullopt;
    return delayed_.begin()->first;
}

std::optional<ServiceDesk::TimePoint> ServiceDesk::next_waiter() const {
    if (waiter_deadlines_.empty()) return std::nullopt;
    return waiter_deadlines_.begin()->first;
}

}  // namespace taskpipe
