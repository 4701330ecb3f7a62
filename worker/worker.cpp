#include "worker.hpp"

#include <unistd.h>

#include <csignal>

#include <algorithm>
#include <chrono>
#include <system_error>

#include "taskpipe/log.hpp"
#include "taskpipe/message_io.hpp"
#include "taskpipe/overload.hpp"
#include "taskpipe/shutdown.hpp"
#include "taskpipe/sockets.hpp"
#include "taskpipe/wall_clock.hpp"

namespace taskpipe {

namespace {

// How often the capacity follows the completion rate: it is concurrency plus the tasks
// completed in the last period (at least concurrency), i.e. about one period of work.
constexpr auto kCapacityPeriod = std::chrono::milliseconds(100);

std::string host_name() {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0) return "unknown";
    return name;
}

SocketOptions task_socket_options(const std::optional<CurveKeys>& curve) {
    SocketOptions o;
    if (curve) o.curve = curve_client_socket(*curve);
    o.linger_ms = 0;  // tasks not taken are the ventilator's to re-send
    o.receive_hwm = 1000;
    o.max_message_size = static_cast<std::int64_t>(kMaxPayloadBytes) + 4096;
    return o;
}

SocketOptions result_socket_options(const std::optional<CurveKeys>& curve) {
    SocketOptions o;
    if (curve) o.curve = curve_client_socket(*curve);
    // Bounds the exit. Results still queued at exit are not lost: the ventilator re-sends
    // their tasks.
    o.linger_ms = 2000;
    o.send_hwm = 1000;
    return o;
}

}  // namespace

Worker::Worker(const WorkerOptions& options)
    : options_(options),
      host_(host_name()),
      pid_(static_cast<std::uint32_t>(getpid())),
      curve_(load_curve_keys(options.curve, kWorkerCurveRoles)),
      results_(connect_socket(context_, zmq::socket_type::push, result_socket_options(curve_),
                              options.sink)) {
    capacity_ = 2 * options_.concurrency;
    if (const auto* b = std::get_if<BuiltinHandler>(&options_.handler)) {
        builtin_ = find_builtin(b->name);
        if (!builtin_) throw StartupError("unknown built-in '" + b->name + "'");
    }
    tasks_.emplace(connect_socket(context_, zmq::socket_type::pull, task_socket_options(curve_),
                                  options.ventilator));
    watch_task_connection();
}

void Worker::watch_task_connection() {
    const std::string address = "inproc://taskpipe-worker-tasks-monitor";
    if (zmq_socket_monitor(tasks_->handle(), address.c_str(), ZMQ_EVENT_DISCONNECTED) != 0) {
        throw zmq::error_t();
    }
    tasks_monitor_.emplace(context_, zmq::socket_type::pair);
    tasks_monitor_->set(zmq::sockopt::linger, 0);
    tasks_monitor_->connect(address);
}

void Worker::reconnect_if_dropped() {
    zmq::message_t event;
    bool dropped = false;
    while (tasks_monitor_ && tasks_monitor_->recv(event, zmq::recv_flags::dontwait)) {
        (void)single_frame(*tasks_monitor_, event);  // the second frame names the endpoint
        dropped = true;
    }
    if (!dropped || !tasks_) return;
    try {
        tasks_->disconnect(options_.ventilator);
    } catch (const zmq::error_t&) {
        // Already gone: libzmq ended the session itself.
    }
    tasks_->connect(options_.ventilator);
    // Also what every worker sees when a batch ends and its ventilator exits: not a warning.
    log_info("the connection to the ventilator dropped; connecting again");
}

void Worker::close_task_socket() {
    if (tasks_) zmq_socket_monitor(tasks_->handle(), nullptr, 0);
    tasks_monitor_.reset();
    tasks_.reset();
}

void Worker::receive_tasks() {
    while (tasks_) {
        std::optional<Received<TasksMessage>> received = recv_message<TasksMessage>(*tasks_);
        if (!received) break;
        if (!received->message) {
            malformed_.count("dropped a malformed task message: " + received->error);
            continue;
        }
        std::visit(Overload{[&](Task& task) {
                       if (held() >= capacity_) {
                           releasing_.push_back({task.batch, task.id});
                       } else {
                           queue_.push_back(Held{std::move(task), 0, {}});
                       }
                   }},
                   *received->message);
    }
    flush_releases();
}

