#include "support/producer.hpp"

#include <algorithm>

#include "taskpipe/message_io.hpp"
#include "taskpipe/overload.hpp"

namespace taskpipe::testing {

namespace {

zmq::socket_t make_socket(zmq::context_t& context, Producer::Socket type,
                          const std::string& endpoint, int receive_hwm) {
    zmq::socket_t socket(
        context, type == Producer::Socket::req ? zmq::socket_type::req : zmq::socket_type::dealer);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::sndhwm, 100'000);
    socket.set(zmq::sockopt::rcvhwm, receive_hwm);
    socket.set(zmq::sockopt::reconnect_ivl, 50);
    socket.connect(endpoint);
    return socket;
}

std::string text(const std::optional<std::string>& value) { return value ? *value : "-"; }

}  // namespace

Producer::Producer(const std::string& endpoint, Socket socket, int receive_hwm)
    : socket_(make_socket(context_, socket, endpoint, receive_hwm)), req_(socket == Socket::req) {}

template <typename M>
std::uint64_t Producer::send(M message) {
    message.req = next_req_++;
    if (!send_message<ToHead>(socket_, encoder_, message)) return 0;
    return message.req;
}

std::uint64_t Producer::submit(Submit submit) { return send(std::move(submit)); }
std::uint64_t Producer::status(Query query) { return send(std::move(query)); }
std::uint64_t Producer::cancel(std::uint64_t id) { return send(Cancel{0, id}); }

bool Producer::send_frames(const std::vector<std::string>& frames) {
    for (std::size_t i = 0; i < frames.size(); ++i) {
        const auto more = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
        if (!socket_.send(zmq::buffer(frames[i]), more | zmq::send_flags::dontwait)) return false;
    }
    return true;
}

void Producer::take(ToProducer message) {
    std::visit(Overload{
                   [&](Done& done) { dones_[done.id].push_back(std::move(done)); },
                   [&](auto& answer) {
                       ++answers_received_;
                       const std::uint64_t req = answer.req;
                       answers_.insert_or_assign(req, ToProducer(std::move(answer)));
                   },
               },
               message);
}

std::size_t Producer::receive(Deadline deadline) {
    std::size_t taken = 0;
    for (;;) {
        // A REQ socket that has its answer may not receive again before it sends.
        if (req_ && taken > 0) return taken;
        std::optional<Received<ToProducer>> received = recv_message<ToProducer>(socket_);
        if (received) {
            ++taken;
            if (received->message) {
                take(std::move(*received->message));
            } else {
                refused_.push_back(received->error);
            }
            continue;
        }
        if (taken > 0) return taken;
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) return 0;
        zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, std::min(left, std::chrono::milliseconds(100)));
    }
}

std::optional<ToProducer> Producer::answer(std::uint64_t req, Deadline deadline) {
    if (req == 0) return std::nullopt;  // never sent
    if (!receive_until([&] { return answers_.contains(req); }, deadline)) return std::nullopt;
    auto node = answers_.extract(req);
    return std::move(node.mapped());
}

std::optional<Done> Producer::done(std::uint64_t id, Deadline deadline) {
    if (!receive_until([&] { return dones_.contains(id); }, deadline)) return std::nullopt;
    return dones_.at(id).front();
}

std::string describe(const ToProducer& message) {
    auto report = [](const TaskReport& r) {
        return "id " + std::to_string(r.id) + ", " + r.state +
               (r.key ? ", key " + *r.key : std::string()) + ", attempts " +
               std::to_string(r.attempts) + ", stdout " + text(r.out) + ", worker " +
               text(r.worker) + ", head " + std::to_string(r.head);
    };
    return std::visit(
        Overload{
            [](const Accepted& m) {
                return "accepted{req " + std::to_string(m.req) + ", id " + std::to_string(m.id) +
                       (m.created ? ", created, " : ", existing, ") + m.state + "}";
            },
            [&](const State& m) {
                return "state{req " + std::to_string(m.req) + ", " + report(m) + "}";
            },
            [&](const Done& m) { return "done{" + report(m) + "}"; },
            [](const Error& m) {
                return "error{req " + std::to_string(m.req) + ", " + m.code + ": " + m.message +
                       (m.id != 0 ? ", id " + std::to_string(m.id) : std::string()) + "}";
            },
        },
        message);
}

std::string describe(const std::optional<ToProducer>& message) {
    return message ? describe(*message) : "no answer";
}

}  // namespace taskpipe::testing
