// A producer of a service (docs/protocol.md, "Service mode"), for the tests that drive the real
// head: a DEALER (or REQ) socket connected to the head's listen endpoint that sends submit,
// status and cancel, numbering them itself, and takes back accepted, state, done and error with
// the protocol's own codec.
//
// Requests may be pipelined: what arrives while the producer waits for one answer is kept, the
// answers by req and the dones by id, for later calls to find. A REQ producer has one request
// outstanding at a time, and gets no dones.
//
// Lifetime: the socket and its context live as long as the Producer; the destructor closes
// them at once (linger 0), like a producer that goes away. Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "support/wait.hpp"
#include "taskpipe/codec.hpp"
#include "taskpipe/message.hpp"

namespace taskpipe::testing {

class Producer {
  public:
    enum class Socket { dealer, req };

    // Connects to `endpoint` (the head need not be there yet: requests wait in the socket).
    // `receive_hwm`: the messages its socket queues before the head's further ones wait (and
    // then are dropped by the head).
    explicit Producer(const std::string& endpoint, Socket socket = Socket::dealer,
                      int receive_hwm = 100'000);

    // Send a request, with the next req number (which they return). False from send(): the
    // socket would block (a DEALER's queue is full).
    std::uint64_t submit(Submit submit);
    std::uint64_t status(Query query);
    std::uint64_t cancel(std::uint64_t id);
    // Any frames, as they are: for malformed input. Returns false if the socket would block.
    bool send_frames(const std::vector<std::string>& frames);

    // The answer (accepted, state or error) to `req`, waiting for it until `deadline`.
    std::optional<ToProducer> answer(std::uint64_t req, Deadline deadline);
    // Sends a request and waits for its answer.
    std::optional<ToProducer> ask(Submit submit, Deadline deadline) {
        return answer(this->submit(std::move(submit)), deadline);
    }
    std::optional<ToProducer> ask(Query query, Deadline deadline) {
        return answer(status(std::move(query)), deadline);
    }
    std::optional<ToProducer> ask_cancel(std::uint64_t id, Deadline deadline) {
        return answer(cancel(id), deadline);
    }

    // The first done pushed for task `id`, waiting for it until `deadline`.
    std::optional<Done> done(std::uint64_t id, Deadline deadline);

    // Takes what has arrived, waiting at most until `deadline` for the first message; returns
    // how many messages it took.
    std::size_t receive(Deadline deadline);
    // Receives until `condition()` holds or the deadline passes; returns whether it holds.
    template <typename Condition>
    bool receive_until(Condition&& condition, Deadline deadline) {
        while (!condition()) {
            if (Clock::now() >= deadline) return condition();
            receive(std::min(deadline, Clock::now() + std::chrono::milliseconds(50)));
        }
        return true;
    }

    // Every done received so far, by task id (a task's done may come more than once: a bug).
    const std::map<std::uint64_t, std::vector<Done>>& dones() const { return dones_; }
    // How many answers to `req`s were received so far.
    std::size_t answers_received() const { return answers_received_; }
    // Frames from the head that are not a message for a producer (none expected).
    const std::vector<std::string>& refused() const { return refused_; }

    std::uint64_t next_req() const { return next_req_; }

  private:
    template <typename M>
    std::uint64_t send(M message);
    void take(ToProducer message);

    zmq::context_t context_{1};
    zmq::socket_t socket_;
    bool req_;
    Encoder encoder_;
    std::uint64_t next_req_ = 1;
    std::map<std::uint64_t, ToProducer> answers_;  // by req, not yet asked for
    std::map<std::uint64_t, std::vector<Done>> dones_;
    std::size_t answers_received_ = 0;
    std::vector<std::string> refused_;
};

// A head's message, in one line, for failure messages: "accepted{req 1, id 3, queued}".
std::string describe(const ToProducer& message);
std::string describe(const std::optional<ToProducer>& message);

// The message, if it is an M.
template <typename M>
const M* as(const std::optional<ToProducer>& message) {
    return message ? std::get_if<M>(&*message) : nullptr;
}

}  // namespace taskpipe::testing