void Worker::flush_releases() {
    for (std::size_t from = 0; from < releasing_.size(); from += kMaxIdsPerMessage) {
        const std::size_t to = std::min(releasing_.size(), from + kMaxIdsPerMessage);
        WorkerRelease release;
        release.tasks.assign(releasing_.begin() + static_cast<std::ptrdiff_t>(from),
                             releasing_.begin() + static_cast<std::ptrdiff_t>(to));
        // If the sink cannot take it now, the tasks come back after the liveness timeout.
        (void)send_message<ResultsMessage>(results_, encoder_, release);
    }
    releasing_.clear();
}

void Worker::update_capacity(Clock::time_point now) {
    if (now < next_capacity_update_) return;
    const std::uint64_t recent = completed_ - completed_at_last_update_;
    completed_at_last_update_ = completed_;
    next_capacity_update_ = now + kCapacityPeriod;
    const std::uint64_t target =
        options_.concurrency + std::max<std::uint64_t>(options_.concurrency, recent);
    capacity_ = static_cast<std::uint32_t>(std::min<std::uint64_t>(target, 1'000'000));
    // A large change is announced at once rather than at the next heartbeat.
    if (capacity_ > announced_capacity_ * 3 / 2 + 1 || capacity_ < announced_capacity_ * 2 / 3) {
        next_heartbeat_ = now;
    }
}

Result Worker::make_result(const Running& running) const {
    Result r;
    r.batch = running.held.task.batch;
    r.id = running.held.task.id;
    r.attempt = running.held.task.attempt;
    r.host = host_;
    r.pid = pid_;
    r.started_us = running.started_us;
    r.sent_us = running.held.task.sent_us;
    if (running.held.task.echo_input) r.input = running.held.task.payload;
    r.duration_us = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - running.started)
            .count());
    return r;
}

void Worker::start(Held held) {
    auto running = std::make_unique<Running>();
    running->held = std::move(held);
    running->started = Clock::now();
    running->started_us = unix_micros();
    const std::string& payload = running->held.task.payload;
    if (log_enabled(LogLevel::debug)) {
        log_debug("task " + std::to_string(running->held.task.id) + " started (attempt " +
                  std::to_string(running->held.task.attempt) + ")");
    }

    if (builtin_) {
        BuiltinOutcome outcome = (*builtin_)(payload);
        if (outcome.delay.count() > 0) {
            running->due = running->started + outcome.delay;
            running->outcome = std::move(outcome);
            running_.push_back(std::move(running));
            return;
        }
        Result result = make_result(*running);
        result.status = outcome.status;
        result.exit_code = outcome.exit_code;
        result.out = std::move(outcome.out);
        result.err = std::move(outcome.err);
        complete(running->held, result);
        return;
    }

    try {
        std::vector<std::string> argv = std::visit(
            [&](const auto& h) -> std::vector<std::string> {
                using H = std::decay_t<decltype(h)>;
                if constexpr (std::is_same_v<H, BuiltinHandler>) {
                    return {};
                } else {
                    return build_argv(h, payload, running->held.task.id);
                }
            },
            options_.handler);
        running->child.emplace(argv, options_.max_output, options_.stderr_tail);
        if (options_.timeout.count() > 0) running->deadline = running->started + options_.timeout;
        running_.push_back(std::move(running));
    } catch (const std::exception& e) {
        Result result = make_result(*running);
        result.status = Status::error;
        result.exit_code.reset();
        result.err = std::string(e.what()) + "\n";
        complete(running->held, result);
    }
}

void Worker::start_tasks() {
    const auto now = Clock::now();
    for (auto it = waiting_.begin(); it != waiting_.end();) {
        if (it->not_before <= now) {
            queue_.push_front(std::move(*it));
            it = waiting_.erase(it);
        } else {
            ++it;
        }
    }
    while (!queue_.empty() && running_.size() < options_.concurrency) {
        Held held = std::move(queue_.front());
        queue_.pop_front();
        start(std::move(held));
    }
}

