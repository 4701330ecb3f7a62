#include "service.hpp"

#include <algorithm>
#include <cerrno>

#include "head_sockets.hpp"
#include "taskpipe/log.hpp"
#include "taskpipe/message_io.hpp"
#include "taskpipe/overload.hpp"
#include "taskpipe/shutdown.hpp"
#include "taskpipe/sockets.hpp"
#include "taskpipe/wall_clock.hpp"

namespace taskpipe {

namespace {

constexpr auto kProgressInterval = std::chrono::seconds(1);
constexpr auto kExpiryInterval = std::chrono::seconds(1);
// Requests taken from the producers in one loop iteration: one group commit.
constexpr int kRequestBurst = 4096;

ZapDomains service_domains(const std::optional<CurveKeys>& curve,
                           const VentilatorOptions& options) {
    if (!curve) return {};
    std::vector<std::string> producers;
    for (const std::string& path : options.curve_producers) {
        for (std::string& key : load_allowed_keys(path)) producers.push_back(std::move(key));
    }
    return {{"tasks", curve->allowed}, {"listen", producers}};
}

std::unique_ptr<TaskStore> open_store(const VentilatorOptions& options) {
    if (options.store.empty()) return make_memory_store();
    return open_sqlite_store(options.store, {.fsync_commits = options.store_fsync});
}

}  // namespace

Service::Service(const VentilatorOptions& options)
    : options_(options),
      curve_(load_curve_keys(options.curve, kVentilatorCurveRoles)),
      accept_failures_(context_, {"tasks", "listen"}),
      zap_(curve_ ? std::make_unique<ZapHandler>(context_, service_domains(curve_, options))
                  : nullptr),
      store_(open_store(options)),
      tasks_(bind_socket(context_, zmq::socket_type::push,
                         task_socket_options(curve_, options.liveness_timeout), options.bind)),
      listen_(bind_socket(context_, zmq::socket_type::router, listen_socket_options(curve_),
                          options.listen)),
      control_(connect_socket(context_, zmq::socket_type::dealer, control_socket_options(curve_),
                              options.sink)),
      control_monitor_(watch_handshakes(context_, control_, "service-control")),
      desk_(*store_,
            {.keep_results = options.keep_results,
             .max_queue = options.max_queue,
             .max_output = options.max_output},
            unix_micros()),
      ledger_({.liveness_timeout = options.liveness_timeout,
               .max_attempts = options.max_attempts,
               .window = options.window,
               .max_task_time = options.max_task_time,
               .remember_acknowledged = false}),
      session_({.liveness_timeout = options.liveness_timeout, .give_up = options.sink_timeout},
               Clock::now()) {
    if (options.bind.ends_with(":*")) log_info("tasks on " + last_endpoint(tasks_));
    // A full queue of a producer's answers, or a producer gone, fails a send (counted) rather
    // than dropping the answer unseen.
    listen_.set(zmq::sockopt::router_mandatory, true);
    if (options.listen.ends_with(":*")) log_info("listening on " + last_endpoint(listen_));
    log_info(
        std::string("serving batch ") + std::to_string(desk_.batch()) + ", tasks kept " +
        (options.store.empty() ? "in memory (lost if this process dies)" : "in " + options.store) +
        "; " + std::to_string(desk_.queued() + desk_.delayed()) + " unfinished");
}

std::string Service::task_endpoint() { return last_endpoint(tasks_); }
std::string Service::listen_endpoint() { return last_endpoint(listen_); }

void Service::send_control(const ToSinkControl& message) {
    if (!send_message<ToSinkControl>(control_, encoder_, message)) {
        log_warning("control message to the sink dropped: its queue is full");
    }
}

void Service::reply(const ServiceDesk::Reply& r) {
    try {
        // The producer does not read its answers (its queue is full): dropped, counted.
        if (!send_message<ToProducer>(listen_, r.to.id, encoder_, r.message, r.to.delimited)) {
            ++replies_dropped_;
        }
    } catch (const zmq::error_t& e) {
        if (e.num() != EHOSTUNREACH) throw;
        ++replies_dropped_;  // the producer is gone
    }
}

void Service::apply(ServiceDesk::Effects effects) {
    if (effects.store_error) {
        if (store_failing_ != effects.store_error) {
            log_error("the task store cannot be written: " + *effects.store_error +
                      "; submissions are refused until it can");
        }
        store_failing_ = effects.store_error;
    } else if (store_failing_) {
        log_info("the task store can be written again");
        store_failing_.reset();
    }
    for (const ServiceDesk::Reply& r : effects.replies) reply(r);
    for (std::uint64_t id : effects.finished) ledger_.acknowledge(id);
    for (const Lost& lost : effects.lost) send_control(lost);
    Record& record = effects.record;
    // At most kMaxIdsPerMessage ids in each list of a message.
    for (std::size_t from = 0; from < std::max(record.ids.size(), record.drop.size());
         from += kMaxIdsPerMessage) {
        Record part{desk_.batch(), {}, {}};
        auto slice = [&](const std::vector<std::uint64_t>& ids, std::vector<std::uint64_t>& to) {
            if (from >= ids.size()) return;
            const auto end = std::min(ids.size(), from + kMaxIdsPerMessage);
            to.assign(ids.begin() + static_cast<std::ptrdiff_t>(from),
                      ids.begin() + static_cast<std::ptrdiff_t>(end));
        };
        slice(record.ids, part.ids);
        slice(record.drop, part.drop);
        send_control(part);
    }
}

void Service::handle_control(Clock::time_point now, std::uint64_t now_us) {
    while (std::optional<Received<ToVentilatorControl>> received =
               recv_message<ToVentilatorControl>(control_)) {
        if (!received->message) {
            malformed_.count("dropped a malformed message from the sink: " + received->error);
            continue;
        }
        ToVentilatorControl& message = *received->message;
        if (std::visit([](const auto& m) { return m.batch; }, message) != desk_.batch()) {
            malformed_.count("dropped a message from the sink about another batch");
            continue;
        }
        session_.heard(now);
        std::visit(Overload{
                       [&](const Welcome& m) {
                           const auto welcomed = session_.welcome(m.sink, now);
                           sink_refused_ = false;
                           ledger_.set_capacity(m.capacity);
                           echo_input_ = m.echo_input;
                           if (welcomed != SinkSession::Welcomed::again) {
                               log_info("the sink took the service's batch");
                           }
                       },
                       [&](const Reject& m) {
                           // The sink may take us once the head before (a killed one) has been
                           // silent a few seconds: keep saying hello.
                           if (!sink_refused_) log_warning("the sink refused: " + m.reason);
                           sink_refused_ = true;
                       },
                       [&](const Ack&) {
                           malformed_.count("dropped an ack: a service's sink sends outcomes");
                       },
                       [&](const Alive& m) {
                           ledger_.set_capacity(m.capacity);
                           ledger_.alive(m.ids, m.running, now);
                       },
                       [&](const SinkRelease& m) { ledger_.released(m.ids, now); },
                       [&](const Abort& m) {
                           log_warning("the sink stopped (its exit status " +
                                       std::to_string(m.status) + ": " + m.reason +
                                       "); waiting for a sink to serve");
                       },
                       [&](Outcome& m) { desk_.outcome(std::move(m), now_us); },
                   },
                   message);
    }
}

void Service::handle_requests(Clock::time_point now, std::uint64_t now_us) {
    for (int i = 0; i < kRequestBurst; ++i) {
        std::optional<Received<ToHead>> received = recv_message<ToHead>(listen_, Framing::producer);
        if (!received) return;
        if (!received->message) {
            malformed_requests_.count("dropped a malformed request" + received->from + ": " +
                                      received->error);
            continue;
        }
        const Producer from{received->peer, received->delimited};
        std::visit(Overload{
                       [&](const Submit& m) {
                           log_debug("submission " + std::to_string(m.req) + received->from + ", " +
                                     std::to_string(m.payload.size()) + " bytes" +
                                     (m.key ? ", key " + *m.key : ""));
                           desk_.submit(from, m, now_us);
                       },
                       [&](const Query& m) { desk_.query(from, m, now, now_us); },
                       [&](const Cancel& m) { desk_.cancel(from, m, now_us); },
                   },
                   *received->message);
    }
}

void Service::send_tasks(Clock::time_point now) {
    while (const auto task = ledger_.next_to_send(now)) {
        const Task message{desk_.batch(), task->id,   task->attempt, std::string(task->payload),
                           unix_micros(), echo_input_};
        if (!send_message<TasksMessage>(tasks_, encoder_, message)) return;
        desk_.sent(task->id);
        ledger_.sent(now);
    }
}

// Moves ready tasks into the ledger while it has room, and sends what it offers.
void Service::dispatch(Clock::time_point now, std::uint64_t now_us) {
    send_tasks(now);
    while (!draining_ && ledger_.wants(0)) {
        std::optional<ServiceDesk::Ready> task = desk_.next_ready(now_us);
        if (!task) break;
        ledger_.add(task->id, std::move(task->payload));
        send_tasks(now);
    }
}

void Service::check_deadlines(Clock::time_point now, std::uint64_t now_us) {
    for (const Ledger::LostTask& task : watch_.check_deadlines(now)) {
        desk_.lost(task.id, task.attempts, now_us);
    }
}

void Service::check_control_connection() {
    if (take_events(control_monitor_) > 0) session_.connected();
}

void Service::send_progress(Clock::time_point now) {
    if (now < next_progress_) return;
    next_progress_ = now + kProgressInterval;
    Progress p{desk_.batch(), desk_.accepted(), ledger_.size(), ledger_.resent(), 0, 0, 0};
    p.queued = desk_.queued();
    p.delayed = desk_.delayed();
    send_control(p);
}

void Service::begin_drain(Clock::time_point now) {
    draining_ = true;
    drain_deadline_ = now + options_.drain_timeout;
    desk_.drain();
    log_info("draining: no new submissions; waiting for the " + std::to_string(ledger_.size()) +
             " tasks in flight (at most " + seconds(options_.drain_timeout) + ")");
}

Service::Clock::duration Service::poll_timeout(Clock::time_point now, std::uint64_t now_us) const {
    Clock::duration timeout = std::chrono::milliseconds(250);
    if (const auto release = ledger_.next_release(); release != Clock::time_point::max()) {
        timeout = std::min(timeout, release - now);
    }
    if (const auto waiter = desk_.next_waiter()) timeout = std::min(timeout, *waiter - now);
    if (const auto delayed = desk_.next_delayed_us(); delayed && ledger_.wants(0)) {
        timeout = std::min<Clock::duration>(
            timeout, std::chrono::microseconds(*delayed > now_us ? *delayed - now_us : 0));
    }
    return std::max(timeout, Clock::duration::zero());
}

int Service::run() {
    ShutdownSignal& shutdown = ShutdownSignal::install();
    const auto check_interval =
        std::min<Clock::duration>(std::chrono::milliseconds(250), options_.liveness_timeout / 4);
    const auto started = Clock::now();
    watch_.start(started);
    next_deadline_check_ = started + check_interval;
    Clock::duration timeout = std::chrono::milliseconds(250);
    std::vector<zmq::pollitem_t> items;

    while (true) {
        const auto now = Clock::now();
        const std::uint64_t now_us = unix_micros();
        watch_.check_pause(now, timeout);
        if (zap_) zap_->check();
        if (shutdown.requested() && !draining_) begin_drain(now);
        check_control_connection();
        handle_control(now, now_us);
        handle_requests(now, now_us);
        if (now >= next_deadline_check_) {
            check_deadlines(now, now_us);
            next_deadline_check_ = now + check_interval;
        }
        if (now >= next_expiry_) {
            desk_.expire(now_us);
            next_expiry_ = now + kExpiryInterval;
        }
        apply(desk_.commit(now, now_us));
        for (const ServiceDesk::Reply& r : desk_.expire_waiters(now, now_us)) reply(r);
        if (session_.hello_due(now)) {
            send_control(Hello{desk_.batch(), session_.sink(), /*serve=*/true});
            session_.hello_sent(now);
        }
        if (session_.welcomed()) {
            dispatch(now, now_us);
            send_progress(now);
        }
        if (session_.gave_up(now)) {
            log_error("no word from the sink for " + seconds(session_.silence(now)) +
                      " (--sink-timeout); giving up");
            return kExitGaveUp;
        }
        if (draining_ && (ledger_.empty() || now >= drain_deadline_)) break;

        timeout = poll_timeout(Clock::now(), unix_micros());
        items = {
            {listen_.handle(), 0, ZMQ_POLLIN, 0},
            {control_.handle(), 0, ZMQ_POLLIN, 0},
            {control_monitor_.handle(), 0, ZMQ_POLLIN, 0},
            {nullptr, shutdown.fd(), ZMQ_POLLIN, 0},
        };
        if (session_.welcomed() && ledger_.sendable(Clock::now())) {
            items.push_back({tasks_.handle(), 0, ZMQ_POLLOUT, 0});
        }
        if (draining_) items.erase(items.begin() + 3);  // the signal was seen
        poll(items, std::chrono::ceil<std::chrono::milliseconds>(timeout));
    }

    // The sink may take the next head of this service at once.
    send_control(Bye{desk_.batch()});
    const std::size_t unfinished = desk_.queued() + desk_.delayed() + ledger_.size();
    log_info("stopped: " + std::to_string(desk_.accepted()) + " tasks accepted, " +
             std::to_string(ledger_.size()) + " still in flight, " + std::to_string(unfinished) +
             " unfinished" +
             (unfinished == 0          ? ""
              : options_.store.empty() ? " (lost: no --store)"
                                       : " (kept in " + options_.store + " for the next start)") +
             (replies_dropped_ > 0
                  ? "; " + std::to_string(replies_dropped_) +
                        " answers dropped (producers that did not read them, or were gone)"
                  : "") +
             (malformed_requests_.total() > 0 ? "; " + std::to_string(malformed_requests_.total()) +
                                                    " malformed requests dropped"
                                              : ""));
    return kExitOk;
}

}  // namespace taskpipe
