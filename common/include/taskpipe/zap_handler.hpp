// The ZAP handler (ZeroMQ RFC 27) that lets onto each of a program's server sockets only the
// CURVE keys allowed on that socket, and logs who it turned away.
//
// Authorisation is per socket: each server socket sets a ZAP domain naming it (tasks, results,
// control) and the handler admits a key on a domain only if that domain's allow-list holds it;
// a domain without an allow-list admits nobody. So a worker's key, allowed on the tasks and
// results sockets, is refused on the sink's control socket, which admits the server key pair
// alone (docs/security.md).
//
// libzmq 4.3 asks the handler bound to inproc://zeromq.zap.01 in the server socket's context
// about every client; with no handler bound it lets ANY client key in (ZMQ_ZAP_ENFORCE_DOMAIN,
// which would change that, is a draft option). So the handler is started, and confirmed bound,
// before any server socket is made, and lives until they are closed: construct it after the
// context and before the sockets, so that it is destroyed after them and before the context.
//
// It answers 200 for mechanism CURVE with a key allowed on the request's domain and 400 for
// anything else, and logs every refusal on stderr, rate-limited (rate_limited_log.hpp). Clients
// that fail before any ZAP request (no CURVE, the wrong server key) are logged by
// ConnectionFailureLog. If its thread fails it stays bound without answering, so that no
// handshake completes, and check() throws: the program must stop, never serve without it.
//
// Thread-safety: one thread of its own; the public functions belong to the owner's thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
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

// The Z85 public keys allowed on each ZAP domain (each server socket's name).
using ZapDomains = std::map<std::string, std::vector<std::string>>;

// The handler's decisions, apart from its sockets and thread.
class ZapPolicy {
  public:
    // Throws StartupError for a key that is not Z85.
    explicit ZapPolicy(const ZapDomains& domains);

    // Why a client on `domain` using `mechanism` with the 32-byte binary public `key` is
    // refused (for the log line after "refused a client on DOMAIN from ADDRESS: "), or nullopt
    // to let it in.
    std::optional<std::string> refusal(std::string_view domain, std::string_view mechanism,
                                       std::string_view key) const;

  private:
    std::map<std::string, std::unordered_set<std::string>, std::less<>> allowed_;  // binary keys
};

class ZapHandler {
  public:
    // Starts the handler on `context` and returns once it is bound. Throws StartupError for a
    // key that is not Z85 or when the handler cannot be bound (another one already is).
    ZapHandler(zmq::context_t& context, const ZapDomains& domains);
    // Stops and joins the thread; quiet.
    ~ZapHandler();
    ZapHandler(const ZapHandler&) = delete;
    ZapHandler& operator=(const ZapHandler&) = delete;

    // Throws StartupError once the handler has failed.
    void check() const;

    // ZAP requests refused so far.
    std::uint64_t refused() const { return refused_.load(); }

  private:
    void serve(zmq::socket_t& zap);
    // The refusal to log, if any.
    std::optional<std::string> answer(zmq::socket_t& zap);
    void wait_for_stop();

    zmq::context_t& context_;
    ZapPolicy policy_;
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
