// Logs the connections a program's server sockets could not take, which libzmq otherwise keeps
// to itself: accepts that failed for lack of file descriptors (EMFILE, ENFILE: a flood of
// connections, or an open-file limit too low), and, with CURVE, handshakes that failed (a
// client without CURVE, or with the wrong server key), which end before the ZAP handler is
// asked. Lines go to stderr as warnings, rate-limited (rate_limited_log.hpp):
//
//     ventilator warning: cannot accept a connection on tasks (tcp://0.0.0.0:5557): Too many
//         open files (the open-file limit is 1024)
//     sink warning: refused a client on results (tcp://0.0.0.0:5558): the client does not use CURVE
//
// Each server socket is made with SocketOptions::name set; its events are published
// (zmq_socket_monitor) at endpoint(name), where this log listens. Construct it after the context
// and before the sockets, so that it is destroyed after them and before the context.
//
// Thread-safety: one thread of its own; the public functions belong to the owner's thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <zmq.hpp>

namespace taskpipe {

class ConnectionFailureLog {
  public:
    // Starts listening to the sockets called `sockets` (none need exist yet). Throws
    // zmq::error_t when its sockets cannot be made.
    ConnectionFailureLog(zmq::context_t& context, std::vector<std::string> sockets);
    // Stops and joins the thread; quiet.
    ~ConnectionFailureLog();
    ConnectionFailureLog(const ConnectionFailureLog&) = delete;
    ConnectionFailureLog& operator=(const ConnectionFailureLog&) = delete;

    // Failed handshakes and failed accepts seen so far.
    std::uint64_t handshake_failures() const { return handshake_failures_.load(); }
    std::uint64_t accept_failures() const { return accept_failures_.load(); }

    // Where the server socket called `name` publishes its events.
    static std::string endpoint(std::string_view name);

  private:
    void serve(zmq::socket_t& stop, std::vector<zmq::socket_t>& monitors);
    // The line to log for one event from `monitor`, if any.
    std::optional<std::string> describe_event(zmq::socket_t& monitor, const std::string& name);

    std::vector<std::string> names_;
    std::string stop_endpoint_;
    zmq::socket_t stop_;  // the owner's end of a PAIR that wakes the thread to stop
    std::thread thread_;
    std::atomic<std::uint64_t> handshake_failures_{0};
    std::atomic<std::uint64_t> accept_failures_{0};
};

}  // namespace taskpipe