void Worker::complete(Held& held, Result& result) {
    const bool retryable = result.status == Status::failed || result.status == Status::timeout;
    if (retryable && held.runs < options_.retries && !draining_) {
        const auto delay = std::min<std::chrono::milliseconds>(
            options_.retry_delay * (1LL << std::min(held.runs, 16u)), std::chrono::seconds(60));
        ++held.runs;
        log_info("task " + std::to_string(held.task.id) + " " + to_string(result.status) +
                 ", run " + std::to_string(held.runs + 1) + " of " +
                 std::to_string(options_.retries + 1) + " in " + std::to_string(delay.count()) +
                 " ms");
        held.not_before = Clock::now() + delay;
        waiting_.push_back(std::move(held));
        return;
    }
    ++completed_;
    if (result.status != Status::ok) ++failed_;
    if (log_enabled(LogLevel::debug)) {
        log_debug("task " + std::to_string(held.task.id) + " " + to_string(result.status) +
                  " after " + std::to_string(result.duration_us / 1000) + " ms");
    }
    send_result(result);
}

void Worker::enforce_time_limits(Clock::time_point now) {
    for (const auto& r : running_) {
        if (!r->child) continue;
        if (!r->timed_out && now >= r->deadline) {
            r->timed_out = true;
            r->child->kill_group(SIGTERM);
            r->kill_at = now + options_.kill_grace;
        } else if (r->timed_out && now >= r->kill_at) {
            r->child->kill_group(SIGKILL);
            r->kill_at = Clock::time_point::max();
        }
    }
}

// Completes `running` if its result is ready; returns true when it did.
bool Worker::try_finish(Running& r, bool exited, Clock::time_point now) {
    if (r.child) {
        if (!exited) return false;
        ExitStatus status = r.child->finish(/*kill_leftovers=*/r.timed_out);
        Result result = make_result(r);
        result.exit_code = status.exit_code;
        result.signal = status.signal;
        if (r.timed_out) {
            result.status = Status::timeout;
        } else {
            result.status = status.exit_code == 0 ? Status::ok : Status::failed;
        }
        result.out = std::move(r.child->out());
        result.out_truncated = r.child->out_truncated();
        result.err = r.child->err();
        if (r.timed_out) {
            result.err += "taskpipe: killed after the time limit of " +
                          std::to_string(options_.timeout.count()) + " ms\n";
        }
        complete(r.held, result);
        return true;
    }
    if (r.due > now) return false;
    Result result = make_result(r);
    result.status = r.outcome.status;
    result.exit_code = r.outcome.exit_code;
    result.out = std::move(r.outcome.out);
    result.err = std::move(r.outcome.err);
    complete(r.held, result);
    return true;
}

void Worker::send_result(const Result& result) {
    if (outbox_.empty() && send_message<ResultsMessage>(results_, encoder_, result)) return;
    outbox_.emplace_back(encoder_.encode(result));  // encoded again: rare, the sink is slow
}

void Worker::flush_outbox() {
    while (!outbox_.empty()) {
        const std::string& bytes = outbox_.front();
        if (!results_.send(zmq::buffer(bytes.data(), bytes.size()), zmq::send_flags::dontwait)) {
            return;
        }
        outbox_.pop_front();
    }
}

void Worker::send_heartbeat() {
    Heartbeat beat;
    beat.host = host_;
    beat.pid = pid_;
    beat.concurrency = options_.concurrency;
    beat.capacity = draining_ ? 0 : capacity_;
    announced_capacity_ = beat.capacity;
    beat.draining = draining_;
    bool sent = false;
    auto flush = [&] {
        // A heartbeat is worth sending only now; if the sink's queue is full, skip it.
        (void)send_message<ResultsMessage>(results_, encoder_, beat);
        beat.tasks.clear();
        sent = true;
    };
    auto add = [&](const Task& t) {
        beat.tasks.push_back({t.batch, t.id});
        if (beat.tasks.size() == kMaxIdsPerMessage) flush();
    };
    for (const auto& r : running_) add(r->held.task);
    for (const Held& h : queue_) add(h.task);
    for (const Held& h : waiting_) add(h.task);
    if (!beat.tasks.empty() || !sent) flush();
}

