#include "tracker.hpp"

#include <algorithm>
#include <utility>

#include "taskpipe/overload.hpp"

namespace taskpipe {

namespace {

constexpr std::string_view kFinalStates[] = {"ok",      "failed", "error",
                                             "timeout", "lost",   "cancelled"};

std::uint64_t milliseconds(Tracker::Clock::duration d) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    return ms > 0 ? static_cast<std::uint64_t>(ms) : 0;
}

}  // namespace

bool is_final_state(std::string_view state) {
    return std::find(std::begin(kFinalStates), std::end(kFinalStates), state) !=
           std::end(kFinalStates);
}

Tracker::Tracker(Settings settings) : settings_(std::move(settings)) {}

std::uint64_t Tracker::add(Task task, Phase phase) {
    task.number = ++added_;
    Entry& entry = tasks_.emplace_back();
    entry.task = std::move(task);
    if (stopped_) {
        entry.task.gave_up = "the command had stopped";
        entry.phase = Phase::complete;
    } else if (phase == Phase::queued) {
        to_ask_.insert(entry.task.number);
    } else {
        wait_for(entry, TimePoint::min());  // polled at the next tick
    }
    return entry.task.number;
}

void Tracker::add_submit(std::string payload, std::optional<std::string> key) {
    Task task;
    task.ask = Ask::submit;
    task.payload = std::move(payload);
    task.key = std::move(key);
    add(std::move(task), Phase::queued);
}

void Tracker::add_status(std::uint64_t id) {
    Task task;
    task.ask = Ask::status;
    task.id = id;
    add(std::move(task), settings_.wait ? Phase::waiting : Phase::queued);
}

void Tracker::add_status(std::string key) {
    Task task;
    task.ask = Ask::status;
    task.key = std::move(key);
    add(std::move(task), settings_.wait ? Phase::waiting : Phase::queued);
}

void Tracker::add_cancel(std::uint64_t id) {
    Task task;
    task.ask = Ask::cancel;
    task.id = id;
    add(std::move(task), Phase::queued);
}

bool Tracker::wants_more() const {
    return !stopped_ && asked_ + to_ask_.size() < settings_.window &&
           tasks_.size() < settings_.max_held;
}

Tracker::Entry* Tracker::find(std::uint64_t number) {
    if (number < first_number_ || number - first_number_ >= tasks_.size()) return nullptr;
    return &tasks_[number - first_number_];
}

void Tracker::expect_answer(std::uint64_t req, Request request) {
    request.due = answers_due_.emplace(request.sent_at + request.wait + settings_.patience, req);
    requests_.emplace(req, request);
}

void Tracker::forget_request(std::unordered_map<std::uint64_t, Request>::iterator it) {
    answers_due_.erase(it->second.due);
    requests_.erase(it);
}

void Tracker::ask(Entry& entry, TimePoint now) {
    const std::uint64_t req = next_req();
    entry.phase = Phase::asked;
    entry.req = req;
    ++asked_;
    expect_answer(req, Request{entry.task.number, false, false, now, Clock::duration(0), {}});
    const Task& t = entry.task;
    switch (t.ask) {
        case Ask::submit:
            outbox_.push_back({req, Submit{req, t.payload, t.key, settings_.delay_ms,
                                           settings_.not_before_us, settings_.wait}});
            return;
        case Ask::status:
            outbox_.push_back({req, Query{req, t.id, t.id == 0 ? t.key : std::nullopt, 0}});
            return;
        case Ask::cancel:
            outbox_.push_back({req, Cancel{req, t.id}});
            return;
    }
}

void Tracker::poll(Entry& entry, TimePoint now) {
    const std::uint64_t req = next_req();
    Clock::duration wait = settings_.long_poll;
    if (settings_.deadline) wait = std::clamp(*settings_.deadline - now, Clock::duration(0), wait);
    entry.poll_req = req;
    entry.poll_at.reset();
    ++polls_outstanding_;
    expect_answer(req, Request{entry.task.number, true, false, now, wait, {}});
    const Task& t = entry.task;
    outbox_.push_back(
        {req, Query{req, t.id, t.id == 0 ? t.key : std::nullopt, milliseconds(wait)}});
}

void Tracker::pump(TimePoint now) {
    if (!connected_ || stopped_) return;
    while (!to_ask_.empty() && asked_ < settings_.window) {
        const std::uint64_t number = *to_ask_.begin();
        to_ask_.erase(to_ask_.begin());
        if (Entry* entry = find(number); entry != nullptr && entry->phase == Phase::queued) {
            ask(*entry, now);
        }
    }
    while (!polls_due_.empty() && polls_due_.begin()->first <= now &&
           polls_outstanding_ < settings_.max_polls) {
        const auto [at, number] = *polls_due_.begin();
        polls_due_.erase(polls_due_.begin());
        Entry* entry = find(number);
        if (entry != nullptr && entry->phase == Phase::waiting && entry->poll_req == 0 &&
            entry->poll_at == at) {
            poll(*entry, now);
        }
    }
}

