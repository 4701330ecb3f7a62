#include "taskpipe/connection_failure_log.hpp"

#include <pthread.h>
#include <sys/resource.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <future>

#include "taskpipe/log.hpp"
#include "taskpipe/rate_limited_log.hpp"
#include "taskpipe/sockets.hpp"

namespace taskpipe {

namespace {

// Names each instance's stop endpoint: an inproc name stays taken for a while after its socket
// closes, so an address that a later instance may reuse will not do.
std::atomic<std::uint64_t> next_instance{0};

constexpr auto kPollInterval = std::chrono::milliseconds(1000);

std::string describe_handshake_failure(std::uint16_t event, std::uint32_t value) {
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
        if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
            return "the client does not use CURVE";
        }
        if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC) {
            return "the CURVE handshake failed (the client has the wrong server key?)";
        }
        char code[16];
        std::snprintf(code, sizeof code, "0x%08x", static_cast<unsigned>(value));
        return std::string("handshake protocol error ") + code;
    }
    if (const int error = static_cast<int>(value); error == EPIPE || error == ECONNRESET) {
        return "the client hung up during the handshake (no CURVE, or the wrong server key?)";
    }
    return std::string("the handshake failed: ") + std::strerror(static_cast<int>(value));
}

std::string open_file_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return "unknown";
    return std::to_string(limit.rlim_cur);
}

}  // namespace

std::string ConnectionFailureLog::endpoint(std::string_view name) {
    return "inproc://taskpipe.connections." + std::string(name);
}

ConnectionFailureLog::ConnectionFailureLog(zmq::context_t& context,
                                           std::vector<std::string> sockets)
    : names_(std::move(sockets)),
      stop_endpoint_("inproc://taskpipe.connections.stop." + std::to_string(next_instance++)),
      stop_(context, zmq::socket_type::pair) {
    stop_.set(zmq::sockopt::linger, 0);
    stop_.bind(stop_endpoint_);
    std::promise<void> ready;
    std::future<void> started = ready.get_future();
    thread_ = std::thread([this, &context, ready = std::move(ready)]() mutable {
        // Signals belong to the main thread's event loop (shutdown.hpp).
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, nullptr);
        zmq::socket_t stop;
        std::vector<zmq::socket_t> monitors;
        try {
            stop = zmq::socket_t(context, zmq::socket_type::pair);
            stop.set(zmq::sockopt::linger, 0);
            stop.connect(stop_endpoint_);
            for (const auto& name : names_) {
                monitors.emplace_back(context, zmq::socket_type::pair);
                monitors.back().set(zmq::sockopt::linger, 0);
                monitors.back().connect(endpoint(name));
            }
        } catch (...) {
            ready.set_exception(std::current_exception());
            return;
        }
        ready.set_value();
        try {
            serve(stop, monitors);
        } catch (const std::exception& e) {
            // Only the log is lost: the sockets work on without it.
            log_warning(std::string("connection failures are no longer logged: ") + e.what());
        }
    });
    try {
        started.get();
    } catch (...) {
        thread_.join();
        throw;
    }
}

ConnectionFailureLog::~ConnectionFailureLog() {
    try {
        (void)stop_.send(zmq::str_buffer("stop"), zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
        // The context is shutting down: the thread's poll fails and it ends.
    }
    if (thread_.joinable()) thread_.join();
}

void ConnectionFailureLog::serve(zmq::socket_t& stop, std::vector<zmq::socket_t>& monitors) {
    RateLimitedLog log("connection failures");
    std::vector<zmq::pollitem_t> items;
    for (;;) {
        items = {{stop.handle(), 0, ZMQ_POLLIN, 0}};
        for (auto& monitor : monitors) items.push_back({monitor.handle(), 0, ZMQ_POLLIN, 0});
        poll(items, kPollInterval);
        if (items[0].revents & ZMQ_POLLIN) return;
        for (std::size_t i = 0; i < monitors.size(); ++i) {
            if (items[i + 1].revents & ZMQ_POLLIN) {
                if (auto line = describe_event(monitors[i], names_[i])) log.note(*line);
            }
        }
        log.tick();
    }
}

std::optional<std::string> ConnectionFailureLog::describe_event(zmq::socket_t& monitor,
                                                                const std::string& name) {
    // zmq_socket_monitor: a 6-byte frame (event id, value), then the endpoint.
    zmq::message_t event;
    zmq::message_t address;
    (void)monitor.recv(event, zmq::recv_flags::none);
    if (!event.more()) return std::nullopt;
    (void)monitor.recv(address, zmq::recv_flags::none);
    while (address.more()) (void)monitor.recv(address, zmq::recv_flags::none);
    if (event.size() < 6) return std::nullopt;
    std::uint16_t id = 0;
    std::uint32_t value = 0;
    std::memcpy(&id, event.data(), sizeof id);
    std::memcpy(&value, static_cast<const char*>(event.data()) + sizeof id, sizeof value);
    const std::string where = name + " (" + address.to_string() + ")";
    if (id == ZMQ_EVENT_ACCEPT_FAILED) {
        const int error = static_cast<int>(value);
        // Other errors (a client that gave up before the accept) are the network's business.
        if (error != EMFILE && error != ENFILE && error != ENOBUFS && error != ENOMEM) {
            return std::nullopt;
        }
        ++accept_failures_;
        return "cannot accept a connection on " + where + ": " + std::strerror(error) +
               " (the open-file limit is " + open_file_limit() + ")";
    }
    ++handshake_failures_;
    return "refused a client on " + where + ": " + describe_handshake_failure(id, value);
}

}  // namespace taskpipe
