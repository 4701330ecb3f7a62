// The ventilator as a service (ventilator --serve): a pipeline that does not end. Producers
// submit tasks on the listen socket and hear back when each is done; workers and the sink are
// the same as in a batch.
//
// The decisions live in cores without I/O: the ServiceDesk (submissions, questions, the one
// recorded result of each task, over the TaskStore), the Ledger (what is in flight, deadlines,
// attempts, the window) and the SinkSession (hello, silence, a restarted sink). This class owns
// the sockets, the clock and the loop. One loop iteration reads what has arrived, lets the desk
// commit it as one group (one fsync with --store) and only then answers, dispatches and tells
// the sink which results to write.
//
// SIGTERM drains: new submissions are refused (`draining`), the tasks in flight are finished
// (for at most --drain-timeout), then it exits 0. Tasks queued but not sent stay in the store
// for the next start (without --store they are gone, and it says how many). A second signal
// exits at once. Not thread-safe: one thread runs run().
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <zmq.hpp>

#include "head_watch.hpp"
#include "ledger.hpp"
#include "options.hpp"
#include "service_desk.hpp"
#include "sink_session.hpp"
#include "store.hpp"
#include "taskpipe/codec.hpp"
#include "taskpipe/connection_failure_log.hpp"
#include "taskpipe/malformed_log.hpp"
#include "taskpipe/zap_handler.hpp"

namespace taskpipe {

class Service {
  public:
    using Clock = std::chrono::steady_clock;

    // Opens the store, binds and connects; throws StartupError (or StoreError) when it cannot.
    explicit Service(const VentilatorOptions& options);

    // Serves until SIGINT/SIGTERM; returns the exit status (0 after a drain).
    int run();

    std::string task_endpoint();
    std::string listen_endpoint();

  private:
    void handle_control(Clock::time_point now, std::uint64_t now_us);
    void handle_requests(Clock::time_point now, std::uint64_t now_us);
    void apply(ServiceDesk::Effects effects);
    void reply(const ServiceDesk::Reply& reply);
    void dispatch(Clock::time_point now, std::uint64_t now_us);
    void send_tasks(Clock::time_point now);
    void check_deadlines(Clock::time_point now, std::uint64_t now_us);
    void check_control_connection();
    void send_control(const ToSinkControl& message);
    void send_progress(Clock::time_point now);
    void begin_drain(Clock::time_point now);
    Clock::duration poll_timeout(Clock::time_point now, std::uint64_t now_us) const;

    VentilatorOptions options_;
    zmq::context_t context_{1};
    std::optional<CurveKeys> curve_;  // none: no security
    ConnectionFailureLog accept_failures_;
    std::unique_ptr<ZapHandler> zap_;  // outlives the sockets; null without CURVE
    std::unique_ptr<TaskStore> store_;
    zmq::socket_t tasks_;
    zmq::socket_t listen_;
    zmq::socket_t control_;
    zmq::socket_t control_monitor_;  // the control socket's completed handshakes
    Encoder encoder_;
    ServiceDesk desk_;
    Ledger ledger_;
    SinkSession session_;
    HeadWatch watch_{ledger_, session_};

    bool draining_ = false;
    bool echo_input_ = false;  // from the sink's Welcome
    Clock::time_point drain_deadline_;
    bool sink_refused_ = false;  // the sink's last answer to Hello was a Reject
    Clock::time_point next_deadline_check_;
    Clock::time_point next_progress_;
    Clock::time_point next_expiry_;
    std::optional<std::string> store_failing_;  // the last store error, while it lasts
    // Answers and notices not sent: the producer's queue was full, or it was gone.
    std::uint64_t replies_dropped_ = 0;
    MalformedLog malformed_;                                 // from the sink
    MalformedLog malformed_requests_{"malformed requests"};  // from producers
};

}  // namespace taskpipe
