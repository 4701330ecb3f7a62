#include "worker.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <system_error>

#include "taskpipe/log.hpp"
#include "taskpipe/shutdown.hpp"
#include "taskpipe/sockets.hpp"

namespace taskpipe {

namespace {

constexpr std::uint64_t kMalformedLogged = 10;

std::string host_name() {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0) return "unknown";
    return name;
}

std::uint64_t unix_micros() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

SocketOptions task_socket_options() {
    SocketOptions o;
    o.linger_ms = 0;  // tasks not taken are the ventilator's to re-send
    o.receive_hwm = 1000;
    o.max_message_size = static_cast<std::int64_t>(kMaxPayloadBytes) + 4096;
    return o;
}

SocketOptions result_socket_options() {
    SocketOptions o;
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
      results_(
          connect_socket(context_, zmq::socket_type::push, result_socket_options(), options.sink)) {
    if (const auto* b = std::get_if<BuiltinHandler>(&options_.handler)) {
        builtin_ = find_builtin(b->name);
        if (!builtin_) throw StartupError("unknown built-in '" + b->name + "'");
    }
    tasks_.emplace(connect_socket(context_, zmq::socket_type::pull, task_socket_options(),
                                  options.ventilator));
}

void Worker::receive_tasks() {
    zmq::message_t frame;
    while (tasks_ && tasks_->recv(frame, zmq::recv_flags::dontwait)) {
        DecodeResult decoded = decode(std::string_view(frame.data<char>(), frame.size()));
        Task* task = decoded.message ? std::get_if<Task>(&*decoded.message) : nullptr;
        if (task == nullptr) {
            if (++malformed_ <= kMalformedLogged) {
                log_warning("dropped a malformed task message: " +
                            (decoded.message ? std::string("not a task") : decoded.error));
            }
            continue;
        }
        queue_.push_back(std::move(*task));
    }
}

Result Worker::make_result(const Running& running) const {
    Result r;
    r.batch = running.task.batch;
    r.id = running.task.id;
    r.attempt = running.task.attempt;
    r.host = host_;
    r.pid = pid_;
    r.started_us = running.started_us;
    r.duration_us = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - running.started)
            .count());
    return r;
}

void Worker::start(Task task) {
    auto running = std::make_unique<Running>();
    running->task = std::move(task);
    running->started = Clock::now();
    running->started_us = unix_micros();

    if (builtin_) {
        BuiltinOutcome outcome = (*builtin_)(running->task.payload);
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
        complete(result);
        return;
    }

    try {
        std::vector<std::string> argv = std::visit(
            [&](const auto& h) -> std::vector<std::string> {
                using H = std::decay_t<decltype(h)>;
                if constexpr (std::is_same_v<H, BuiltinHandler>)
                    return {};
                else
                    return build_argv(h, running->task.payload);
            },
            options_.handler);
        running->child.emplace(argv, options_.max_output, options_.stderr_tail);
        running_.push_back(std::move(running));
    } catch (const std::exception& e) {
        Result result = make_result(*running);
        result.status = Status::error;
        result.err = std::string(e.what()) + "\n";
        complete(result);
    }
}

void Worker::start_tasks() {
    while (!queue_.empty() && running_.size() < options_.concurrency) {
        Task task = std::move(queue_.front());
        queue_.pop_front();
        start(std::move(task));
    }
}

void Worker::complete(const Result& result) {
    ++completed_;
    if (result.status != Status::ok) ++failed_;
    send_result(result);
}

void Worker::finish_child(Running& running) {
    ExitStatus status = running.child->finish();
    Result result = make_result(running);
    result.exit_code = status.exit_code;
    result.signal = status.signal;
    result.status = status.exit_code == 0 ? Status::ok : Status::failed;
    result.out = std::move(running.child->out());
    result.out_truncated = running.child->out_truncated();
    result.err = running.child->err();
    complete(result);
}

