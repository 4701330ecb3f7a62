// The ventilator: reads tasks, sends them to the workers, and keeps a ledger of the tasks in
// flight until the sink acknowledges a result for each.
//
// A task with no result whose deadline passes is sent again (attempt + 1); the deadline moves
// forward whenever the sink reports that a live worker holds the task. A task a worker released
// (it holds its capacity already) is sent again shortly, without counting an attempt. At most
// min(window, the live workers' total capacity) tasks are in flight; when the sink keeps input
// order (Welcome.reorder_window), no task is sent whose id is that window or more above the
// lowest id the sink has not acknowledged. After max_attempts sends
// the task is reported lost to the sink. The batch ends when the input has ended and every task
// is acknowledged or lost. With --resume, the tasks an earlier run's joblog records are not sent:
// their ids go to the sink in Skip messages, and the batch also waits for the sink to
// acknowledge those. Not thread-safe: one thread runs run().
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <zmq.hpp>

#include "input.hpp"
#include "joblog_reader.hpp"
#include "options.hpp"
#include "taskpipe/codec.hpp"
#include "taskpipe/connection_failure_log.hpp"
#include "taskpipe/done_set.hpp"
#include "taskpipe/malformed_log.hpp"
#include "taskpipe/zap_handler.hpp"

namespace taskpipe {

class Ventilator {
  public:
    using Clock = std::chrono::steady_clock;

    // Binds and connects; throws StartupError when it cannot. With CURVE on, the ZAP handler is
    // running before the task socket is made.
    explicit Ventilator(const VentilatorOptions& options);

    // Runs the batch to completion; returns the exit status (program.hpp).
    int run();

    // The endpoint the task socket is bound to (its real port when bound to port *).
    std::string task_endpoint();

  private:
    struct InFlight {
        std::string payload;
        std::uint32_t attempt = 1;
        Clock::time_point deadline;
    };

    void handle_control();
    void on_ack(const Ack& ack);
    void on_alive(const Alive& alive);
    void on_release(const Release& release);
    std::size_t window() const;
    void send_control(const Message& message);
    bool send_task(std::uint64_t id, InFlight& entry);
    void pump_tasks();
    void read_input();
    bool skip_recorded(std::uint64_t id, const std::string& record);
    void flush_skips();
    void check_deadlines(Clock::time_point now);
    bool may_read() const;
    void send_progress(Clock::time_point now);
    bool complete() const;
    int finish();

    VentilatorOptions options_;
    zmq::context_t context_{1};
    std::optional<CurveKeys> curve_;       // none: no security
    ConnectionFailureLog connection_log_;  // outlives the sockets
    std::unique_ptr<ZapHandler> zap_;      // outlives the sockets; null without CURVE
    zmq::socket_t tasks_;
    zmq::socket_t control_;
    InputReader input_;
    RecordedTasks recorded_;  // from the --resume joblog, by id; an entry is dropped once read
    Encoder encoder_;
    std::uint64_t batch_;

    bool welcomed_ = false;
    bool input_done_ = false;
    bool input_failed_ = false;
    bool end_sent_ = false;
    std::uint64_t next_id_ = 1;
    std::unordered_map<std::uint64_t, InFlight> ledger_;
    std::optional<std::uint64_t> unsent_;  // read but not yet accepted by the task socket
    std::deque<std::uint64_t> resend_;     // timed out, waiting to be sent again
    struct Released {
        std::uint64_t id;
        Clock::time_point not_before;
    };
    std::deque<Released> released_;                    // handed back by a full worker
    std::uint64_t capacity_ = 0;                       // of the live workers, from the sink
    bool echo_input_ = false;                          // from the sink's Welcome
    std::uint64_t reorder_window_ = 0;                 // from the sink's Welcome; 0: none
    DoneSet confirmed_;                                // ids the sink acknowledged
    Skip pending_skip_;                                // skipped ids not yet sent to the sink
    std::unordered_set<std::uint64_t> skips_unacked_;  // skipped, not yet acknowledged
    Clock::time_point next_progress_;
    std::uint64_t expected_ = 0;  // records in the input, when it is a file; 0: unknown
    Clock::time_point next_deadline_check_;
    Clock::time_point last_heard_from_sink_ = Clock::now();
    bool sink_silent_ = false;

    std::uint64_t acknowledged_ = 0;
    std::uint64_t failed_ = 0;
    std::uint64_t lost_ = 0;
    std::uint64_t resent_ = 0;
    std::uint64_t released_count_ = 0;
    std::uint64_t skipped_ = 0;
    MalformedLog malformed_;
};

}  // namespace taskpipe
