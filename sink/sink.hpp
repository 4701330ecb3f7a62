// The sink: collects results, writes each task's output exactly once, acknowledges results to
// the ventilator, and knows when the batch is complete.
//
// It serves one batch: the first ventilator to say Hello, and takes control messages only from
// that ventilator's connection. A later Hello for the same batch moves the conversation to a new
// connection (ZeroMQ replaced one whose peer was paused or cut off) when it names this sink's
// instance, or when the old connection has been silent for a while; otherwise it is refused.
// A sink that took over a running batch (it was restarted) learns from the ventilator's
// Handover which tasks the sink before it recorded. Without a word from the ventilator for
// --ventilator-timeout the sink gives up (exit 4); when it stops early for any other reason it
// tells the ventilator (Abort). Results that arrive before that Hello
// are held (up to a byte limit), results of other batches and duplicates are dropped (and
// acknowledged again, so the ventilator stops re-sending). The batch is complete when the
// ventilator's End has given the total and every id from 1 to total has a result or was
// reported lost or skipped. With --keep-order, output waits for the lowest unwritten id; the
// ventilator, told the reorder window in Welcome, never sends a task the window or more past it,
// so at most that many results are held. Not thread-safe: one thread runs run() (the metrics
// server only reads the Stats).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <zmq.hpp>

#include "joblog.hpp"
#include "metrics_server.hpp"
#include "options.hpp"
#include "output.hpp"
#include "progress.hpp"
#include "results_dir.hpp"
#include "stats.hpp"
#include "taskpipe/codec.hpp"
#include "taskpipe/connection_failure_log.hpp"
#include "taskpipe/done_set.hpp"
#include "taskpipe/malformed_log.hpp"
#include "taskpipe/program.hpp"
#include "taskpipe/zap_handler.hpp"

namespace taskpipe {

class Sink {
  public:
    using Clock = std::chrono::steady_clock;

    // Binds both sockets; throws StartupError when it cannot. Results go to `output_fd`. With
    // CURVE on, the ZAP handler is running before either socket is made.
    explicit Sink(const SinkOptions& options, int output_fd = 1);

    // Runs until the batch is complete (or a signal); returns the exit status.
    int run();

    std::string results_endpoint();
    std::string control_endpoint();

  private:
    void receive_results();
    void receive_control();
    void on_result(Result& result);
    void on_lost(const Lost& lost);
    void on_skip(const Skip& skip);
    void finish_task(Result& result);
    void report_failure(const Result& result);
    void emit(const Result& result);
    void advance_ordered_output();
    void write_stats_file(bool complete);
    // Whether any output shows the tasks' inputs, so that the workers must send them back.
    bool shows_input() const {
        return options_.jsonl || options_.tag || !options_.joblog.empty() ||
               !options_.results_dir.empty();
    }
    void on_heartbeat(const Heartbeat& beat);
    void on_release(const WorkerRelease& release);
    std::uint64_t live_capacity();
    // The smallest group_max of the live workers that take tasks (0 if any gave none).
    std::uint64_t live_group_max();
    void on_control(const std::string& peer, const std::string& from, const ToSinkControl& message,
                    Clock::time_point now);
    void on_hello(const std::string& peer, const std::string& from, const Hello& hello,
                  Clock::time_point now);
    void on_handover(const Handover& handover);
    void on_pending(const Pending& pending);
    void hold_for_the_head(Result& result);
    static Outcome outcome_of(const Result& result);
    void on_record(const Record& record);
    void check_pause(Clock::time_point now, Clock::duration expected);
    void abort(ExitCode status, const std::string& reason);
    int interrupted();
    int give_up(Clock::time_point now);
    std::string written_text() const;
    void send_to_ventilator(const ToVentilatorControl& message);
    void flush_output();
    void flush_acks();
    bool complete() const { return total_ && done_.size() == *total_; }
    void count_malformed(const std::string& where, const std::string& why);
    void log_summary();

    SinkOptions options_;
    zmq::context_t context_{1};
    std::optional<CurveKeys> curve_;       // none: no security
    ConnectionFailureLog connection_log_;  // outlives the sockets
    std::unique_ptr<ZapHandler> zap_;      // outlives the sockets; null without CURVE
    zmq::socket_t results_;
    zmq::socket_t control_;
    std::unique_ptr<ResultWriter> writer_;
    std::optional<ResultsDirectory> results_dir_;
    ProgressReport progress_;
    std::unique_ptr<Joblog> joblog_;  // null without --joblog
    Encoder encoder_;

    const std::uint64_t instance_;  // this sink process, in Welcome and Alive
    std::uint64_t batch_ = 0;       // 0 until a ventilator says Hello
    std::string ventilator_;        // its routing id on the control socket
    Clock::time_point last_heard_from_ventilator_;
    Clock::time_point last_loop_;
    std::unordered_set<std::uint64_t> handed_over_failed_;
    std::unordered_set<std::uint64_t> lost_ids_;  // recorded as lost (a batch's)
    std::optional<std::uint64_t> total_;
    bool bye_ = false;
    DoneSet done_;
    Ack pending_ack_;
    // With --keep-order: results finished ahead of next_out_, the lowest id not yet written.
    std::map<std::uint64_t, Result> held_;
    std::uint64_t next_out_ = 1;
    std::vector<Result> early_;  // results that came before the Hello
    // A service's results, by id, until the head says which are the tasks' recorded ones.
    std::map<std::uint64_t, Result> held_for_head_;
    std::size_t held_bytes_ = 0;
    std::size_t early_bytes_ = 0;
    std::uint64_t capacity_told_ = 0;   // the live capacity the ventilator was told last
    std::uint64_t group_max_told_ = 0;  // and the most tasks in a frame
    Clock::time_point completed_at_;
    Clock::time_point next_sink_beat_;

    Stats stats_;                             // and the worker table (live capacity)
    std::unique_ptr<MetricsServer> metrics_;  // null without --metrics; reads stats_, so after it
    std::uint64_t failures_reported_ = 0;
    std::uint64_t written_ = 0;  // results written out (skipped and held ones are not)
    MalformedLog malformed_;
    // Control messages from peers other than the batch's ventilator.
    MalformedLog refused_{"refused control messages"};
};

}  // namespace taskpipe
