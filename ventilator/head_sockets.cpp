#include "head_sockets.hpp"

#include <algorithm>

namespace taskpipe {

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
    o.linger_ms = 1000;      // gives Bye time to leave; the sink does not depend on it
    o.receive_hwm = 100000;  // a service's head gets an Outcome per result: room for a burst
    o.max_message_size = 1 << 20;
    return o;
}

SocketOptions listen_socket_options(const std::optional<CurveKeys>& curve) {
    SocketOptions o;
    if (curve) o.curve = curve_server_socket(*curve, "listen");
    o.name = "listen";
    o.linger_ms = 1000;  // the last answers at exit; producers ask again if they miss them
    // Unread answers and notices a producer may have queued before further ones are dropped.
    o.send_hwm = 10000;
    o.receive_hwm = 10000;
    o.max_message_size = 2 << 20;  // a 1 MiB payload and its envelope; larger: disconnected
    return o;
}

zmq::socket_t watch_handshakes(zmq::context_t& context, zmq::socket_t& socket,
                               const std::string& name) {
    const std::string address = "inproc://taskpipe-" + name + "-monitor";
    if (zmq_socket_monitor(socket.handle(), address.c_str(), ZMQ_EVENT_HANDSHAKE_SUCCEEDED) != 0) {
        throw zmq::error_t();
    }
    zmq::socket_t monitor(context, zmq::socket_type::pair);
    monitor.set(zmq::sockopt::linger, 0);
    monitor.connect(address);
    return monitor;
}

int take_events(zmq::socket_t& monitor) {
    int events = 0;
    zmq::message_t event;
    while (monitor.recv(event, zmq::recv_flags::dontwait)) {
        (void)single_frame(monitor, event);  // the second frame names the endpoint
        ++events;
    }
    return events;
}

}  // namespace taskpipe
