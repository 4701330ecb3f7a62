#include "worker.hpp"

#include <poll.h>
#include <unistd.h>

#include <csignal>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <system_error>

#include "builtin_job.hpp"
#include "taskpipe/log.hpp"
#include "taskpipe/message_io.hpp"
#include "taskpipe/overload.hpp"
#include "taskpipe/shutdown.hpp"
#include "taskpipe/sockets.hpp"
#include "taskpipe/wall_clock.hpp"

namespace taskpipe {

namespace {

// Results wait up to this long while other tasks run, so that a busy worker hands them to the
// sink in groups: one wake-up of ZeroMQ's I/O threads, of the sink and of the ventilator for
// several tasks. A result is sent at once when nothing else runs.
constexpr auto kResultBatch = std::chrono::milliseconds(5);

// A `results` frame is sealed at this many bytes of outputs and inputs, well under the sink's
// frame limit (kMaxResultFrame); a single larger result goes in a frame of its own as well.
constexpr std::size_t kGroupBytes = 1u << 20;
// The most tasks a worker asks for in one `tasks` frame: a quarter of its capacity (so that a
// frame never holds more than a fair share of the work), at most this many.
constexpr std::uint32_t kGroupMax = 256;

std::string host_name() {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0) return "unknown";
    return name;
}

// How often a socket tries to connect while its peer is not there, with no back-off. A
// worker is usually up before the batch's ventilator (and often before its sink): the first
// task reaches it within about one interval (10 to 20 ms, libzmq adding up to one interval of
// jitter) of the ventilator binding, not after libzmq's back-off of up to 2 s.
constexpr int kReconnectMs = 10;

SocketOptions task_socket_options(const std::optional<CurveKeys>& curve) {
    SocketOptions o;
    o.reconnect_interval_ms = kReconnectMs;
    o.reconnect_interval_max_ms = 0;
    if (curve) o.curve = curve_client_socket(*curve);
    o.linger_ms = 0;  // tasks not taken are the ventilator's to re-send
    o.receive_hwm = 1000;
    o.max_message_size = static_cast<std::int64_t>(kMaxPayloadBytes) + 4096;
    return o;
}

SocketOptions result_socket_options(const std::optional<CurveKeys>& curve) {
    SocketOptions o;
    o.reconnect_interval_ms = kReconnectMs;  // a new sink for each batch
    o.reconnect_interval_max_ms = 0;
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
    capacity_ = pace_.value();
    command_limits_.max_stdout = options_.max_output;
    command_limits_.stderr_tail = options_.stderr_tail;
    command_limits_.timeout = options_.timeout;
    command_limits_.kill_grace = options_.kill_grace;
    command_limits_.kill_leftovers = options_.kill_leftovers;
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
    const int events = ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CONNECT_RETRIED;
    if (zmq_socket_monitor(tasks_->handle(), address.c_str(), events) != 0) {
        throw zmq::error_t();
    }
    tasks_monitor_.emplace(context_, zmq::socket_type::pair);
    tasks_monitor_->set(zmq::sockopt::linger, 0);
    // Read once a heartbeat; libzmq must never wait on it (tries come every kReconnectMs while
    // the ventilator is away).
    tasks_monitor_->set(zmq::sockopt::rcvhwm, 0);
    tasks_monitor_->connect(address);
}

// libzmq connects again by itself after a connection error, reporting each try, but not after
// a protocol error such as a frame over ZMQ_MAXMSGSIZE (libzmq #4196): that session just ends.
// A drop followed by a whole heartbeat interval of silence is that case, and the worker then
// connects again itself. Doing so while libzmq also is would tear down the connection libzmq
// has just made, and the tasks already in it.
void Worker::reconnect_if_abandoned(Clock::time_point now) {
    if (!tasks_monitor_ || !tasks_) return;
    zmq::message_t event;
    while (tasks_monitor_->recv(event, zmq::recv_flags::dontwait)) {
        std::uint16_t id = 0;
        if (event.size() >= sizeof id) std::memcpy(&id, event.data(), sizeof id);
        (void)single_frame(*tasks_monitor_, event);  // the second frame names the endpoint
        if (id == ZMQ_EVENT_DISCONNECTED) {
            dropped_at_ = now;
        } else {
            dropped_at_.reset();
        }
    }
    if (!dropped_at_ || now - *dropped_at_ < options_.heartbeat_interval) return;
    dropped_at_.reset();
    try {
        tasks_->disconnect(options_.ventilator);
    } catch (const zmq::error_t&) {
        // Already gone: libzmq ended the session itself.
    }
    tasks_->connect(options_.ventilator);
    log_info(
        "the connection to the ventilator was dropped and not taken up again; connecting again");
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
        std::visit(Overload{[&](Task& task) { take(task, /*grouped=*/false); },
                            [&](TaskGroup& group) {
                                for (Task& task : group.tasks.items) take(task, /*grouped=*/true);
                                for (const std::string& why : group.tasks.refusals) {
                                    malformed_.count("dropped a malformed task of a group: " + why);
                                }
                            }},
                   *received->message);
    }
    flush_releases();
}

