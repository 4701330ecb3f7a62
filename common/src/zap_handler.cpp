#include "taskpipe/zap_handler.hpp"

#include <pthread.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <future>
#include <unordered_map>

#include "taskpipe/curve.hpp"
#include "taskpipe/log.hpp"

namespace taskpipe {

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
constexpr auto kPollInterval = std::chrono::milliseconds(1000);

// Refusals come back as fast as a refused client reconnects (every 0.1 to 2 s), so the log
// shows each distinct refusal at most once a minute, and at most ten lines every ten seconds;
// what it leaves out is counted on one line.
class RefusalLog {
  public:
    void note(const std::string& line) {
        const auto now = Clock::now();
        tick(now);
        auto it = recent_.find(line);
        if ((it != recent_.end() && now - it->second < kRepeatAfter) || lines_ >= kLinesPerWindow) {
            ++suppressed_;
            return;
        }
        if (recent_.size() >= kRemembered) recent_.clear();
        recent_[line] = now;
        ++lines_;
        log_warning(line);
    }

    void tick(Clock::time_point now) {
        if (now - window_start_ < kWindow) return;
        if (suppressed_ > 0) {
            log_warning(std::to_string(suppressed_) +
                        " more refused connection attempts (repeats are logged once a minute)");
        }
        window_start_ = now;
        lines_ = 0;
        suppressed_ = 0;
    }

  private:
    static constexpr auto kWindow = std::chrono::seconds(10);
    static constexpr auto kRepeatAfter = std::chrono::seconds(60);
    static constexpr int kLinesPerWindow = 10;
    static constexpr std::size_t kRemembered = 1024;

    std::unordered_map<std::string, Clock::time_point> recent_;
    Clock::time_point window_start_ = Clock::now();
    int lines_ = 0;
    std::uint64_t suppressed_ = 0;
};

std::string z85(std::string_view binary_key) {
    char text[kZ85KeyLength + 1] = {};
    if (binary_key.size() != 32 ||
        zmq_z85_encode(text, reinterpret_cast<const std::uint8_t*>(binary_key.data()), 32) ==
            nullptr) {
        return "(malformed key)";
    }
    return text;
}

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

}  // namespace

std::string ZapHandler::monitor_endpoint(std::string_view name) {
    return "inproc://taskpipe.handshakes." + std::string(name);
}

ZapHandler::ZapHandler(zmq::context_t& context, const std::vector<std::string>& allowed_keys,
                       std::vector<std::string> monitored)
    : context_(context),
      monitored_(std::move(monitored)),
      stop_endpoint_("inproc://taskpipe.zap.stop." +
                     std::to_string(reinterpret_cast<std::uintptr_t>(this))),
      stop_(context, zmq::socket_type::pair) {
    for (const auto& key : allowed_keys) {
        std::uint8_t binary[32];
        if (z85_key_error(key) || zmq_z85_decode(binary, key.c_str()) == nullptr) {
            throw StartupError("not a Z85 CURVE key: " + key);
        }
        allowed_.emplace(reinterpret_cast<const char*>(binary), sizeof binary);
    }
    stop_.set(zmq::sockopt::linger, 0);
    stop_.bind(stop_endpoint_);

    std::promise<void> ready;
    std::future<void> started = ready.get_future();
    // The thread owns the promise, so that nothing it touches dies with this constructor's frame.
    thread_ = std::thread([this, ready = std::move(ready)]() mutable {
        // Signals belong to the main thread's event loop (shutdown.hpp).
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, nullptr);
        zmq::socket_t zap;
        std::vector<zmq::socket_t> monitors;
        try {
            zap = zmq::socket_t(context_, zmq::socket_type::rep);
            zap.set(zmq::sockopt::linger, 0);
            zap.bind(kZapEndpoint);
            for (const auto& name : monitored_) {
                monitors.emplace_back(context_, zmq::socket_type::pair);
                monitors.back().set(zmq::sockopt::linger, 0);
                monitors.back().connect(monitor_endpoint(name));
            }
        } catch (...) {
            ready.set_exception(std::current_exception());
            return;
        }
        ready.set_value();
        try {
            serve(zap, monitors);
        } catch (const std::exception& e) {
            {
                std::lock_guard lock(mutex_);
                failure_ = e.what();
            }
            failed_ = true;
            // Stay bound without answering: handshakes wait instead of succeeding unchecked.
            wait_for_stop();
        }
    });
    try {
        started.get();
    } catch (const std::exception& e) {
        thread_.join();
        throw StartupError(std::string("cannot start the authentication (ZAP) handler: ") +
                           e.what());
    }
}

