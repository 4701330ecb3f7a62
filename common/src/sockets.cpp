#include "taskpipe/sockets.hpp"

#include <atomic>
#include <cassert>
#include <cerrno>

#include "taskpipe/connection_failure_log.hpp"

namespace taskpipe {

namespace {

void set_curve(zmq::socket_t& socket, const CurveSocketOptions& curve) {
    if (curve.server) {
        // Set before CURVE_SERVER: with a domain, every handshake goes to the ZAP handler.
        socket.set(zmq::sockopt::zap_domain, curve.zap_domain);
        socket.set(zmq::sockopt::curve_server, true);
        socket.set(zmq::sockopt::curve_secretkey, curve.secret_key);
    } else {
        socket.set(zmq::sockopt::curve_serverkey, curve.server_key);
        socket.set(zmq::sockopt::curve_publickey, curve.public_key);
        socket.set(zmq::sockopt::curve_secretkey, curve.secret_key);
    }
}

zmq::socket_t make_socket(zmq::context_t& context, zmq::socket_type type, const SocketOptions& o) {
    zmq::socket_t socket(context, type);
    socket.set(zmq::sockopt::linger, o.linger_ms);
    socket.set(zmq::sockopt::sndhwm, o.send_hwm);
    socket.set(zmq::sockopt::rcvhwm, o.receive_hwm);
    socket.set(zmq::sockopt::maxmsgsize, o.max_message_size);
    socket.set(zmq::sockopt::sndbuf, o.send_buffer);
    socket.set(zmq::sockopt::rcvbuf, o.receive_buffer);
    socket.set(zmq::sockopt::heartbeat_ivl, o.heartbeat_interval_ms);
    socket.set(zmq::sockopt::heartbeat_timeout, o.heartbeat_timeout_ms);
    socket.set(zmq::sockopt::heartbeat_ttl, o.heartbeat_timeout_ms);
    socket.set(zmq::sockopt::reconnect_ivl, o.reconnect_interval_ms);
    socket.set(zmq::sockopt::reconnect_ivl_max, o.reconnect_interval_max_ms);
    socket.set(zmq::sockopt::tcp_keepalive, o.tcp_keepalive ? 1 : 0);
    socket.set(zmq::sockopt::handshake_ivl, o.handshake_timeout_ms);
    socket.set(zmq::sockopt::immediate, o.immediate ? 1 : 0);
    if (o.curve) set_curve(socket, *o.curve);
    if (!o.name.empty()) {
        int events = ZMQ_EVENT_ACCEPT_FAILED;
        if (o.curve && o.curve->server) {
            events |= ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL;
        }
        const std::string endpoint = ConnectionFailureLog::endpoint(o.name);
        if (zmq_socket_monitor(socket.handle(), endpoint.c_str(), events) != 0) {
            throw zmq::error_t();
        }
    }
    return socket;
}

}  // namespace

zmq::socket_t bind_socket(zmq::context_t& context, zmq::socket_type type,
                          const SocketOptions& options, const std::string& endpoint) {
    zmq::socket_t socket = make_socket(context, type, options);
    try {
        socket.bind(endpoint);
    } catch (const zmq::error_t& e) {
        throw StartupError("cannot bind " + endpoint + ": " + e.what());
    }
    return socket;
}

zmq::socket_t connect_socket(zmq::context_t& context, zmq::socket_type type,
                             const SocketOptions& options, const std::string& endpoint) {
    zmq::socket_t socket = make_socket(context, type, options);
    try {
        socket.connect(endpoint);
    } catch (const zmq::error_t& e) {
        throw StartupError("cannot connect to " + endpoint + ": " + e.what());
    }
    return socket;
}

WatchedSocket connect_watched_socket(zmq::context_t& context, zmq::socket_type type,
                                     const SocketOptions& options, const std::string& endpoint,
                                     int events) {
    assert(options.name.empty());  // a socket has one monitor: the failure log's, or this one
    static std::atomic<unsigned> sockets{0};
    const std::string address = "inproc://taskpipe-watch-" + std::to_string(++sockets);
    zmq::socket_t socket = make_socket(context, type, options);
    if (zmq_socket_monitor(socket.handle(), address.c_str(), events) != 0) throw zmq::error_t();
    zmq::socket_t monitor(context, zmq::socket_type::pair);
    monitor.set(zmq::sockopt::linger, 0);
    monitor.connect(address);
    try {
        socket.connect(endpoint);
    } catch (const zmq::error_t& e) {
        throw StartupError("cannot connect to " + endpoint + ": " + e.what());
    }
    return {std::move(socket), std::move(monitor)};
}

std::string last_endpoint(zmq::socket_t& socket) { return socket.get(zmq::sockopt::last_endpoint); }

bool single_frame(zmq::socket_t& socket, const zmq::message_t& first) {
    if (!first.more()) return true;
    zmq::message_t rest;
    do {
        (void)socket.recv(rest, zmq::recv_flags::none);  // the rest of a message is already here
    } while (rest.more());
    return false;
}

int poll(std::vector<zmq::pollitem_t>& items, std::chrono::milliseconds timeout) {
    try {
        return zmq::poll(items, timeout);
    } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) return 0;
        throw;
    }
}

}  // namespace taskpipe
