// The connection to the head, as the DEALER socket's monitor reports it (zmq_socket_monitor):
// connecting until the first ZMTP handshake (CURVE included) succeeds, then up, or down with a
// reason a person can act on. ZeroMQ reconnects by itself in every state; this only keeps
// score. No I/O: the Producer feeds it the monitor's events. Not thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace taskpipe {

class HeadConnection {
  public:
    enum class State {
        connecting,  // no handshake yet, and nothing has failed
        up,          // the handshake has succeeded: requests can be sent
        down,        // nothing listens, the handshake failed, or the connection closed
    };

    // `curve`: this producer uses CURVE (for the hint when a handshake fails).
    HeadConnection(std::string endpoint, bool curve);

    // One monitor event (ZMQ_EVENT_*) and its value. Returns true when the state changed.
    bool on_event(std::uint16_t event, std::int32_t value);

    State state() const { return state_; }
    // Why the connection is not up ("nothing answers at ..."); empty when it is.
    const std::string& reason() const { return reason_; }

    // The events to ask zmq_socket_monitor for.
    static int events();

  private:
    bool change(State state, std::string reason);
    std::string handshake_hint() const;

    std::string endpoint_;
    bool curve_;
    State state_ = State::connecting;
    std::string reason_;
    bool transport_connected_ = false;  // TCP/IPC connected, handshake under way
};

}  // namespace taskpipe
