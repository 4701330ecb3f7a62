#include "head_connection.hpp"

#include <zmq.h>

#include <utility>

namespace taskpipe {

HeadConnection::HeadConnection(std::string endpoint, bool curve)
    : endpoint_(std::move(endpoint)),
      curve_(curve),
      reason_("no connection to the head at " + endpoint_ + " yet") {}

int HeadConnection::events() {
    return ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_DISCONNECTED |
           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
           ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
}

bool HeadConnection::change(State state, std::string reason) {
    const bool changed = state != state_;
    state_ = state;
    reason_ = std::move(reason);
    return changed;
}

std::string HeadConnection::handshake_hint() const {
    if (!curve_) {
        return "does the head use CURVE? give --curve-key producer.key --curve-server "
               "server.pub";
    }
    return "the wrong --curve-server key, this key not in the head's --curve-producers, or a "
           "head without CURVE";
}

bool HeadConnection::on_event(std::uint16_t event, std::int32_t value) {
    switch (event) {
        case ZMQ_EVENT_CONNECTED:
            transport_connected_ = true;
            return false;
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
            return change(State::up, "");
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
            transport_connected_ = false;
            return change(State::down, "the head refused this producer's CURVE key (ZAP status " +
                                           std::to_string(value) +
                                           "): its public key is not in the head's "
                                           "--curve-producers");
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
            transport_connected_ = false;
            return change(State::down, "the handshake with the head at " + endpoint_ +
                                           " failed: " + handshake_hint());
        case ZMQ_EVENT_DISCONNECTED: {
            const bool during_handshake = transport_connected_ && state_ != State::up;
            transport_connected_ = false;
            if (state_ == State::up) {
                return change(State::down,
                              "the connection to the head at " + endpoint_ + " closed");
            }
            if (during_handshake) {
                return change(State::down, "the head at " + endpoint_ +
                                               " closed the connection during the handshake: " +
                                               handshake_hint());
            }
            return false;
        }
        case ZMQ_EVENT_CONNECT_RETRIED:
            // Nothing accepted the connection (refused, no socket file): only news before the
            // first handshake; once down, the reason it went down stays the better one.
            if (state_ == State::connecting) {
                return change(State::down, "nothing answers at " + endpoint_ +
                                               " (is taskpipe ventilator --serve running and "
                                               "listening there?)");
            }
            return false;
        default:
            return false;
    }
}

}  // namespace taskpipe
