// The ventilator: reads tasks, sends them to the workers, and keeps a ledger of the tasks in
// flight until the sink acknowledges a result for each.
//
// The decisions live in two cores that do no I/O: the Ledger (what to send, deadlines,
// attempts, the window) and the SinkSession (hello, silence, a restarted sink, giving up). This
// class owns the sockets, the input, the clock and the loop, and moves through its phases:
// waiting for the sink's Welcome, reading the input, finishing (End sent, waiting for the last
// acknowledgements), done. With --resume, the tasks an earlier run's joblog records are not
// sent: their ids go to the sink in Skip messages, and the batch also waits for the sink to
// acknowledge those. Everything the sink must know (skips, lost tasks, End) is sent again when a
// Welcome shows that the sink reconnected or was restarted; a restarted sink is also told which
// tasks an earlier instance recorded (Handover). Not thread-safe: one thread runs run().
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "head_watch.hpp"
#include "joblog_reader.hpp"
#include "ledger.hpp"
#include "options.hpp"
#include "sink_session.hpp"
#include "taskpipe/codec.hpp"
#include "taskpipe/connection_failure_log.hpp"
#include "taskpipe/input.hpp"
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
    enum class Phase : std::uint8_t {
        waiting,    // for the sink to welcome the batch
        reading,    // the input, sending tasks
        finishing,  // the input has ended and End is sent; waiting for the last acknowledgements
        done,       // every task acknowledged
    };
    // Why run() stops before the batch is done.
    enum class Stop : std::uint8_t { none, gave_up, sink_aborted };

    Phase next_phase() const;
    void advance();
    void handle_control(Clock::time_point now);
    void on_welcome(const Welcome& welcome, Clock::time_point now);
    void on_ack(const Ack& ack);
    void send_control(const ToSinkControl& message);
    void send_tasks(Clock::time_point now);
    // Sends the tasks the ledger offers in one `tasks` frame (a `task` if it offers one); false
    // when the socket takes no frame now.
    bool send_group(Clock::time_point now);
    void set_group_max(std::uint64_t most);
    void read_input(Clock::time_point now);
    bool skip_recorded(std::uint64_t id, const std::string& record);
    void flush_skips();
    void resend_reports();
    void hand_over();
    void check_deadlines(Clock::time_point now);
    void check_control_connection();
    void send_progress(Clock::time_point now, bool now_or_never = false);
    std::string counts() const;
    int finish();
    int stop(Stop why);

    VentilatorOptions options_;
    zmq::context_t context_{1};
    std::optional<CurveKeys> curve_;       // none: no security
    ConnectionFailureLog connection_log_;  // outlives the sockets
    std::unique_ptr<ZapHandler> zap_;      // outlives the sockets; null without CURVE
    zmq::socket_t tasks_;
    zmq::socket_t control_;
    InputReader input_;
    RecordedTasks recorded_;  // from the --resume joblog, by id; an entry is dropped once read
    zmq::socket_t control_monitor_;  // the control socket's completed handshakes
    Encoder encoder_;
    std::uint64_t batch_;
    Ledger ledger_;
    SinkSession session_;
    HeadWatch watch_{ledger_, session_};

    Phase phase_ = Phase::waiting;
    Stop stop_ = Stop::none;
    bool input_done_ = false;
    bool input_failed_ = false;
    std::uint64_t next_id_ = 1;
    bool echo_input_ = false;  // from the sink's Welcome
    // The most tasks one `tasks` frame may hold (Alive.group_max); below 2, single `task`s.
    std::uint64_t group_max_ = 0;
    TaskGroup group_;           // reused between frames
    std::uint64_t sends_ = 0;   // tasks sent, re-sends included
    std::uint64_t frames_ = 0;  // the frames that carried them
    Skip pending_skip_;         // skipped ids not yet sent to the sink
    // Reported to the sink (skipped: whether it failed; lost: its attempts), not acknowledged.
    std::map<std::uint64_t, bool> skips_unacked_;
    std::map<std::uint64_t, std::uint32_t> lost_unacked_;
    std::vector<std::uint64_t> failed_ids_;  // every task known not to have succeeded
    Abort abort_;                            // from the sink, when it stopped early
    Clock::time_point next_progress_;
    std::uint64_t expected_ = 0;  // records in the input, when it is a file; 0: unknown
    Clock::time_point next_deadline_check_;

    std::uint64_t acknowledged_ = 0;
    std::uint64_t failed_ = 0;
    std::uint64_t lost_ = 0;
    std::uint64_t skipped_ = 0;
    MalformedLog malformed_;
};

}  // namespace taskpipe