void Worker::send_result(const Result& result) {
    const auto bytes = encoder_.encode(result);
    if (outbox_.empty() &&
        results_.send(zmq::buffer(bytes.data(), bytes.size()), zmq::send_flags::dontwait)) {
        return;
    }
    outbox_.emplace_back(bytes);
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
    beat.draining = draining_;
    auto flush = [&] {
        const auto bytes = encoder_.encode(beat);
        // A heartbeat is worth sending only now; if the sink's queue is full, skip it.
        (void)results_.send(zmq::buffer(bytes.data(), bytes.size()), zmq::send_flags::dontwait);
        beat.tasks.clear();
    };
    auto add = [&](const Task& t) {
        beat.tasks.push_back({t.batch, t.id});
        if (beat.tasks.size() == kMaxIdsPerMessage) flush();
    };
    for (const auto& r : running_) add(r->task);
    for (const Task& t : queue_) add(t);
    if (!beat.tasks.empty() || (running_.empty() && queue_.empty())) flush();
}

void Worker::begin_drain() {
    draining_ = true;
    tasks_.reset();  // no new tasks; what was queued in the socket goes back via re-send
    log_info("shutting down: finishing " + std::to_string(running_.size()) +
             " running tasks, handing back " + std::to_string(queue_.size()) + " queued");
    queue_.clear();
    send_heartbeat();  // tells the sink at once which tasks this worker still holds
}

int Worker::run() {
    ShutdownSignal& shutdown = ShutdownSignal::install();
    next_heartbeat_ = Clock::now();
    std::vector<zmq::pollitem_t> items;
    std::vector<Running*> polled;  // running_[i] behind each child item, in order

    while (true) {
        if (shutdown.requested() && !draining_) begin_drain();
        receive_tasks();
        start_tasks();
        flush_outbox();
        auto now = Clock::now();
        if (now >= next_heartbeat_) {
            send_heartbeat();
            next_heartbeat_ = now + options_.heartbeat_interval;
        }
        if (draining_ && running_.empty()) break;

        Clock::time_point wake = next_heartbeat_;
        items.clear();
        polled.clear();
        if (!draining_) items.push_back({nullptr, shutdown.fd(), ZMQ_POLLIN, 0});
        // Always taken at once, so that the next heartbeat names every task held here.
        if (tasks_) items.push_back({tasks_->handle(), 0, ZMQ_POLLIN, 0});
        if (!outbox_.empty()) items.push_back({results_.handle(), 0, ZMQ_POLLOUT, 0});
        const std::size_t first_child_item = items.size();
        for (const auto& r : running_) {
            if (r->child) {
                items.push_back({nullptr, r->child->stdout_fd(), ZMQ_POLLIN, 0});
                items.push_back({nullptr, r->child->stderr_fd(), ZMQ_POLLIN, 0});
                items.push_back({nullptr, r->child->exit_fd(), ZMQ_POLLIN, 0});
                polled.push_back(r.get());
            } else {
                wake = std::min(wake, r->due);
            }
        }
        now = Clock::now();
        const auto timeout = std::chrono::ceil<std::chrono::milliseconds>(
            std::max(Clock::duration::zero(), wake - now));
        poll(items, timeout);

        for (std::size_t i = 0; i < polled.size(); ++i) {
            const zmq::pollitem_t* item = &items[first_child_item + 3 * i];
            if (item[0].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) polled[i]->child->read_stdout();
            if (item[1].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) polled[i]->child->read_stderr();
        }
        now = Clock::now();
        for (std::size_t i = 0; i < running_.size();) {
            Running& r = *running_[i];
            bool done = false;
            if (r.child) {
                auto it = std::find(polled.begin(), polled.end(), &r);
                if (it != polled.end()) {
                    const auto index = static_cast<std::size_t>(it - polled.begin());
                    done = (items[first_child_item + 3 * index + 2].revents & ZMQ_POLLIN) != 0;
                }
                if (done) finish_child(r);
            } else if (r.due <= now) {
                Result result = make_result(r);
                result.status = r.outcome.status;
                result.exit_code = r.outcome.exit_code;
                result.out = std::move(r.outcome.out);
                result.err = std::move(r.outcome.err);
                complete(result);
                done = true;
            }
            if (done) {
                running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(i));
            } else {
                ++i;
            }
        }
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
