// The sockets of the head of the pipeline (the ventilator, in a batch or as a service), made the
// same way by both: the options of each, and the watch on the control connection.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <zmq.hpp>

#include "taskpipe/curve_options.hpp"
#include "taskpipe/sockets.hpp"

namespace taskpipe {

// The PUSH socket the workers take tasks from.
SocketOptions task_socket_options(const std::optional<CurveKeys>& curve,
                                  std::chrono::milliseconds liveness_timeout);
// The DEALER that connects to the sink's control socket.
SocketOptions control_socket_options(const std::optional<CurveKeys>& curve);
// A service's ROUTER for producers (ZAP domain "listen").
SocketOptions listen_socket_options(const std::optional<CurveKeys>& curve);

// Watches `socket` (the control DEALER) for completed handshakes: returns the PAIR socket on
// which each one is an event. The monitor lives as long as `socket`.
zmq::socket_t watch_handshakes(zmq::context_t& context, zmq::socket_t& socket,
                               const std::string& name);
// Takes every event waiting on a watch_handshakes() socket; returns how many there were.
int take_events(zmq::socket_t& monitor);

}  // namespace taskpipe
