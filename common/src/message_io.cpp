#include "taskpipe/message_io.hpp"

namespace taskpipe::detail {

bool send_frame(zmq::socket_ref socket, std::string_view frame) {
    return socket.send(zmq::buffer(frame.data(), frame.size()), zmq::send_flags::dontwait)
        .has_value();
}

bool send_frame(zmq::socket_ref socket, std::string_view peer, std::string_view frame) {
    zmq::message_t id(peer.data(), peer.size());
    if (!socket.send(id, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return false;
    return socket.send(zmq::buffer(frame.data(), frame.size()), zmq::send_flags::dontwait)
        .has_value();
}

std::optional<Received<Message>> recv_any(zmq::socket_ref socket, Framing framing) {
    zmq::message_t frame;
    if (!socket.recv(frame, zmq::recv_flags::dontwait)) return std::nullopt;
    Received<Message> received;
    bool well_formed = true;
    if (framing == Framing::routed) {
        received.peer = frame.to_string();
        well_formed = frame.more();
        // The rest of a message is already here.
        if (well_formed) (void)socket.recv(frame, zmq::recv_flags::none);
    }
    if (frame.more()) {
        well_formed = false;
        zmq::message_t rest;
        do {
            (void)socket.recv(rest, zmq::recv_flags::none);
        } while (rest.more());
    }
    if (!well_formed) {
        received.error = framing == Framing::routed ? "expected one frame after the routing id"
                                                    : "more than one frame";
        return received;
    }
    static_cast<DecodeResult&>(received) =
        decode(std::string_view(frame.data<char>(), frame.size()));
    return received;
}

}  // namespace taskpipe::detail
