#include "producer.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "taskpipe/log.hpp"
#include "taskpipe/message_io.hpp"
#include "taskpipe/shutdown.hpp"

namespace taskpipe {

namespace {

// The head's frames are at most about 1 MiB (a task's stdout is cut to --max-output).
constexpr std::int64_t kMaxFrame = 16 << 20;
constexpr int kAnswersPerTurn = 1000;
// Tasks that get their problems logged one by one; then they only count in the exit status.
constexpr std::uint64_t kDiagnosedTasks = 10;

SocketOptions head_socket_options(const std::optional<CurveKeys>& curve) {
    SocketOptions o;
    if (curve) o.curve = curve_client_socket(*curve);
    o.linger_ms = 0;     // nothing is left to say once the command ends
    o.immediate = true;  // never queue a request for a connection that is not there
    o.send_hwm = 10000;  // more than the Tracker's window of requests and polls
    o.receive_hwm = 0;   // read every pushed `done` however many come
    o.max_message_size = kMaxFrame;
    o.reconnect_interval_ms = 100;
    o.reconnect_interval_max_ms = 1000;
    return o;
}

std::string seconds_text(std::chrono::milliseconds ms) {
    const auto count = ms.count();
    std::string text = std::to_string(count / 1000);
    if (count % 1000 != 0) {
        std::string fraction = std::to_string(1000 + count % 1000).substr(1);
        fraction.erase(fraction.find_last_not_of('0') + 1);
        text += "." + fraction;
    }
    return text + " s";
}

Printing printing_for(const SubmitOptions& o) {
    if (o.mode != SubmitMode::submit) return Printing::states;
    return o.wait ? Printing::output : Printing::ids;
}

Tracker::Settings tracker_settings(const SubmitOptions& o,
                                   std::optional<Tracker::TimePoint> deadline) {
    Tracker::Settings s;
    s.wait = o.wait;
    s.delay_ms = static_cast<std::uint64_t>(o.delay.count());
    s.not_before_us = o.not_before_us;
    s.deadline = deadline;
    return s;
}

}  // namespace

Producer::Producer(const SubmitOptions& options, int output_fd)
    : options_(options),
      output_fd_(output_fd),
      printing_(printing_for(options)),
      started_(Clock::now()),
      deadline_(options.timeout ? std::optional(started_ + *options.timeout) : std::nullopt),
      curve_(load_curve_keys(options.curve, kSubmitCurveRoles)),
      head_(connect_watched_socket(context_, zmq::socket_type::dealer, head_socket_options(curve_),
                                   options.head, HeadConnection::events())),
      connection_(options.head, curve_.has_value()),
      tracker_(tracker_settings(options, deadline_)) {
    ShutdownSignal::install();
    if (options.mode == SubmitMode::submit && options.from_stdin) {
        std::optional<char> delimiter;
        if (options.split == StdinSplit::lines) delimiter = '\n';
        if (options.split == StdinSplit::nul) delimiter = '\0';
        input_.emplace(STDIN_FILENO, delimiter, kMaxPayloadBytes);
    }
}

bool Producer::read_monitor() {
    bool changed = false;
    zmq::message_t event;
    while (head_.monitor.recv(event, zmq::recv_flags::dontwait)) {
        zmq::message_t endpoint;
        if (event.more()) (void)head_.monitor.recv(endpoint, zmq::recv_flags::none);
        if (event.size() < 6) continue;
        std::uint16_t id = 0;
        std::int32_t value = 0;
        std::memcpy(&id, event.data(), sizeof id);
        std::memcpy(&value, event.data<char>() + sizeof id, sizeof value);
        changed = connection_.on_event(id, value) || changed;
    }
    return changed;
}

bool Producer::wait_for_head() {
    const ShutdownSignal& signal = ShutdownSignal::install();
    Clock::time_point deadline = started_ + options_.connect_timeout;
    if (deadline_) deadline = std::min(deadline, *deadline_);
    for (;;) {
        const auto now = Clock::now();
        read_monitor();
        if (connection_.state() == HeadConnection::State::up) return true;
        if (connection_.state() == HeadConnection::State::down) {
            throw StartupError(connection_.reason());
        }
        if (signal.requested()) return false;
        if (now >= deadline) {
            throw StartupError("no answer from the head at " + options_.head + " within " +
                               seconds_text(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   deadline - started_)) +
                               " (--connect-timeout): is it listening there, and reachable?");
        }
        std::vector<zmq::pollitem_t> items = {
            {head_.monitor.handle(), 0, ZMQ_POLLIN, 0},
            {nullptr, signal.fd(), ZMQ_POLLIN, 0},
        };
        taskpipe::poll(items, std::chrono::duration_cast<std::chrono::milliseconds>(
                                  deadline - now + std::chrono::milliseconds(1)));
    }
}

void Producer::on_connection_change(Clock::time_point now) {
    if (connection_.state() == HeadConnection::State::up) {
        log_info("connected to the head at " + options_.head + " again");
        tracker_.connected(now);
        return;
    }
    log_warning("head unavailable: " + connection_.reason() + "; waiting for it to come back");
    tracker_.disconnected(now, connection_.reason());
}