void Worker::take(Task& task, bool grouped) {
    if (held() >= capacity_) {
        releasing_.push_back({task.batch, task.id});
        return;
    }
    if (held() == 0 && phase_ == Phase::running) pace_.busy(Clock::now());
    queue_.push_back(Held{std::move(task), 0, {}, grouped});
}

// Groups only of 2 or more: a group of 1 buys nothing, and holds results back for a group.
std::uint32_t Worker::group_max() const {
    const std::uint32_t quarter = std::min(kGroupMax, capacity_ / 4);
    return quarter >= 2 ? quarter : 0;
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
    if (phase_ != Phase::running || !pace_.update(now)) return;
    capacity_ = pace_.value();
    // A large change is announced at once rather than at the next heartbeat.
    if (capacity_ > announced_capacity_ * 3 / 2 + 1 || capacity_ < announced_capacity_ * 2 / 3) {
        next_heartbeat_ = now;
    }
}

Result Worker::make_result(const Held& held, Clock::time_point started,
                           std::uint64_t started_us) const {
    Result r;
    r.batch = held.task.batch;
    r.id = held.task.id;
    r.attempt = held.task.attempt;
    r.host = host_;
    r.pid = pid_;
    r.started_us = started_us;
    r.sent_us = held.task.sent_us;
    if (held.task.echo_input) r.input = held.task.payload;
    r.duration_us = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count());
    return r;
}

std::unique_ptr<Job> Worker::make_job(const Task& task, Clock::time_point now) const {
    const std::string_view payload = task.payload;
    return std::visit(
        [&](const auto& handler) -> std::unique_ptr<Job> {
            using H = std::decay_t<decltype(handler)>;
            if constexpr (std::is_same_v<H, BuiltinHandler>) {
                return std::make_unique<BuiltinJob>(*builtin_, payload, now);
            } else {
                return std::make_unique<CommandJob>(build_argv(handler, payload, task.id),
                                                    command_limits_, now);
            }
        },
        options_.handler);
}

