// Many producers at once, each a bare ZMTP 3.0 connection written by hand (the NULL mechanism,
// socket type DEALER) over one file descriptor: lets one test process be 10,000 producers of a
// head, where a libzmq socket would take a second descriptor for its mailbox, and the test's
// open-file limit with it. On the wire each one is a DEALER: the greeting, READY, one frame per
// message; it answers the head's PINGs with PONGs, so that the head's heartbeat keeps it.
//
// Lifetime: the connections close with the Crowd. Not thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "support/wait.hpp"

namespace taskpipe::testing {

class Crowd {
  public:
    // Connects `count` producers to `endpoint` (ipc:// only), each within `deadline`; throws
    // std::system_error when one cannot connect, std::invalid_argument for another transport.
    Crowd(const std::string& endpoint, std::size_t count, Deadline deadline);
    ~Crowd();
    Crowd(const Crowd&) = delete;
    Crowd& operator=(const Crowd&) = delete;

    std::size_t size() const { return peers_.size(); }

    // Queues `frame` as one message from producer `i`; sent by the next pump() once the
    // connection's handshake is over (libzmq closes a connection that sends a message before).
    void send(std::size_t i, std::string_view frame);

    // Writes what is queued and reads what has come, until `condition()` holds or `deadline`
    // passes; returns whether it holds.
    template <typename Condition>
    bool pump_until(Condition&& condition, Deadline deadline) {
        while (!condition()) {
            if (Clock::now() >= deadline) return condition();
            pump(std::chrono::milliseconds(50));
        }
        return true;
    }

    // The messages producer `i` received (one frame each), in order.
    const std::vector<std::string>& received(std::size_t i) const { return peers_[i].messages; }
    // How many messages all producers received.
    std::size_t messages() const { return messages_; }
    // How many connections the head closed (or sent a ZMTP ERROR on).
    std::size_t closed() const { return closed_; }

  private:
    struct Peer {
        int fd = -1;
        std::string out;      // bytes to write
        std::string waiting;  // messages queued before the head's READY, written after it
        std::string in;       // bytes read, not yet parsed
        bool greeted = false;
        bool ready = false;  // the head's READY came: the handshake is over
        bool closed = false;
        std::vector<std::string> messages;
    };

    // One poll of every connection, waiting at most `wait`.
    void pump(std::chrono::milliseconds wait);
    void parse(Peer& peer);
    void close(Peer& peer);

    std::vector<Peer> peers_;
    std::size_t messages_ = 0;
    std::size_t closed_ = 0;
};

}  // namespace taskpipe::testing