void Producer::feed() {
    if (input_ended_ || tracker_.stopped()) return;
    const std::size_t arguments =
        options_.mode == SubmitMode::submit ? options_.payloads.size() : options_.ids.size();
    switch (options_.mode) {
        case SubmitMode::status:
            if (options_.key) {
                tracker_.add_status(*options_.key);
                input_ended_ = true;
                return;
            }
            [[fallthrough]];
        case SubmitMode::cancel:
            for (; next_argument_ < arguments && tracker_.wants_more(); ++next_argument_) {
                const std::uint64_t id = options_.ids[next_argument_];
                if (options_.mode == SubmitMode::status) {
                    tracker_.add_status(id);
                } else {
                    tracker_.add_cancel(id);
                }
            }
            input_ended_ = next_argument_ >= arguments;
            return;
        case SubmitMode::submit:
            break;
    }
    if (!input_) {
        for (; next_argument_ < arguments && tracker_.wants_more(); ++next_argument_) {
            tracker_.add_submit(options_.payloads[next_argument_], options_.key);
        }
        input_ended_ = next_argument_ >= arguments;
        return;
    }
    try {
        while (tracker_.wants_more()) {
            std::optional<std::string> record = input_->next();
            if (!record) break;
            ++next_argument_;
            if (!options_.key) {
                tracker_.add_submit(std::move(*record), std::nullopt);
                continue;
            }
            // --key names one task: hold it until stdin has shown it holds no other.
            if (keyed_payload_) {
                throw UsageError(
                    "--key names one task, and stdin holds more than one (--whole reads all of "
                    "stdin as one task)");
            }
            keyed_payload_ = std::move(record);
        }
    } catch (const UsageError&) {
        throw;
    } catch (const std::runtime_error& e) {
        log_error("stdin: " + std::string(e.what()) + " (a task is at most 1 MiB); " +
                  std::to_string(next_argument_) +
                  " tasks read before it are submitted, the rest is not read");
        input_failed_ = true;
        input_ended_ = true;
        input_.reset();
        return;
    }
    if (input_->exhausted()) {
        if (keyed_payload_) {
            tracker_.add_submit(std::move(*keyed_payload_), options_.key);
            keyed_payload_.reset();
        }
        input_ended_ = true;
    }
}

bool Producer::send_requests() {
    while (const ToHead* request = tracker_.next_request()) {
        if (!send_message<ToHead>(head_.socket, encoder_, *request)) return false;
        tracker_.request_sent();
    }
    return true;
}

void Producer::read_answers(Clock::time_point now) {
    for (int i = 0; i < kAnswersPerTurn; ++i) {
        std::optional<Received<ToProducer>> received = recv_message<ToProducer>(head_.socket);
        if (!received) return;
        if (!received->message) {
            malformed_.count("dropped a malformed message from the head: " + received->error);
            continue;
        }
        tracker_.received(std::move(*received->message), now);
    }
}

void Producer::write(std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(output_fd_, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::system_error(errno, std::generic_category(), "cannot write the output");
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

void Producer::print_complete() {
    const bool waited = options_.wait;
    while (std::optional<Tracker::Task> task = tracker_.take_complete()) {
        const std::vector<Diagnostic> lines = diagnostics(*task, waited);
        if (!lines.empty() && ++diagnostics_shown_ <= kDiagnosedTasks) {
            for (const Diagnostic& line : lines) log(line.level, line.text);
            if (diagnostics_shown_ == kDiagnosedTasks) {
                log_warning(
                    "further tasks' problems are not logged one by one (--json shows "
                    "each one)");
            }
        }
        status_ = std::max(status_, exit_status(*task, waited));
        write(options_.json ? json_line(*task, printing_) : plain_text(*task, printing_));
    }
}

int Producer::run() {
    if (!wait_for_head()) return kExitInterrupted;
    const ShutdownSignal& signal = ShutdownSignal::install();
    log_debug("connected to the head at " + options_.head);
    tracker_.connected(Clock::now());
    bool interrupted = false;
    for (;;) {
        auto now = Clock::now();
        feed();
        tracker_.tick(now);
        const bool sent_all = send_requests();
        print_complete();
        if (tracker_.idle() && (input_ended_ || tracker_.stopped())) break;

        std::vector<zmq::pollitem_t> items = {
            {head_.socket.handle(), 0,
             static_cast<short>(ZMQ_POLLIN | (sent_all ? 0 : ZMQ_POLLOUT)), 0},
            {head_.monitor.handle(), 0, ZMQ_POLLIN, 0},
            {nullptr, signal.fd(), ZMQ_POLLIN, 0},
        };
        const bool reading = input_ && !input_ended_ && !input_->exhausted() &&
                             tracker_.wants_more() && !tracker_.stopped();
        if (reading) items.push_back({nullptr, input_->fd(), ZMQ_POLLIN, 0});
        auto timeout = std::chrono::milliseconds(1000);
        if (const auto wakeup = tracker_.next_wakeup()) {
            timeout = std::clamp(std::chrono::ceil<std::chrono::milliseconds>(*wakeup - now),
                                 std::chrono::milliseconds(0), timeout);
        }
        taskpipe::poll(items, timeout);
        now = Clock::now();
        if (signal.requested() && !interrupted) {
            interrupted = true;
            log_warning("interrupted: the tasks already submitted stay with the head");
            tracker_.stop("interrupted");
        }
        if (read_monitor()) on_connection_change(now);
        read_answers(now);
        if (reading && (items[3].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) != 0) {
            try {
                (void)input_->fill();
            } catch (const std::runtime_error& e) {
                log_error("stdin: " + std::string(e.what()));
                input_failed_ = true;
                input_ended_ = true;
                input_.reset();
            }
        }
    }
    if (malformed_.total() > 0) {
        log_warning(std::to_string(malformed_.total()) +
                    " malformed messages from the head dropped");
    }
    if (interrupted) return kExitInterrupted;
    if (input_failed_) status_ = std::max<int>(status_, kExitUsage);
    return status_;
}

}  // namespace taskpipe