void Worker::start(Held held) {
    Running running;
    running.held = std::move(held);
    running.started = Clock::now();
    running.started_us = unix_micros();
    const Task& task = running.held.task;
    if (log_enabled(LogLevel::debug)) {
        log_debug("task " + std::to_string(task.id) + " started (attempt " +
                  std::to_string(task.attempt) + ")");
    }
    try {
        running.job = make_job(task, running.started);
    } catch (const std::exception& e) {
        JobOutcome outcome;
        outcome.status = Status::error;
        outcome.err = std::string(e.what()) + "\n";
        complete(running, std::move(outcome));
        return;
    }
    // A job may be done at once (most built-ins).
    if (auto outcome = running.job->step({}, running.started)) {
        complete(running, std::move(*outcome));
        return;
    }
    running_.push_back(std::move(running));
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

void Worker::complete(Running& running, JobOutcome outcome) {
    Result result = make_result(running.held, running.started, running.started_us);
    result.status = outcome.status;
    result.exit_code = outcome.exit_code;
    result.signal = outcome.signal;
    result.out = std::move(outcome.out);
    result.out_truncated = outcome.out_truncated;
    result.err = std::move(outcome.err);
    complete(running.held, result);
}

void Worker::complete(Held& held, Result& result) {
    const bool retryable = result.status == Status::failed || result.status == Status::timeout;
    if (retryable && held.runs < options_.retries && phase_ == Phase::running) {
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
    pace_.task_completed();
    if (result.status != Status::ok) ++failed_;
    if (log_enabled(LogLevel::debug)) {
        log_debug("task " + std::to_string(held.task.id) + " " + to_string(result.status) +
                  " after " + std::to_string(result.duration_us / 1000) + " ms");
    }
    send_result(result, held.grouped);
}

// A result of a task that came in a group joins group_; the others, and a result too large to
// share a frame, are encoded at once.
void Worker::send_result(Result& result, bool grouped) {
    if (!unsent()) first_unsent_ = Clock::now();
    const std::size_t bytes =
        result.out.size() + result.err.size() + (result.input ? result.input->size() : 0);
    if (!grouped || bytes >= kGroupBytes) {
        outbox_.emplace_back(encoder_.encode(result));
        return;
    }
    if (group_bytes_ + bytes > kGroupBytes) seal_group();
    group_bytes_ += bytes;
    group_.results.items.push_back(std::move(result));
    if (group_.results.items.size() == kMaxGroupItems) seal_group();
}

void Worker::seal_group() {
    std::vector<Result>& items = group_.results.items;
    if (items.size() == 1) {
        outbox_.emplace_back(encoder_.encode(items.front()));
    } else if (!items.empty()) {
        outbox_.emplace_back(encoder_.encode(group_));
    }
    items.clear();
    group_bytes_ = 0;
}

void Worker::flush_outbox(bool now_or_never) {
    if (!unsent()) return;
    if (!now_or_never && !sink_full_ && !running_.empty() && phase_ == Phase::running &&
        Clock::now() - first_unsent_ < kResultBatch) {
        return;
    }
    seal_group();
    while (!outbox_.empty()) {
        const std::string& bytes = outbox_.front();
        if (!results_.send(zmq::buffer(bytes.data(), bytes.size()), zmq::send_flags::dontwait)) {
            sink_full_ = true;
            return;
        }
        outbox_.pop_front();
    }
    sink_full_ = false;
}

void Worker::send_heartbeat() {
    Heartbeat beat;
    beat.host = host_;
    beat.pid = pid_;
    beat.concurrency = options_.concurrency;
    const bool draining = phase_ != Phase::running;
    beat.capacity = draining ? 0 : capacity_;
    announced_capacity_ = beat.capacity;
    beat.draining = draining;
    beat.group_max = draining ? 0 : group_max();
    // Every message says which of its tasks have started (`running`): the others are queued
    // here, and are sent elsewhere without counting an attempt if this worker goes silent.
    beat.running.emplace();
    bool sent = false;
    auto flush = [&] {
        // A heartbeat is worth sending only now; if the sink's queue is full, skip it.
        (void)send_message<ResultsMessage>(results_, encoder_, beat);
        beat.tasks.clear();
        beat.running->clear();
        sent = true;
    };
    auto add = [&](const Task& t, bool running) {
        beat.tasks.push_back({t.batch, t.id});
        if (running) beat.running->push_back({t.batch, t.id});
        if (beat.tasks.size() == kMaxIdsPerMessage) flush();
    };
    for (const Running& r : running_) add(r.held.task, true);
    for (const Held& h : queue_) add(h.task, false);
    for (const Held& h : waiting_) add(h.task, false);
    if (!beat.tasks.empty() || !sent) flush();
}

void Worker::enter(Phase next) {
    if (phase_ == Phase::running && next != Phase::running) begin_drain();
    phase_ = next;
}

void Worker::begin_drain() {
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
    phase_ = Phase::draining;
    send_heartbeat();  // tells the sink at once which tasks this worker still holds
}

Worker::Clock::time_point Worker::next_wake() const {
    Clock::time_point wake = std::min(next_heartbeat_, pace_.next_update());
    for (const Running& r : running_) wake = std::min(wake, r.job->wake_at());
    for (const Held& h : waiting_) wake = std::min(wake, h.not_before);
    if (unsent() && !sink_full_) wake = std::min(wake, first_unsent_ + kResultBatch);
    return wake;
}

bool Worker::must_wake_for_tasks() const {
    return running_.size() < options_.concurrency || held() >= capacity_;
}

// The loop polls plain descriptors: its own, the jobs', and the ZMQ_FD of each ZeroMQ socket it
// waits on. ZMQ_FD only says that libzmq has commands to process, and stays quiet while
// unprocessed ones are pending, so before sleeping on a socket's ZMQ_FD the loop asks for its
// ZMQ_EVENTS (which processes them), and it reads every socket it reads until EAGAIN. This is
// what zmq_poll does, less its second pass over every socket after each wake-up.
int Worker::run() {
    ShutdownSignal& shutdown = ShutdownSignal::install();
    shutdown.set_immediate_exit_hook(kill_all_children);
    next_heartbeat_ = Clock::now();
    std::vector<pollfd> fds;
    std::vector<std::size_t> watched;  // how many entries each running job appended
    const int results_fd = results_.get(zmq::sockopt::fd);

    while (true) {
        const Phase next = next_phase(phase_, shutdown.requested(), running_.size());
        if (next != phase_) enter(next);
        if (phase_ == Phase::done) break;
        receive_tasks();
        start_tasks();
        flush_outbox();
        auto now = Clock::now();
        update_capacity(now);
        if (now >= next_heartbeat_) {
            reconnect_if_abandoned(now);
            send_heartbeat();
            next_heartbeat_ = now + options_.heartbeat_interval;
        }

        fds.clear();
        bool ready_now = false;
        if (phase_ == Phase::running) fds.push_back({shutdown.fd(), POLLIN, 0});
        // A task that arrives while every slot is busy and the worker holds less than its
        // capacity only joins the queue: it is taken at the next wake-up (a task ending, the
        // heartbeat, which takes tasks before naming those it holds), one wake-up fewer per task.
        if (tasks_ && must_wake_for_tasks()) {
            ready_now |= (tasks_->get(zmq::sockopt::events) & ZMQ_POLLIN) != 0;
            fds.push_back({tasks_->get(zmq::sockopt::fd), POLLIN, 0});
        }
        if (sink_full_) {
            ready_now |= (results_.get(zmq::sockopt::events) & ZMQ_POLLOUT) != 0;
            fds.push_back({results_fd, POLLIN, 0});
        }
        const std::size_t first_job_item = fds.size();
        watched.clear();
        for (const Running& r : running_) watched.push_back(r.job->watch(fds));
        const auto timeout = ready_now ? std::chrono::milliseconds(0)
                                       : std::chrono::ceil<std::chrono::milliseconds>(std::max(
                                             Clock::duration::zero(), next_wake() - Clock::now()));
        if (::poll(fds.data(), fds.size(), static_cast<int>(timeout.count())) < 0) {
            if (errno != EINTR) throw std::system_error(errno, std::generic_category(), "poll");
            for (pollfd& p : fds) p.revents = 0;  // a signal: the loop looks at the flag
        }

        // running_ has not changed since fds was built: job i's entries follow job i-1's.
        now = Clock::now();
        std::size_t item = first_job_item;
        std::size_t kept = 0;
        for (std::size_t i = 0; i < running_.size(); ++i) {
            const std::span<const pollfd> ready(fds.data() + item, watched[i]);
            item += watched[i];
            if (auto outcome = running_[i].job->step(ready, now)) {
                complete(running_[i], std::move(*outcome));
            } else {
                if (kept != i) running_[kept] = std::move(running_[i]);
                ++kept;
            }
        }
        running_.resize(kept);
        if (held() == 0) pace_.idle(now);
    }
    flush_outbox(true);
    log_info("stopped after " + std::to_string(completed_) + " tasks (" + std::to_string(failed_) +
             " not ok)" +
             (malformed_.total() == 0
                  ? ""
                  : ", " + std::to_string(malformed_.total()) + " malformed messages dropped") +
             (outbox_.empty() ? ""
                              : "; " + std::to_string(outbox_.size()) +
                                    " results could not be handed to the sink"));
    return kExitOk;
}

}  // namespace taskpipe
