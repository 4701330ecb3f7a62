// Sending and receiving protocol messages on ZeroMQ sockets: one frame per message (a ROUTER
// adds the peer's routing id in front), typed by the set of messages that the socket carries
// (message.hpp), so that sending a message on the wrong socket does not compile and receiving
// one refuses it.
// Thread-safety: as the socket's; the Encoder is used by one thread at a time.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <zmq.hpp>

#include "taskpipe/codec.hpp"
#include "taskpipe/message.hpp"

namespace taskpipe {

// What recv_message took off a socket: a message of Set, or why the frame was refused.
template <typename Set>
struct Received : Decoded<Set> {
    std::string peer;  // the sender's routing id (a ROUTER socket)
    // A ROUTER socket: " from ADDRESS (key KEY)", as much as ZeroMQ knows of the sender's
    // connection (its CURVE key when it has one), for log lines.
    std::string from;
    // Framing::producer: the message came from a REQ socket (an empty delimiter frame before
    // it), so its answer must carry one too.
    bool delimited = false;
};

enum class Framing {
    single,  // every message is one frame (PUSH, PULL, DEALER)
    routed,  // a ROUTER: the sender's routing id, then one frame
    // A ROUTER facing producers: the routing id, an empty delimiter frame if the sender is a REQ
    // socket, then one frame.
    producer,
};

namespace detail {
// Sends one frame without waiting; false when the socket would block.
bool send_frame(zmq::socket_ref socket, std::string_view frame);
// Sends the routing id `peer` (and an empty delimiter frame when `delimited`), then one frame,
// without waiting; false when that would block.
bool send_frame(zmq::socket_ref socket, std::string_view peer, std::string_view frame,
                bool delimited = false);
// Receives one message without waiting; decodes it as any message, or refuses it (more frames
// than `framing` allows). nullopt when no message is queued.
std::optional<Received<Message>> recv_any(zmq::socket_ref socket, Framing framing);
}  // namespace detail

// Encodes `message` and sends it without waiting: false when the socket would block (no peer,
// or its queue is full), and nothing is sent. M is a message of Set, or Set itself.
template <typename Set, typename M>
requires one_of<M, Set> || std::is_same_v<M, Set>
bool send_message(zmq::socket_ref socket, Encoder& encoder, const M& message) {
    return detail::send_frame(socket, encoder.encode(message));
}

// The same on a ROUTER socket, to the peer whose routing id is `peer`; with `delimited`, in a
// REQ socket's envelope (Received::delimited).
template <typename Set, typename M>
requires one_of<M, Set> || std::is_same_v<M, Set>
bool send_message(zmq::socket_ref socket, std::string_view peer, Encoder& encoder, const M& message,
                  bool delimited = false) {
    return detail::send_frame(socket, peer, encoder.encode(message), delimited);
}

// Receives one message without waiting, as one of Set's: nullopt when none is queued. A message
// of more frames than `framing` says, or that is not one of Set's, is read whole and refused.
template <typename Set>
std::optional<Received<Set>> recv_message(zmq::socket_ref socket,
                                          Framing framing = Framing::single) {
    std::optional<Received<Message>> any = detail::recv_any(socket, framing);
    if (!any) return std::nullopt;
    Received<Set> received;
    received.peer = std::move(any->peer);
    received.from = std::move(any->from);
    received.delimited = any->delimited;
    static_cast<Decoded<Set>&>(received) = narrow<Set>(std::move(*any));
    return received;
}

}  // namespace taskpipe
