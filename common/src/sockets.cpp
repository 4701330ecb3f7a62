#include "taskpipe/sockets.hpp"

#include <cerrno>

namespace taskpipe {

namespace {

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

std::string last_endpoint(zmq::socket_t& socket) { return socket.get(zmq::sockopt::last_endpoint); }

int poll(std::vector<zmq::pollitem_t>& items, std::chrono::milliseconds timeout) {
    try {
        return zmq::poll(items, timeout);
    } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) return 0;
        throw;
    }
}

}  // namespace taskpipe
