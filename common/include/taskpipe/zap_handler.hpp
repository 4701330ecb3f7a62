// The ZAP handler (ZeroMQ RFC 27) that lets only allow-listed CURVE keys onto a program's
// server sockets, and logs who it turned away.
//
// libzmq 4.3 asks the handler bound to inproc://zeromq.zap.01 in the server socket's context
// about every client; with no handler bound it lets ANY client key in (ZMQ_ZAP_ENFORCE_DOMAIN,
// which would change that, is a draft option). So the handler is started, and confirmed bound,
// before any server socket is made, and lives until they are closed: construct it after the
// context and before the sockets, so that it is destroyed after them and before the context.
//
// It answers 200 for mechanism CURVE with an allowed public key and 400 for anything else. It
// also listens to the handshake failures of the sockets named in `monitored` (a client without
// CURVE, or one that has the wrong server key, fails before any ZAP request), and logs every
// refusal on stderr, rate-limited. If its thread fails it stays bound without answering, so that
// no handshake completes, and check() throws: the program must stop, never serve without it.
//
// Thread-safety: one thread of its own; the public functions belong to the owner's thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include <zmq.hpp>

#include "taskpipe/sockets.hpp"

namespace taskpipe {

class ZapHandler {
  public:
    // Starts the handler on `context` and returns once it is bound. `allowed_keys` are Z85
    // public keys; `monitored` names the sockets whose handshake failures are logged (their
    // CurveSocketOptions::monitor_endpoint must be monitor_endpoint(name)). Throws StartupError
    // when the handler cannot be bound (another one already is).
    ZapHandler(zmq::context_t& context, const std::vector<std::string>& allowed_keys,
               std::vector<std::string> monitored);
    // Stops and joins the thread; quiet.
    ~ZapHandler();
    ZapHandler(const ZapHandler&) = delete;
    ZapHandler& operator=(const ZapHandler&) = delete;

    // Throws StartupError once the handler has failed.
    void check() const;

    // Connections refused so far (ZAP refusals and failed handshakes).
    std::uint64_t refused() const { return refused_.load(); }

    // The zmq_socket_monitor endpoint for the server socket called `name`.
    static std::string monitor_endpoint(std::string_view name);

  private:
    void serve(zmq::socket_t& zap, std::vector<zmq::socket_t>& monitors);
    // Each returns the refusal to log, if any.
    std::optional<std::string> answer(zmq::socket_t& zap);
    std::optional<std::string> handshake_failure(zmq::socket_t& monitor, const std::string& name);
    void wait_for_stop();

    zmq::context_t& context_;
    std::unordered_set<std::string> allowed_;  // 32-byte binary keys
    std::vector<std::string> monitored_;
    std::string stop_endpoint_;
    zmq::socket_t stop_;  // the owner's end of a PAIR that wakes the thread to stop
    std::thread thread_;

    std::atomic<bool> stopping_{false};
    std::atomic<bool> failed_{false};
    std::atomic<std::uint64_t> refused_{0};
    mutable std::mutex mutex_;
    std::condition_variable stop_requested_;
    std::string failure_;  // guarded by mutex_
};

}  // namespace taskpipe