void Tracker::wait_for(Entry& entry, TimePoint poll_at) {
    if (entry.phase == Phase::asked) --asked_;
    if (entry.phase != Phase::waiting && entry.task.id != 0) {
        waiting_by_id_.emplace(entry.task.id, entry.task.number);
    }
    entry.phase = Phase::waiting;
    schedule_poll(entry, poll_at);
}

void Tracker::schedule_poll(Entry& entry, TimePoint at) {
    entry.poll_at = at;
    polls_due_.emplace(at, entry.task.number);
}

void Tracker::complete(Entry& entry) {
    if (entry.phase == Phase::asked) --asked_;
    if (entry.phase == Phase::queued) to_ask_.erase(entry.task.number);
    if (entry.phase == Phase::waiting) {
        auto [from, to] = waiting_by_id_.equal_range(entry.task.id);
        for (auto it = from; it != to; ++it) {
            if (it->second == entry.task.number) {
                waiting_by_id_.erase(it);
                break;
            }
        }
    }
    entry.phase = Phase::complete;
    entry.poll_at.reset();
    entry.task.payload.clear();
}

void Tracker::give_up(Entry& entry, const std::string& reason) {
    if (entry.phase == Phase::complete) return;
    entry.task.gave_up = reason;
    complete(entry);
}

void Tracker::give_up_all(const std::string& reason) {
    for (Entry& entry : tasks_) give_up(entry, reason);
    stopped_ = true;
    outbox_.clear();
    to_ask_.clear();
    polls_due_.clear();
    requests_.clear();
    answers_due_.clear();
}

void Tracker::stop(const std::string& reason) { give_up_all(reason); }

void Tracker::connected(TimePoint now) {
    connected_ = true;
    down_since_.reset();
    // A head that restarted, or replaced the connection, no longer knows whom to tell: ask.
    for (Entry& entry : tasks_) {
        if (entry.phase == Phase::waiting && entry.poll_req == 0) schedule_poll(entry, now);
    }
    pump(now);
}

void Tracker::disconnected(TimePoint now, const std::string& reason) {
    if (!connected_) return;
    connected_ = false;
    down_since_ = now;
    down_reason_ = reason;
    outbox_.clear();
    for (const auto& [req, request] : requests_) {
        Entry* entry = find(request.number);
        if (entry == nullptr || entry->phase == Phase::complete) continue;
        if (request.poll) {
            entry->poll_req = 0;  // polled again once connected
            continue;
        }
        if (request.sent && entry->task.ask == Ask::submit && !entry->task.key) {
            give_up(*entry, reason +
                                " before the head answered: the task may or may not have been "
                                "accepted (a submit with --key is safe to repeat)");
            continue;
        }
        --asked_;
        entry->phase = Phase::queued;
        to_ask_.insert(entry->task.number);
    }
    requests_.clear();
    answers_due_.clear();
    polls_outstanding_ = 0;
}

void Tracker::tick(TimePoint now) {
    if (stopped_) return;
    if (settings_.deadline && now >= *settings_.deadline) {
        give_up_all("the --timeout passed");
        return;
    }
    if (!connected_ && down_since_ && now >= *down_since_ + settings_.patience) {
        give_up_all(
            down_reason_ + ", and the head did not come back within " +
            std::to_string(
                std::chrono::duration_cast<std::chrono::seconds>(settings_.patience).count()) +
            " s");
        return;
    }
    if (connected_ && !answers_due_.empty() && now >= answers_due_.begin()->first) {
        give_up_all(
            "the head did not answer a request within " +
            std::to_string(
                std::chrono::duration_cast<std::chrono::seconds>(settings_.patience).count()) +
            " s (is it stopped, or overloaded?)");
        return;
    }
    pump(now);
}

const ToHead* Tracker::next_request() const {
    return connected_ && !outbox_.empty() ? &outbox_.front().message : nullptr;
}

void Tracker::request_sent() {
    if (outbox_.empty()) return;
    if (auto it = requests_.find(outbox_.front().req); it != requests_.end())
        it->second.sent = true;
    outbox_.pop_front();
}

bool Tracker::other_head(const Entry& entry, std::uint64_t head) const {
    return entry.task.head != 0 && head != 0 && head != entry.task.head;
}

