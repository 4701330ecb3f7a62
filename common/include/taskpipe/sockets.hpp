// The one place where taskpipe creates ZeroMQ sockets.
//
// cppzmq is the RAII layer; this adds what every socket of ours needs: each option set
// explicitly (LINGER above all), endpoint errors turned into StartupError, and a poll that
// treats EINTR as a timeout so that signal handling stays in the event loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <zmq.hpp>

namespace taskpipe {

// A start-up problem the user can fix (address in use, bad endpoint): exit status 2.
class StartupError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// CURVE on one socket (docs/security.md). Keys are 40-character Z85 strings.
struct CurveSocketOptions {
    bool server = false;     // server: the peers that connect are authenticated
    std::string public_key;  // this program's key pair
    std::string secret_key;
    std::string server_key;  // client only: the public key of the server it connects to
    // Server only: ZMQ_ZAP_DOMAIN, which names the socket in the requests the ZAP handler
    // (zap_handler.hpp) answers, and so chooses the allow-list that applies; the handler must
    // run before the socket is made.
    std::string zap_domain;
};

struct SocketOptions {
    int linger_ms = 0;    // how long close() may wait for unsent messages
    int send_hwm = 1000;  // messages queued per peer before send would block
    int receive_hwm = 1000;
    std::int64_t max_message_size = -1;  // frames larger than this drop the connection
    int send_buffer = -1;                // SO_SNDBUF / SO_RCVBUF in bytes; -1 keeps the OS default
    int receive_buffer = -1;
    int heartbeat_interval_ms = 1000;  // ZMTP PING interval; 0 disables
    int heartbeat_timeout_ms = 5000;   // no traffic for this long closes the connection
    int reconnect_interval_ms = 100;
    int reconnect_interval_max_ms = 2000;
    bool tcp_keepalive = true;
    // A connection that has not completed its ZMTP (and CURVE) handshake after this long is
    // closed: an idle connection holds a file descriptor for no longer than this.
    int handshake_timeout_ms = 5000;
    // ZMQ_IMMEDIATE: queue messages only on completed connections, so that a send while the
    // peer is away would block (and a dontwait send fails) instead of waiting for a reconnect.
    bool immediate = false;
    std::optional<CurveSocketOptions> curve;  // none: the NULL mechanism, no security
    // Server sockets: the socket's name in log lines (tasks, results, control). When set, the
    // accepts that fail for lack of file descriptors and, with CURVE, the handshakes that fail
    // are published for ConnectionFailureLog (connection_failure_log.hpp).
    std::string name;
};

zmq::socket_t bind_socket(zmq::context_t& context, zmq::socket_type type,
                          const SocketOptions& options, const std::string& endpoint);
zmq::socket_t connect_socket(zmq::context_t& context, zmq::socket_type type,
                             const SocketOptions& options, const std::string& endpoint);

// A client socket watched from its first connection attempt on: the socket, connected to
// `endpoint`, and a PAIR socket that receives its monitor events (zmq_socket_monitor: two frames
// each, the event and value, then the endpoint), for the events in `events` (ZMQ_EVENT_*).
// Connected only once the monitor listens, so that no event is missed (a handshake that
// completes at once). The monitor lives as long as the socket.
struct WatchedSocket {
    zmq::socket_t socket;
    zmq::socket_t monitor;
};
WatchedSocket connect_watched_socket(zmq::context_t& context, zmq::socket_type type,
                                     const SocketOptions& options, const std::string& endpoint,
                                     int events);

// The endpoint a bound socket really listens on (with the port chosen for tcp://...:*).
std::string last_endpoint(zmq::socket_t& socket);

// After receiving `first`, reads and discards the remaining frames of its message. Returns
// true when `first` was the whole message (every protocol message is a single frame).
bool single_frame(zmq::socket_t& socket, const zmq::message_t& first);

// zmq::poll that returns 0 instead of throwing when a signal interrupts it.
int poll(std::vector<zmq::pollitem_t>& items, std::chrono::milliseconds timeout);

}  // namespace taskpipe