void Worker::begin_drain() {
    draining_ = true;
    capacity_ = 0;    // whatever is still in the socket is released as it is taken
    receive_tasks();  // (tasks in flight after this come back through the liveness timeout)
    close_task_socket();
    const std::size_t handed_back = queue_.size() + waiting_.size();
    for (const Held& h : queue_) releasing_.push_back({h.task.batch, h.task.id});
    for (const Held& h : waiting_) releasing_.push_back({h.task.batch, h.task.id});
    queue_.clear();
    waiting_.clear();
    flush_releases();
    log_info("shutting down: finishing " + std::to_string(running_.size()) +
             " running tasks, handed back " + std::to_string(handed_back) + " queued");
    send_heartbeat();  // tells the sink at once which tasks this worker still holds
}

Worker::Clock::time_point Worker::next_wake() const {
    Clock::time_point wake = std::min(next_heartbeat_, next_capacity_update_);
    for (const auto& r : running_) {
        if (!r->child) {
            wake = std::min(wake, r->due);
        } else {
            wake = std::min(wake, r->timed_out ? r->kill_at : r->deadline);
        }
    }
    for (const Held& h : waiting_) wake = std::min(wake, h.not_before);
    return wake;
}

int Worker::run() {
    ShutdownSignal& shutdown = ShutdownSignal::install();
    shutdown.set_immediate_exit_hook(kill_all_children);
    next_heartbeat_ = Clock::now();
    next_capacity_update_ = Clock::now() + kCapacityPeriod;
    std::vector<zmq::pollitem_t> items;
    std::vector<bool> exited;

    while (true) {
        if (shutdown.requested() && !draining_) begin_drain();
        receive_tasks();
        start_tasks();
        flush_outbox();
        auto now = Clock::now();
        update_capacity(now);
        if (now >= next_heartbeat_) {
            send_heartbeat();
            next_heartbeat_ = now + options_.heartbeat_interval;
        }
        if (draining_ && running_.empty()) break;
        reconnect_if_dropped();

        items.clear();
        if (!draining_) items.push_back({nullptr, shutdown.fd(), ZMQ_POLLIN, 0});
        // Always taken at once, so that the next heartbeat names every task held here.
        if (tasks_) items.push_back({tasks_->handle(), 0, ZMQ_POLLIN, 0});
        if (tasks_monitor_) items.push_back({tasks_monitor_->handle(), 0, ZMQ_POLLIN, 0});
        if (!outbox_.empty()) items.push_back({results_.handle(), 0, ZMQ_POLLOUT, 0});
        const std::size_t first_child_item = items.size();
        for (const auto& r : running_) {
            if (!r->child) continue;
            items.push_back({nullptr, r->child->stdout_fd(), ZMQ_POLLIN, 0});
            items.push_back({nullptr, r->child->stderr_fd(), ZMQ_POLLIN, 0});
            items.push_back({nullptr, r->child->exit_fd(), ZMQ_POLLIN, 0});
        }
        const auto timeout = std::chrono::ceil<std::chrono::milliseconds>(
            std::max(Clock::duration::zero(), next_wake() - Clock::now()));
        poll(items, timeout);

        // running_ has not changed since the items were built: child i is at item 3i.
        exited.assign(running_.size(), false);
        std::size_t item = first_child_item;
        for (std::size_t i = 0; i < running_.size(); ++i) {
            ChildProcess* child = running_[i]->child ? &*running_[i]->child : nullptr;
            if (child == nullptr) continue;
            constexpr short kReadable = ZMQ_POLLIN | ZMQ_POLLERR;
            if (items[item].revents & kReadable) child->read_stdout();
            if (items[item + 1].revents & kReadable) child->read_stderr();
            exited[i] = (items[item + 2].revents & ZMQ_POLLIN) != 0;
            item += 3;
        }
        now = Clock::now();
        enforce_time_limits(now);
        std::size_t kept = 0;
        for (std::size_t i = 0; i < running_.size(); ++i) {
            if (!try_finish(*running_[i], exited[i], now)) {
                running_[kept++] = std::move(running_[i]);
            }
        }
        running_.resize(kept);
    }
    flush_outbox();
    log_info("stopped after " + std::to_string(completed_) + " tasks (" + std::to_string(failed_) +
             " not ok)" +
             (outbox_.empty() ? ""
                              : "; " + std::to_string(outbox_.size()) +
                                    " results could not be handed to the sink"));
    return kExitOk;
}

}  // namespace taskpipe