void Tracker::report(Entry& entry, TaskReport r, TimePoint now, const Request* poll) {
    if (other_head(entry, r.head)) {
        return give_up(entry,
                       "the head was restarted without its store (--store) and has "
                       "forgotten task " +
                           std::to_string(entry.task.id));
    }
    if (entry.task.head == 0) entry.task.head = r.head;
    if (entry.task.id == 0 && r.id != 0) {
        entry.task.id = r.id;
        if (entry.phase == Phase::waiting) waiting_by_id_.emplace(r.id, entry.task.number);
    }
    const bool ends = is_final_state(r.state) || r.state == "unknown";
    entry.task.report = std::move(r);
    if (ends) return complete(entry);
    if (poll != nullptr && entry.phase == Phase::waiting && entry.poll_req == 0) {
        // The head answers a long poll early when it holds too many: do not hammer it.
        const bool early = now - poll->sent_at < poll->wait / 2;
        schedule_poll(entry, early ? now + settings_.poll_backoff : now);
    }
}

void Tracker::answer(Entry& entry, const Request& request, ToProducer& message, TimePoint now) {
    auto unexpected = [&](std::string_view type) {
        give_up(entry, "the head answered with an unexpected '" + std::string(type) + "'");
    };
    std::visit(Overload{
                   [&](Accepted& a) {
                       if (request.poll || entry.task.ask != Ask::submit)
                           return unexpected("accepted");
                       entry.task.id = a.id;
                       entry.task.head = a.head;
                       entry.task.created = a.created;
                       TaskReport r;
                       r.id = a.id;
                       r.state = a.state;
                       r.key = entry.task.key;
                       r.head = a.head;
                       entry.task.report = std::move(r);
                       if (!settings_.wait) return complete(entry);
                       // A task already finished (a key named it) is not pushed: ask at once.
                       wait_for(entry, is_final_state(a.state) ? now : now + settings_.push_grace);
                   },
                   [&](State& s) {
                       if (!request.poll && entry.task.ask == Ask::submit)
                           return unexpected("state");
                       TaskReport r = std::move(static_cast<TaskReport&>(s));
                       if (request.poll) return report(entry, std::move(r), now, &request);
                       if (entry.task.id == 0) entry.task.id = r.id;
                       entry.task.head = r.head;
                       entry.task.report = std::move(r);
                       complete(entry);
                   },
                   [&](Error& e) {
                       if (request.poll) {
                           // A store that cannot be read just now: ask again shortly.
                           if (entry.poll_req == 0)
                               schedule_poll(entry, now + settings_.poll_backoff);
                           return;
                       }
                       entry.task.refused = std::move(e);
                       complete(entry);
                   },
                   [&](Done&) {},  // carries no req: handled in received()
               },
               message);
}

void Tracker::received(ToProducer message, TimePoint now) {
    if (auto* done = std::get_if<Done>(&message)) {
        std::vector<std::uint64_t> numbers;
        auto [from, to] = waiting_by_id_.equal_range(done->id);
        for (auto it = from; it != to; ++it) numbers.push_back(it->second);
        for (std::uint64_t number : numbers) {
            if (Entry* entry = find(number); entry != nullptr && entry->phase == Phase::waiting) {
                report(*entry, *done, now, nullptr);
            }
        }
        pump(now);
        return;
    }
    const std::uint64_t req = std::visit(
        [](const auto& m) -> std::uint64_t {
            if constexpr (requires { m.req; }) {
                return m.req;
            } else {
                return 0;
            }
        },
        message);
    const auto it = requests_.find(req);
    if (it == requests_.end() || !it->second.sent) {
        ++stale_;
        return;
    }
    const Request request = it->second;
    forget_request(it);
    Entry* entry = find(request.number);
    if (request.poll) {
        --polls_outstanding_;
        if (entry != nullptr && entry->poll_req == req) entry->poll_req = 0;
    }
    if (entry != nullptr && entry->phase != Phase::complete) {
        answer(*entry, request, message, now);
    }
    pump(now);
}

std::optional<Tracker::TimePoint> Tracker::next_wakeup() const {
    if (stopped_) return std::nullopt;
    std::optional<TimePoint> next = settings_.deadline;
    auto earlier = [&](TimePoint t) { next = next ? std::min(*next, t) : t; };
    if (connected_ && !polls_due_.empty() && polls_outstanding_ < settings_.max_polls) {
        earlier(polls_due_.begin()->first);
    }
    if (!connected_ && down_since_) earlier(*down_since_ + settings_.patience);
    if (connected_ && !answers_due_.empty()) earlier(answers_due_.begin()->first);
    return next;
}

std::optional<Tracker::Task> Tracker::take_complete() {
    if (tasks_.empty() || tasks_.front().phase != Phase::complete) return std::nullopt;
    Task task = std::move(tasks_.front().task);
    tasks_.pop_front();
    ++first_number_;
    return task;
}

}  // namespace taskpipe
