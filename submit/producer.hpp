// `taskpipe submit`: a producer of a taskpipe service. It owns a DEALER socket connected to the
// head's listen endpoint (ventilator --serve --listen) and its monitor, the input (arguments,
// ids, or stdin) and stdout; the Tracker decides what to send and what each answer means.
//
// A head that is not there is an error at once: the constructor waits for the first handshake
// (--connect-timeout, 1 s) and throws StartupError with the reason ("nothing answers at ...",
// the CURVE key refused). After that, a head that goes away is waited for (Tracker's patience)
// and asked again when it is back. Nothing waits past --timeout. SIGINT or SIGTERM stops the
// command at once (status 3); the tasks already submitted stay with the head.
// Not thread-safe: one thread constructs it and calls run().
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <zmq.hpp>

#include "head_connection.hpp"
#include "options.hpp"
#include "report.hpp"
#include "taskpipe/codec.hpp"
#include "taskpipe/curve_options.hpp"
#include "taskpipe/input.hpp"
#include "taskpipe/malformed_log.hpp"
#include "taskpipe/sockets.hpp"
#include "tracker.hpp"

namespace taskpipe {

class Producer {
  public:
    using Clock = std::chrono::steady_clock;

    // Loads the CURVE keys and starts connecting to options.head; throws StartupError (or
    // KeyFileError) when it cannot. Writes what it prints to `output_fd`.
    Producer(const SubmitOptions& options, int output_fd);

    // Waits for the head's handshake (StartupError when it does not come), then submits, asks
    // or cancels, prints, and returns the exit status (README, "taskpipe submit").
    int run();

  private:
    bool wait_for_head();
    // Feeds the monitor's events to connection_; true when its state changed.
    bool read_monitor();
    void read_answers(Clock::time_point now);
    bool send_requests();
    void feed();
    void print_complete();
    void write(std::string_view bytes);
    void on_connection_change(Clock::time_point now);

    SubmitOptions options_;
    int output_fd_;
    Printing printing_;
    Clock::time_point started_;
    std::optional<Clock::time_point> deadline_;  // --timeout
    zmq::context_t context_{1};
    std::optional<CurveKeys> curve_;
    WatchedSocket head_;  // the DEALER to the head, and its monitor
    HeadConnection connection_;
    Tracker tracker_;
    Encoder encoder_;
    MalformedLog malformed_{"malformed messages from the head"};

    std::optional<InputReader> input_;          // stdin, when the tasks come from there
    std::size_t next_argument_ = 0;             // payloads or ids added so far
    std::optional<std::string> keyed_payload_;  // --key with stdin: the one record, held
    bool input_ended_ = false;                  // every task of the command has been added
    bool input_failed_ = false;
    int status_ = kExitOk;
    std::uint64_t diagnostics_shown_ = 0;
};

}  // namespace taskpipe
