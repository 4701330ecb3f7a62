#include "ventilator.hpp"

#include <algorithm>
#include <string>
#include <unordered_set>

#include "head_sockets.hpp"
#include "store.hpp"
#include "taskpipe/joblog_format.hpp"
#include "taskpipe/log.hpp"
#include "taskpipe/message_io.hpp"
#include "taskpipe/overload.hpp"
#include "taskpipe/shutdown.hpp"
#include "taskpipe/sockets.hpp"
#include "taskpipe/wall_clock.hpp"

namespace taskpipe {

namespace {

constexpr auto kWaitingNotice = std::chrono::seconds(3);
constexpr auto kProgressInterval = std::chrono::seconds(1);
// A loop iteration that took this much longer than its poll timeout means the process did not
// run (SIGSTOP, ^Z, a suspended machine): the time is not charged to the sink or the workers.
// How much of an input an error message quotes.
constexpr std::size_t kQuotedInputBytes = 60;
// A `tasks` frame holds at most this many bytes of payloads (a larger task goes alone), so that
// with its keys it stays well under the workers' frame limit of 1 MiB + 4 KiB.
constexpr std::size_t kTaskGroupBytes = 512u << 10;

std::string quote_input(std::string_view input) {
    const std::string text = joblog::escape(input.substr(0, kQuotedInputBytes));
    return "\"" + text + (input.size() > kQuotedInputBytes ? "\"..." : "\"");
}

RecordedTasks load_recorded(const VentilatorOptions& options) {
    if (options.resume.empty()) return {};
    RecordedTasks recorded = read_joblog(options.resume);
    std::size_t ok = 0;
    for (const auto& [id, task] : recorded) ok += task.ok ? 1 : 0;
    log_info("resuming: the joblog " + options.resume + " records " +
             std::to_string(recorded.size()) + " tasks, " + std::to_string(ok) + " ok; " +
             (options.resume_failed ? "the ok ones are skipped" : "they are skipped"));
    return recorded;
}

}  // namespace

Ventilator::Ventilator(const VentilatorOptions& options)
    : options_(options),
      curve_(load_curve_keys(options.curve, kVentilatorCurveRoles)),
      connection_log_(context_, {"tasks"}),
      zap_(curve_ ? std::make_unique<ZapHandler>(context_, ZapDomains{{"tasks", curve_->allowed}})
                  : nullptr),
      tasks_(bind_socket(context_, zmq::socket_type::push,
                         task_socket_options(curve_, options.liveness_timeout), options.bind)),
      control_(connect_socket(context_, zmq::socket_type::dealer, control_socket_options(curve_),
                              options.sink)),
      input_(
          InputReader::open(options.input, options.null_separated ? '\0' : '\n', kMaxPayloadBytes)),
      recorded_(load_recorded(options)),
      control_monitor_(watch_handshakes(context_, control_, "ventilator-control")),
      batch_(new_batch_id()),
      ledger_({.liveness_timeout = options.liveness_timeout,
               .max_attempts = options.max_attempts,
               .window = options.window,
               .max_task_time = options.max_task_time}),
      session_({.liveness_timeout = options.liveness_timeout, .give_up = options.sink_timeout},
               Clock::now()) {
    if (curve_) {
        log_info("CURVE on: " + std::to_string(curve_->allowed.size()) +
                 " public keys may take tasks");
    }
    if (options.bind.ends_with(":*")) log_info("tasks on " + last_endpoint(tasks_));
    expected_ = input_.count_remaining().value_or(0);
}

void Ventilator::check_control_connection() {
    if (take_events(control_monitor_) > 0) session_.connected();
}

std::string Ventilator::task_endpoint() { return last_endpoint(tasks_); }

void Ventilator::send_control(const ToSinkControl& message) {
    // The DEALER queues while the sink is away; a full queue means the sink is gone for good.
    if (!send_message<ToSinkControl>(control_, encoder_, message)) {
        log_warning("control message to the sink dropped: its queue is full");
    }
}

void Ventilator::send_tasks(Clock::time_point now) {
    if (group_max_ >= 2) {
        while (send_group(now)) {
        }
        return;
    }
    while (const auto task = ledger_.next_to_send(now)) {
        const Task message{batch_,        task->id,   task->attempt, std::string(task->payload),
                           unix_micros(), echo_input_};
        if (!send_message<TasksMessage>(tasks_, encoder_, message)) {
            return;  // no worker connected, or every worker's queue is full
        }
        ledger_.sent(now);
        ++sends_;
        ++frames_;
    }
}

bool Ventilator::send_group(Clock::time_point now) {
    std::optional<Ledger::Send> task = ledger_.next_to_send(now);
    if (!task) return false;
    // The ledger's offers are taken (sent()) one by one as the frame is built, so the frame is
    // built only when the socket can take it: a PUSH socket that polls writable takes a frame.
    if ((tasks_.get(zmq::sockopt::events) & ZMQ_POLLOUT) == 0) return false;
    std::vector<Task>& items = group_.tasks.items;
    const std::uint64_t sent_us = unix_micros();
    std::size_t count = 0;
    std::size_t bytes = 0;
    while (task && count < group_max_ &&
           (count == 0 || bytes + task->payload.size() <= kTaskGroupBytes)) {
        if (count == items.size()) items.emplace_back();
        Task& t = items[count++];
        t.batch = batch_;
        t.id = task->id;
        t.attempt = task->attempt;
        t.payload.assign(task->payload);
        t.sent_us = sent_us;
        t.echo_input = echo_input_;
        bytes += t.payload.size();
        ledger_.sent(now);
        if (count < group_max_) task = ledger_.next_to_send(now);
    }
    items.resize(count);
    const bool sent = count == 1 ? send_message<TasksMessage>(tasks_, encoder_, items.front())
                                 : send_message<TasksMessage>(tasks_, encoder_, group_);
    if (!sent) {
        // Not expected after POLLOUT; if the connection went meanwhile, the tasks are handed
        // back as a full worker's are, and go out again shortly with the same attempt.
        std::vector<std::uint64_t> ids;
        for (const Task& t : items) ids.push_back(t.id);
        ledger_.released(ids, now);
        return false;
    }
    sends_ += count;
    ++frames_;
    return true;
}

void Ventilator::set_group_max(std::uint64_t most) {
    group_max_ = std::min<std::uint64_t>(most, kMaxGroupItems);  // the sink's word is bounded
    ledger_.set_group_max(group_max_);
}

void Ventilator::read_input(Clock::time_point now) {
    try {
        while (!input_done_ && ledger_.wants(next_id_)) {
            std::optional<std::string> record = input_.next();
            if (!record) {
                if (input_.exhausted()) {
                    input_done_ = true;
                    break;
                }
                if (input_.fill() == InputReader::Fill::would_block) break;
                continue;
            }
            if (skip_recorded(next_id_, *record)) {
                ++next_id_;
                continue;
            }
            ledger_.add(next_id_++, std::move(*record));
            // New tasks wait until they fill a frame (or the window, or the input, stops them).
            if (!ledger_.wants(next_id_)) send_tasks(now);
        }
        send_tasks(now);
    } catch (const std::runtime_error& e) {
        log_error(std::string(e.what()) + "; no further input is read, the " +
                  std::to_string(next_id_ - 1) + " tasks read so far are completed");
        input_done_ = true;
        input_failed_ = true;
    }
}

// Whether task `id`, whose input is `record`, is skipped: recorded by the --resume joblog (as ok,
// with --resume-failed). Throws std::runtime_error when the joblog recorded another input for it.
bool Ventilator::skip_recorded(std::uint64_t id, const std::string& record) {
    const auto it = recorded_.find(id);
    if (it == recorded_.end() || (options_.resume_failed && !it->second.ok)) return false;
    const RecordedTask& task = it->second;
    if (task.input && *task.input != record) {
        throw std::runtime_error("task " + std::to_string(id) + ": the input " +
                                 quote_input(record) + " differs from the joblog's " +
                                 quote_input(*task.input) +
                                 ": this is not the input the joblog was written for");
    }
    pending_skip_.ids.push_back(id);
    if (!task.ok) {
        pending_skip_.failed.push_back(id);
        failed_ids_.push_back(id);
        ++failed_;  // a script sees status 1 if any task of the batch ultimately failed
    }
    ++skipped_;
    skips_unacked_.emplace(id, !task.ok);
    recorded_.erase(it);
    if (pending_skip_.ids.size() >= kMaxIdsPerMessage) flush_skips();
    return true;
}

void Ventilator::flush_skips() {
    if (pending_skip_.ids.empty()) return;
    pending_skip_.batch = batch_;
    send_control(pending_skip_);
    pending_skip_.ids.clear();
    pending_skip_.failed.clear();
}

// After a Welcome that shows the sink reconnected or restarted: what it may not have received
// (messages sent into a connection that died are gone) is sent again. The sink ignores repeats.
void Ventilator::resend_reports() {
    for (const auto& [id, failed] : skips_unacked_) {
        pending_skip_.ids.push_back(id);
        if (failed) pending_skip_.failed.push_back(id);
        if (pending_skip_.ids.size() >= kMaxIdsPerMessage) flush_skips();
    }
    flush_skips();
    for (const auto& [id, attempts] : lost_unacked_) send_control(Lost{batch_, id, attempts});
    if (phase_ == Phase::finishing) send_control(End{batch_, next_id_ - 1});
    Pending pending{batch_, {}};
    for (std::uint64_t id : ledger_.in_flight_ids()) {
        pending.ids.push_back(id);
        if (pending.ids.size() == kMaxIdsPerMessage) {
            send_control(pending);
            pending.ids.clear();
        }
    }
    if (!pending.ids.empty()) send_control(pending);
}

// A restarted sink knows nothing of the batch: it is told which tasks an earlier sink instance
// recorded, so that it counts them done without writing them again.
void Ventilator::hand_over() {
    const DoneSet& done = ledger_.acknowledged();
    Handover h{batch_, done.prefix(), {}, {}};
    auto flush = [&] {
        send_control(h);
        h.ids.clear();
        h.failed.clear();
    };
    for (std::uint64_t id : done.above()) {
        h.ids.push_back(id);
        if (h.ids.size() == kMaxIdsPerMessage) flush();
    }
    for (std::uint64_t id : failed_ids_) {
        if (!done.contains(id)) continue;
        h.failed.push_back(id);
        if (h.failed.size() == kMaxIdsPerMessage) flush();
    }
    flush();
    log_info("handed the batch over to a new sink: " + std::to_string(done.size()) +
             " tasks recorded by the one before");
}

void Ventilator::check_deadlines(Clock::time_point now) {
    for (const Ledger::LostTask& task : watch_.check_deadlines(now)) {
        // Counted once the sink has recorded it (on_ack): the sink may have its result already.
        send_control(Lost{batch_, task.id, task.attempts});
        lost_unacked_.emplace(task.id, task.attempts);
    }
}

void Ventilator::on_welcome(const Welcome& welcome, Clock::time_point now) {
    const SinkSession::Welcomed welcomed = session_.welcome(welcome.sink, now);
    ledger_.set_capacity(welcome.capacity);
    ledger_.set_reorder_window(welcome.reorder_window);
    set_group_max(welcome.group_max);
    echo_input_ = welcome.echo_input;
    switch (welcomed) {
        case SinkSession::Welcomed::first:
            log_debug("the sink welcomed batch " + std::to_string(batch_) + " (capacity " +
                      std::to_string(welcome.capacity) + ", reorder window " +
                      std::to_string(welcome.reorder_window) + ")");
            break;
        case SinkSession::Welcomed::again:
            log_info("the sink welcomed the batch again (a new connection)");
            resend_reports();
            break;
        case SinkSession::Welcomed::new_sink:
            log_warning("a new sink took over the batch (the sink was restarted)");
            hand_over();
            resend_reports();
            break;
    }
}

// The sink's word on each task is final, so that the two programs report the same outcome: a
// task this ventilator reported lost whose result the sink already had is not lost, and the sink
// lists a task it recorded as lost among the failed.
void Ventilator::on_ack(const Ack& ack) {
    const std::unordered_set<std::uint64_t> failed(ack.failed.begin(), ack.failed.end());
    for (std::uint64_t id : ack.ids) {
        // An id not read yet is not ours to confirm (a confused or forged sink).
        if (id >= next_id_) continue;
        if (ledger_.acknowledge(id)) ++acknowledged_;
        skips_unacked_.erase(id);
        const bool was_lost = lost_unacked_.erase(id) == 1;
        if (!failed.contains(id)) {
            if (was_lost) {
                log_info("task " + std::to_string(id) +
                         " is not lost after all: the sink has its result");
            }
            continue;
        }
        // A failed result whose ack crossed our `lost` is counted as lost: the same total.
        ++(was_lost ? lost_ : failed_);
        failed_ids_.push_back(id);
    }
}

void Ventilator::handle_control(Clock::time_point now) {
    while (std::optional<Received<ToVentilatorControl>> received =
               recv_message<ToVentilatorControl>(control_)) {
        if (!received->message) {
            malformed_.count("dropped a malformed message from the sink: " + received->error);
            continue;
        }
        const ToVentilatorControl& message = *received->message;
        if (std::visit([](const auto& m) { return m.batch; }, message) != batch_) {
            malformed_.count("dropped a message from the sink about another batch");
            continue;
        }
        session_.heard(now);
        std::visit(Overload{
                       [&](const Welcome& m) { on_welcome(m, now); },
                       [&](const Reject& m) {
                           throw StartupError("the sink refused the batch: " + m.reason);
                       },
                       [&](const Ack& m) { on_ack(m); },
                       [&](const Alive& m) {
                           ledger_.set_capacity(m.capacity);
                           set_group_max(m.group_max);
                           ledger_.alive(m.ids, m.running, now);
                       },
                       [&](const SinkRelease& m) { ledger_.released(m.ids, now); },
                       [&](const Abort& m) {
                           abort_ = m;
                           stop_ = Stop::sink_aborted;
                       },
                       [&](const Outcome&) {
                           malformed_.count("dropped a service's outcome: this is a batch");
                       },
                   },
                   message);
    }
}

void Ventilator::send_progress(Clock::time_point now, bool now_or_never) {
    if (!now_or_never && now < next_progress_) return;
    next_progress_ = now + kProgressInterval;
    send_control(Progress{batch_, next_id_ - 1, ledger_.size(), ledger_.resent(), expected_});
}

Ventilator::Phase Ventilator::next_phase() const {
    switch (phase_) {
        case Phase::waiting:
            return session_.welcomed() ? Phase::reading : Phase::waiting;
        case Phase::reading:
            return input_done_ ? Phase::finishing : Phase::reading;
        case Phase::finishing:
            return ledger_.empty() && skips_unacked_.empty() && lost_unacked_.empty()
                       ? Phase::done
                       : Phase::finishing;
        case Phase::done:
            return Phase::done;
    }
    return phase_;
}

void Ventilator::advance() {
    for (Phase next = next_phase(); next != phase_; next = next_phase()) {
        phase_ = next;
        if (phase_ == Phase::finishing) {
            flush_skips();  // End must follow every Skip
            send_control(End{batch_, next_id_ - 1});
        }
    }
}

std::string Ventilator::counts() const {
    return std::to_string(next_id_ - 1) + " tasks read, " + std::to_string(acknowledged_) +
           " acknowledged, " + std::to_string(ledger_.size()) + " without a result" +
           (input_done_ ? "" : ", input not read to the end");
}

int Ventilator::finish() {
    send_progress(Clock::now(), /*now_or_never=*/true);  // the sink's --stats see the last counts
    send_control(Bye{batch_});
    const std::uint64_t total = next_id_ - 1;
    std::string summary =
        "batch complete: " + std::to_string(total) + " tasks, " + std::to_string(failed_) +
        " failed, " + std::to_string(lost_) + " lost, " + std::to_string(ledger_.resent()) +
        " re-sent, " + std::to_string(ledger_.released_count()) + " released by full workers, " +
        std::to_string(sends_) + " sends in " + std::to_string(frames_) + " frames";
    if (malformed_.total() > 0) {
        summary += ", " + std::to_string(malformed_.total()) + " malformed messages";
    }
    if (!options_.resume.empty()) summary += ", " + std::to_string(skipped_) + " skipped";
    log_info(summary);
    if (input_failed_) return kExitUsage;
    return failed_ + lost_ > 0 ? kExitTasksFailed : kExitOk;
}

int Ventilator::stop(Stop why) {
    if (why == Stop::sink_aborted) {
        log_error("the sink stopped before the batch was complete (its exit status " +
                  std::to_string(abort_.status) +
                  (abort_.reason.empty() ? "" : ": " + abort_.reason) + "); " + counts());
    } else if (session_.welcomed()) {
        log_error("no word from the sink for " + seconds(session_.silence(Clock::now())) +
                  " (--sink-timeout); giving up: " + counts());
    } else {
        log_error("no sink answered at " + options_.sink + " for " +
                  seconds(session_.silence(Clock::now())) + " (--sink-timeout); giving up");
    }
    return kExitGaveUp;
}

int Ventilator::run() {
    ShutdownSignal& shutdown = ShutdownSignal::install();
    const auto started = Clock::now();
    bool noticed_waiting = false;
    const auto check_interval =
        std::min<Clock::duration>(std::chrono::milliseconds(250), options_.liveness_timeout / 4);
    next_deadline_check_ = started + check_interval;
    watch_.start(started);
    auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(check_interval);

    while (!shutdown.requested()) {
        auto now = Clock::now();
        watch_.check_pause(now, timeout);
        if (zap_) zap_->check();
        check_control_connection();
        handle_control(now);
        if (stop_ != Stop::none) return stop(stop_);
        if (session_.gave_up(now)) return stop(Stop::gave_up);
        advance();
        if (phase_ == Phase::done) return finish();
        if (session_.hello_due(now)) {
            send_control(Hello{batch_, session_.sink()});
            session_.hello_sent(now);
            if (!noticed_waiting && !session_.welcomed() && now - started >= kWaitingNotice) {
                log_info("waiting for the sink at " + options_.sink);
                noticed_waiting = true;
            }
        }
        if (phase_ != Phase::waiting) {
            send_tasks(now);
            if (phase_ == Phase::reading) read_input(now);
            if (now >= next_deadline_check_) {
                check_deadlines(now);
                next_deadline_check_ = now + check_interval;
                send_tasks(now);
            }
            send_progress(now);
            flush_skips();
            advance();
            if (phase_ == Phase::done) return finish();
        }

        now = Clock::now();
        const auto next_release = ledger_.next_release();
        const bool want_input = phase_ == Phase::reading && ledger_.wants(next_id_);
        const bool want_send = phase_ != Phase::waiting && ledger_.sendable(now);
        timeout = std::chrono::duration_cast<std::chrono::milliseconds>(check_interval);
        if (next_release != Clock::time_point::max() && next_release > now) {
            timeout =
                std::min(timeout, std::chrono::ceil<std::chrono::milliseconds>(next_release - now));
        }
        std::vector<zmq::pollitem_t> items = {
            {control_.handle(), 0, ZMQ_POLLIN, 0},
            {control_monitor_.handle(), 0, ZMQ_POLLIN, 0},
            {nullptr, shutdown.fd(), ZMQ_POLLIN, 0},
        };
        if (want_input) items.push_back({nullptr, input_.fd(), ZMQ_POLLIN, 0});
        if (want_send) items.push_back({tasks_.handle(), 0, ZMQ_POLLOUT, 0});
        poll(items, timeout);
    }

    log_warning("interrupted: " + counts());
    return kExitInterrupted;
}

}  // namespace taskpipe