ZapHandler::~ZapHandler() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    stop_requested_.notify_all();
    try {
        (void)stop_.send(zmq::str_buffer("stop"), zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
        // The thread also sees stopping_ within one poll interval.
    }
    if (thread_.joinable()) thread_.join();
}

void ZapHandler::check() const {
    if (!failed_) return;
    std::lock_guard lock(mutex_);
    throw StartupError("the authentication (ZAP) handler failed (" + failure_ +
                       "); stopping rather than letting clients in unchecked");
}

void ZapHandler::wait_for_stop() {
    std::unique_lock lock(mutex_);
    stop_requested_.wait(lock, [this] { return stopping_.load(); });
}

void ZapHandler::serve(zmq::socket_t& zap, std::vector<zmq::socket_t>& monitors) {
    zmq::socket_t stop(context_, zmq::socket_type::pair);
    stop.set(zmq::sockopt::linger, 0);
    stop.connect(stop_endpoint_);
    RefusalLog log;
    std::vector<zmq::pollitem_t> items;
    while (!stopping_) {
        items = {{zap.handle(), 0, ZMQ_POLLIN, 0}, {stop.handle(), 0, ZMQ_POLLIN, 0}};
        for (auto& monitor : monitors) items.push_back({monitor.handle(), 0, ZMQ_POLLIN, 0});
        poll(items, kPollInterval);
        if (items[0].revents & ZMQ_POLLIN) {
            if (auto refusal = answer(zap)) log.note(*refusal);
        }
        for (std::size_t i = 0; i < monitors.size(); ++i) {
            if (items[i + 2].revents & ZMQ_POLLIN) {
                if (auto refusal = handshake_failure(monitors[i], monitored_[i])) {
                    log.note(*refusal);
                }
            }
        }
        log.tick(Clock::now());
    }
}

std::optional<std::string> ZapHandler::answer(zmq::socket_t& zap) {
    // RFC 27: version, request id, domain, address, identity, mechanism, credentials...
    std::vector<zmq::message_t> frames;
    do {
        frames.emplace_back();
        (void)zap.recv(frames.back(), zmq::recv_flags::none);
    } while (frames.back().more());
    const auto frame = [&](std::size_t i) {
        return i < frames.size() ? frames[i].to_string() : std::string();
    };
    const std::string mechanism = frame(5);
    const std::string key = frame(6);
    std::optional<std::string> refusal;
    if (frames.size() < 6 || frame(0) != "1.0") {
        refusal = "refused a malformed ZAP request";
    } else if (mechanism != "CURVE") {
        refusal = "refused a client on " + frame(2) + " from " + frame(3) + ": it uses " +
                  mechanism + ", not CURVE";
    } else if (!allowed_.contains(key)) {
        refusal = "refused a client on " + frame(2) + " from " + frame(3) + ": public key " +
                  z85(key) + " is not on the allow-list";
    }
    const bool ok = !refusal;
    const std::string status = ok ? "200" : "400";
    const std::string user = ok ? z85(key) : std::string();
    zap.send(zmq::str_buffer("1.0"), zmq::send_flags::sndmore);
    zap.send(zmq::buffer(frame(1)), zmq::send_flags::sndmore);
    zap.send(zmq::buffer(status), zmq::send_flags::sndmore);
    zap.send(ok ? zmq::str_buffer("OK") : zmq::str_buffer("not allowed"), zmq::send_flags::sndmore);
    zap.send(zmq::buffer(user), zmq::send_flags::sndmore);
    zap.send(zmq::str_buffer(""), zmq::send_flags::none);
    if (refusal) ++refused_;
    return refusal;
}

std::optional<std::string> ZapHandler::handshake_failure(zmq::socket_t& monitor,
                                                         const std::string& name) {
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
    ++refused_;
    return "refused a client on " + name + " (" + address.to_string() +
           "): " + describe_handshake_failure(id, value);
}

}  // namespace taskpipe
