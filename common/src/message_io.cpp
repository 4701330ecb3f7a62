#include "taskpipe/message_io.hpp"

namespace taskpipe::detail {

namespace {

// " from ADDRESS (key KEY)", as much of it as ZeroMQ knows about the connection `frame` came on.
std::string describe_sender(zmq::message_t& frame) {
    auto property = [&](const char* name) -> std::string {
        const char* value = zmq_msg_gets(frame.handle(), name);
        return value != nullptr ? value : "";
    };
    std::string text;
    if (const std::string address = property("Peer-Address"); !address.empty()) {
        text += " from " + address;
    }
    if (const std::string key = property("User-Id"); !key.empty()) text += " (key " + key + ")";
    return text;
}

}  // namespace

bool send_frame(zmq::socket_ref socket, std::string_view frame) {
    return socket.send(zmq::buffer(frame.data(), frame.size()), zmq::send_flags::dontwait)
        .has_value();
}

bool send_frame(zmq::socket_ref socket, std::string_view peer, std::string_view frame,
                bool delimited) {
    zmq::message_t id(peer.data(), peer.size());
    if (!socket.send(id, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return false;
    // A ROUTER sends the rest of a message whose routing id it took: these do not block.
    if (delimited) (void)socket.send(zmq::message_t(), zmq::send_flags::sndmore);
    return socket.send(zmq::buffer(frame.data(), frame.size()), zmq::send_flags::dontwait)
        .has_value();
}

std::optional<Received<Message>> recv_any(zmq::socket_ref socket, Framing framing) {
    zmq::message_t frame;
    if (!socket.recv(frame, zmq::recv_flags::dontwait)) return std::nullopt;
    Received<Message> received;
    bool well_formed = true;
    if (framing != Framing::single) {
        received.peer = frame.to_string();
        well_formed = frame.more();
        // The rest of a message is already here.
        if (well_formed) (void)socket.recv(frame, zmq::recv_flags::none);
        if (well_formed && framing == Framing::producer && frame.size() == 0 && frame.more()) {
            received.delimited = true;  // a REQ socket's envelope
            (void)socket.recv(frame, zmq::recv_flags::none);
        }
        received.from = describe_sender(frame);
    }
    if (frame.more()) {
        well_formed = false;
        zmq::message_t rest;
        do {
            (void)socket.recv(rest, zmq::recv_flags::none);
        } while (rest.more());
    }
    if (!well_formed) {
        received.error = framing != Framing::single ? "expected one frame after the routing id"
                                                    : "more than one frame";
        return received;
    }
    static_cast<DecodeResult&>(received) =
        decode(std::string_view(frame.data<char>(), frame.size()));
    return received;
}

}  // namespace taskpipe::detail
