#include "taskpipe/zap_handler.hpp"

#include <pthread.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <future>

#include "taskpipe/curve.hpp"
#include "taskpipe/rate_limited_log.hpp"

namespace taskpipe {

namespace {

// Names each instance's stop endpoint: an inproc name stays taken for a while after its socket
// closes, so an address that a later instance may reuse will not do.
std::atomic<std::uint64_t> next_instance{0};

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
constexpr auto kPollInterval = std::chrono::milliseconds(1000);

std::string z85(std::string_view binary_key) {
    char text[kZ85KeyLength + 1] = {};
    if (binary_key.size() != 32 ||
        zmq_z85_encode(text, reinterpret_cast<const std::uint8_t*>(binary_key.data()), 32) ==
            nullptr) {
        return "(malformed key)";
    }
    return text;
}

}  // namespace

ZapPolicy::ZapPolicy(const ZapDomains& domains) {
    for (const auto& [domain, keys] : domains) {
        auto& allowed = allowed_[domain];
        for (const auto& key : keys) {
            std::uint8_t binary[32];
            if (z85_key_error(key) || zmq_z85_decode(binary, key.c_str()) == nullptr) {
                throw StartupError("not a Z85 CURVE key: " + key);
            }
            allowed.emplace(reinterpret_cast<const char*>(binary), sizeof binary);
        }
    }
}

std::optional<std::string> ZapPolicy::refusal(std::string_view domain, std::string_view mechanism,
                                              std::string_view binary_key) const {
    const std::string key(binary_key);
    if (mechanism != "CURVE") return "it uses " + std::string(mechanism) + ", not CURVE";
    const auto list = allowed_.find(domain);
    if (list == allowed_.end()) return std::string("this socket has no allow-list");
    if (list->second.contains(key)) return std::nullopt;
    std::string elsewhere;
    for (const auto& [other, keys] : allowed_) {
        if (keys.contains(key)) elsewhere += (elsewhere.empty() ? "" : ", ") + other;
    }
    std::string why = "public key " + z85(key) + " is not on the allow-list";
    if (!elsewhere.empty()) {
        why += " (it is allowed on " + elsewhere + ", not on " + std::string(domain) + ")";
    }
    return why;
}

ZapHandler::ZapHandler(zmq::context_t& context, const ZapDomains& domains)
    : context_(context),
      policy_(domains),
      stop_endpoint_("inproc://taskpipe.zap.stop." + std::to_string(next_instance++)),
      stop_(context, zmq::socket_type::pair) {
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
        try {
            zap = zmq::socket_t(context_, zmq::socket_type::rep);
            zap.set(zmq::sockopt::linger, 0);
            zap.bind(kZapEndpoint);
        } catch (...) {
            ready.set_exception(std::current_exception());
            return;
        }
        ready.set_value();
        try {
            serve(zap);
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

void ZapHandler::serve(zmq::socket_t& zap) {
    zmq::socket_t stop(context_, zmq::socket_type::pair);
    stop.set(zmq::sockopt::linger, 0);
    stop.connect(stop_endpoint_);
    RateLimitedLog log("refused connection attempts");
    std::vector<zmq::pollitem_t> items;
    while (!stopping_) {
        items = {{zap.handle(), 0, ZMQ_POLLIN, 0}, {stop.handle(), 0, ZMQ_POLLIN, 0}};
        poll(items, kPollInterval);
        if (items[0].revents & ZMQ_POLLIN) {
            if (auto refusal = answer(zap)) log.note(*refusal);
        }
        log.tick();
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
    const std::string key = frame(6);
    std::optional<std::string> refusal;
    if (frames.size() < 6 || frame(0) != "1.0") {
        refusal = "refused a malformed ZAP request";
    } else if (auto why = policy_.refusal(frame(2), frame(5), key)) {
        refusal = "refused a client on " + frame(2) + " from " + frame(3) + ": " + *why;
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

}  // namespace taskpipe
