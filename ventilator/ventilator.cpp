#include "ventilator.hpp"

#include <algorithm>
#include <random>
#include <string>

#include "taskpipe/joblog_format.hpp"
#include "taskpipe/log.hpp"
#include "taskpipe/shutdown.hpp"
#include "taskpipe/sockets.hpp"
#include "taskpipe/wall_clock.hpp"

namespace taskpipe {

namespace {

constexpr auto kHelloInterval = std::chrono::seconds(1);
constexpr auto kWaitingNotice = std::chrono::seconds(3);
constexpr auto kProgressInterval = std::chrono::seconds(1);
// A released task waits this long before it is sent again, so that while the capacity the sink
// reported is out of date (a worker just died) released tasks do not bounce at full speed.
constexpr auto kReleaseDelay = std::chrono::milliseconds(20);
// How much of an input an error message quotes.
constexpr std::size_t kQuotedInputBytes = 60;

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

std::uint64_t random_batch_id() {
    std::random_device device;
    std::uint64_t id = 0;
    while (id == 0) id = (std::uint64_t{device()} << 32) ^ device();
    return id;
}

SocketOptions task_socket_options(const std::optional<CurveKeys>& curve,
                                  std::chrono::milliseconds liveness_timeout) {
    SocketOptions o;
    if (curve) o.curve = curve_server_socket(*curve, "tasks");
    o.name = "tasks";
    o.linger_ms = 0;  // unsent tasks are in the ledger; nothing to wait for at exit
    o.send_hwm = 1000;
    // A worker that stopped answering ZMTP pings (stopped, cut off) must be disconnected
    // before its tasks are re-sent, or PUSH may hand the re-sends to the same dead
    // connection and count attempts against them: the ping timeout stays below the liveness
    // timeout (at most 5 s, at least 200 ms).
    const auto timeout = std::clamp<long>(liveness_timeout.count() * 4 / 5, 200, 5000);
    o.heartbeat_timeout_ms = static_cast<int>(timeout);
    o.heartbeat_interval_ms = static_cast<int>(std::max<long>(timeout / 4, 50));
    return o;
}

SocketOptions control_socket_options(const std::optional<CurveKeys>& curve) {
    SocketOptions o;
    if (curve) o.curve = curve_client_socket(*curve);
    o.linger_ms = 1000;  // gives Bye time to leave; the sink does not depend on it
    o.max_message_size = 1 << 20;
    return o;
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
      batch_(random_batch_id()) {
    if (curve_) {
        log_info("CURVE on: " + std::to_string(curve_->allowed.size()) +
                 " public keys may take tasks");
    }
    if (options.bind.ends_with(":*")) log_info("tasks on " + last_endpoint(tasks_));
    expected_ = input_.count_remaining().value_or(0);
}

std::string Ventilator::task_endpoint() { return last_endpoint(tasks_); }

void Ventilator::send_control(const Message& message) {
    const auto bytes = encoder_.encode(message);
    // The DEALER queues while the sink is away; a full queue means the sink is gone for good.
    if (!control_.send(zmq::buffer(bytes.data(), bytes.size()), zmq::send_flags::dontwait)) {
        log_warning("control message to the sink dropped: its queue is full");
    }
}

bool Ventilator::send_task(std::uint64_t id, InFlight& entry) {
    const auto bytes =
        encoder_.encode(Task{batch_, id, entry.attempt, entry.payload, unix_micros(), echo_input_});
    if (!tasks_.send(zmq::buffer(bytes.data(), bytes.size()), zmq::send_flags::dontwait)) {
        return false;  // no worker connected, or every worker's queue is full
    }
    entry.deadline = Clock::now() + options_.liveness_timeout;
    return true;
}

void Ventilator::read_input() {
    try {
        while (!input_done_ && !unsent_ && may_read()) {
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
            const std::uint64_t id = next_id_++;
            InFlight& entry = ledger_[id];
            entry.payload = std::move(*record);
            entry.deadline = Clock::time_point::max();
            if (!send_task(id, entry)) unsent_ = id;
        }
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
        ++failed_;  // a script sees status 1 if any task of the batch ultimately failed
    }
    ++skipped_;
    skips_unacked_.insert(id);
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

bool Ventilator::may_read() const {
    if (ledger_.size() >= window()) return false;
    return reorder_window_ == 0 || next_id_ < confirmed_.prefix() + 1 + reorder_window_;
}

void Ventilator::pump_tasks() {
    while (!resend_.empty()) {
        auto it = ledger_.find(resend_.front());
        if (it != ledger_.end() && !send_task(it->first, it->second)) return;
        resend_.pop_front();
    }
    const auto now = Clock::now();
    while (!released_.empty() && released_.front().not_before <= now) {
        auto it = ledger_.find(released_.front().id);
        if (it != ledger_.end() && !send_task(it->first, it->second)) return;
        released_.pop_front();
    }
    if (unsent_) {
        if (!send_task(*unsent_, ledger_.at(*unsent_))) return;
        unsent_.reset();
    }
    read_input();
}

void Ventilator::check_deadlines(Clock::time_point now) {
    if (!welcomed_) return;
    // Without word from the sink, a missing result says nothing about the workers: hold every
    // deadline until the sink is back rather than re-send (and count attempts) blindly.
    if (now - last_heard_from_sink_ > options_.liveness_timeout) {
        if (!sink_silent_) {
            log_warning("no word from the sink for " +
                        std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                           now - last_heard_from_sink_)
                                           .count()) +
                        " s; nothing is re-sent until it answers");
            sink_silent_ = true;
        }
        for (auto& [id, entry] : ledger_) {
            if (entry.deadline != Clock::time_point::max()) {
                entry.deadline = std::max(entry.deadline, now + options_.liveness_timeout);
            }
        }
        return;
    }
    if (sink_silent_) {
        log_info("the sink answers again");
        sink_silent_ = false;
    }
    for (auto it = ledger_.begin(); it != ledger_.end();) {
        InFlight& entry = it->second;
        if (entry.deadline > now) {
            ++it;
            continue;
        }
        const std::uint64_t id = it->first;
        if (entry.attempt >= options_.max_attempts) {
            log_warning("task " + std::to_string(id) + " lost: no result after " +
                        std::to_string(entry.attempt) + " attempts");
            send_control(Lost{batch_, id, entry.attempt});
            ++lost_;
            it = ledger_.erase(it);
            continue;
        }
        ++entry.attempt;
        ++resent_;
        entry.deadline = Clock::time_point::max();
        resend_.push_back(id);
        log_info("re-sending task " + std::to_string(id) + " (attempt " +
                 std::to_string(entry.attempt) + "): no result, and no live worker holds it");
        ++it;
    }
}

void Ventilator::on_ack(const Ack& ack) {
    for (std::uint64_t id : ack.ids) {
        acknowledged_ += ledger_.erase(id);
        skips_unacked_.erase(id);
        if (id < next_id_) confirmed_.insert(id);
    }
    failed_ += ack.failed.size();
}

std::size_t Ventilator::window() const {
    // With no live worker known, one task may go out to whoever connects first.
    return static_cast<std::size_t>(
        std::min<std::uint64_t>(options_.window, std::max<std::uint64_t>(capacity_, 1)));
}

void Ventilator::on_release(const Release& release) {
    const auto when = Clock::now() + kReleaseDelay;
    for (std::uint64_t id : release.ids) {
        auto it = ledger_.find(id);
        if (it == ledger_.end() || it->second.deadline == Clock::time_point::max()) continue;
        it->second.deadline = Clock::time_point::max();
        released_.push_back({id, when});
        ++released_count_;
    }
}

void Ventilator::on_alive(const Alive& alive) {
    capacity_ = alive.capacity;
    const auto deadline = Clock::now() + options_.liveness_timeout;
    for (std::uint64_t id : alive.ids) {
        auto it = ledger_.find(id);
        if (it != ledger_.end() && it->second.deadline != Clock::time_point::max()) {
            it->second.deadline = deadline;
        }
    }
}

void Ventilator::handle_control() {
    zmq::message_t frame;
    while (control_.recv(frame, zmq::recv_flags::dontwait)) {
        DecodeResult decoded = decode(std::string_view(frame.data<char>(), frame.size()));
        if (!decoded.message) {
            malformed_.count("dropped a malformed message from the sink: " + decoded.error);
            continue;
        }
        Message& m = *decoded.message;
        last_heard_from_sink_ = Clock::now();
        if (const auto* welcome = std::get_if<Welcome>(&m); welcome && welcome->batch == batch_) {
            if (!welcomed_) {
                log_debug("the sink welcomed batch " + std::to_string(batch_) + " (capacity " +
                          std::to_string(welcome->capacity) + ", reorder window " +
                          std::to_string(welcome->reorder_window) + ")");
            }
            welcomed_ = true;
            capacity_ = welcome->capacity;
            reorder_window_ = welcome->reorder_window;
            echo_input_ = welcome->echo_input;
        } else if (const auto* reject = std::get_if<Reject>(&m);
                   reject && reject->batch == batch_) {
            throw StartupError("the sink refused the batch: " + reject->reason);
        } else if (const auto* ack = std::get_if<Ack>(&m); ack && ack->batch == batch_) {
            on_ack(*ack);
        } else if (const auto* alive = std::get_if<Alive>(&m); alive && alive->batch == batch_) {
            on_alive(*alive);
        } else if (const auto* release = std::get_if<Release>(&m);
                   release && release->batch == batch_) {
            on_release(*release);
        } else {
            malformed_.count("dropped an unexpected message from the sink");
        }
    }
}

void Ventilator::send_progress(Clock::time_point now) {
    if (now < next_progress_) return;
    next_progress_ = now + kProgressInterval;
    send_control(Progress{batch_, next_id_ - 1, ledger_.size(), resent_, expected_});
}

bool Ventilator::complete() const {
    return input_done_ && end_sent_ && ledger_.empty() && skips_unacked_.empty();
}

int Ventilator::finish() {
    send_control(Bye{batch_});
    const std::uint64_t total = next_id_ - 1;
    std::string summary = "batch complete: " + std::to_string(total) + " tasks, " +
                          std::to_string(failed_) + " failed, " + std::to_string(lost_) +
                          " lost, " + std::to_string(resent_) + " re-sent, " +
                          std::to_string(released_count_) + " released by full workers";
    if (malformed_.total() > 0) {
        summary += ", " + std::to_string(malformed_.total()) + " malformed messages";
    }
    if (!options_.resume.empty()) summary += ", " + std::to_string(skipped_) + " skipped";
    log_info(summary);
    if (input_failed_) return kExitUsage;
    return failed_ + lost_ > 0 ? kExitTasksFailed : kExitOk;
}

int Ventilator::run() {
    ShutdownSignal& shutdown = ShutdownSignal::install();
    send_control(Hello{batch_});
    const auto started = Clock::now();
    auto last_hello = started;
    bool noticed_waiting = false;
    const auto check_interval =
        std::min<Clock::duration>(std::chrono::milliseconds(250), options_.liveness_timeout / 4);
    next_deadline_check_ = started + check_interval;

    while (!shutdown.requested()) {
        if (zap_) zap_->check();
        handle_control();
        if (welcomed_) pump_tasks();
        const auto now = Clock::now();
        if (now >= next_deadline_check_) {
            check_deadlines(now);
            next_deadline_check_ = now + check_interval;
            if (welcomed_) pump_tasks();
        }
        if (welcomed_) send_progress(now);
        flush_skips();  // before End, which must follow every Skip
        if (welcomed_ && input_done_ && !end_sent_) {
            send_control(End{batch_, next_id_ - 1});
            end_sent_ = true;
        }
        if (complete()) return finish();
        if (!welcomed_ && now - last_hello >= kHelloInterval) {
            send_control(Hello{batch_});  // again, in case the sink restarted
            last_hello = now;
            if (!noticed_waiting && now - started >= kWaitingNotice) {
                log_info("waiting for the sink at " + options_.sink);
                noticed_waiting = true;
            }
        }

        const bool release_due = !released_.empty() && released_.front().not_before <= now;
        const bool want_input =
            welcomed_ && !input_done_ && !unsent_ && resend_.empty() && may_read();
        const bool want_send = welcomed_ && (unsent_ || !resend_.empty() || release_due);
        auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(check_interval);
        if (!released_.empty() && !release_due) {
            timeout = std::min(timeout, std::chrono::ceil<std::chrono::milliseconds>(
                                            released_.front().not_before - now));
        }
        std::vector<zmq::pollitem_t> items = {
            {control_.handle(), 0, ZMQ_POLLIN, 0},
            {nullptr, shutdown.fd(), ZMQ_POLLIN, 0},
        };
        if (want_input) items.push_back({nullptr, input_.fd(), ZMQ_POLLIN, 0});
        if (want_send) items.push_back({tasks_.handle(), 0, ZMQ_POLLOUT, 0});
        poll(items, timeout);
    }

    log_warning("interrupted: " + std::to_string(next_id_ - 1) + " tasks read, " +
                std::to_string(acknowledged_) + " acknowledged, " + std::to_string(ledger_.size()) +
                " without a result" + (input_done_ ? "" : ", input not read to the end"));
    return kExitInterrupted;
}

}  // namespace taskpipe
