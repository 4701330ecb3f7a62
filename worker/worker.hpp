// The worker: pulls tasks from the ventilator, runs up to `concurrency` of them at once, and
// pushes each result to the sink, with a heartbeat that names every task it holds.
//
// It takes tasks off the socket at every wake-up of its loop, and at once when it has a free
// slot or holds its capacity; the heartbeat takes them first, so that every task it has
// received is named in its next heartbeat: the ventilator re-sends only tasks that no live
// worker holds.
// It holds at most `capacity` tasks (running and queued): about 100 ms of work at its own pace,
// and at least twice its concurrency. Tasks beyond that are released at once, through the
// sink, for the ventilator to give to another worker: a slow worker does not hoard tasks that
// fast workers could run.
// Its phases (phase.hpp): running; on the first SIGINT/SIGTERM, draining (it takes no new
// task, releases the queued ones, finishes the running ones and delivers their results); done
// (it exits 0). A second signal kills the running commands' process groups and exits at once.
// Each running task is a Job (job.hpp): the loop polls what the jobs watch, wakes at their
// times and turns their outcomes into results.
// Not thread-safe: one thread runs run().
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "builtin.hpp"
#include "capacity.hpp"
#include "command_job.hpp"
#include "job.hpp"
#include "options.hpp"
#include "phase.hpp"
#include "taskpipe/codec.hpp"
#include "taskpipe/malformed_log.hpp"

namespace taskpipe {

class Worker {
  public:
    using Clock = std::chrono::steady_clock;

    // Connects both sockets; throws StartupError when it cannot.
    explicit Worker(const WorkerOptions& options);

    // Runs until shut down by a signal; returns the exit status.
    int run();

  private:
    // A task received and not yet answered, with the number of times it has already run here.
    struct Held {
        Task task;
        unsigned runs = 0;
        Clock::time_point not_before;  // for a re-run after a failure
        bool grouped = false;          // it came in a `tasks` frame: its result may be grouped
    };

    // A task whose handler has started and has no result yet.
    struct Running {
        Held held;
        Clock::time_point started;
        std::uint64_t started_us = 0;
        std::unique_ptr<Job> job;
    };

    void receive_tasks();
    void take(Task& task, bool grouped);
    void watch_task_connection();
    void reconnect_if_abandoned(Clock::time_point now);
    // Whether a task arriving now needs the loop at once: to start it (a slot is free) or to
    // release it (the worker holds its capacity).
    bool must_wake_for_tasks() const;
    void close_task_socket();
    void flush_releases();
    void start_tasks();
    void start(Held held);
    std::unique_ptr<Job> make_job(const Task& task, Clock::time_point now) const;
    void complete(Held& held, Result& result);
    void complete(Running& running, JobOutcome outcome);
    void send_result(Result& result, bool grouped);
    // Encodes the results gathered in group_ as one `results` frame at the end of outbox_.
    void seal_group();
    bool unsent() const { return !outbox_.empty() || !group_.results.items.empty(); }
    // The most tasks this worker takes in one `tasks` frame (its heartbeat's group_max).
    std::uint32_t group_max() const;
    // Sends the results waiting in outbox_ if they have waited kResultBatch, or nothing else
    // runs, or `now_or_never`; keeps what the sink socket does not take.
    void flush_outbox(bool now_or_never = false);
    void send_heartbeat();
    void update_capacity(Clock::time_point now);
    std::size_t held() const { return queue_.size() + running_.size() + waiting_.size(); }
    void enter(Phase next);
    void begin_drain();
    Clock::time_point next_wake() const;
    Result make_result(const Held& held, Clock::time_point started, std::uint64_t started_us) const;

    WorkerOptions options_;
    CommandLimits command_limits_;
    std::optional<Builtin> builtin_;
    std::string host_;
    std::uint32_t pid_;
    zmq::context_t context_{1};
    std::optional<CurveKeys> curve_;      // none: no security
    std::optional<zmq::socket_t> tasks_;  // closed when draining
    // Connection events of tasks_: see reconnect_if_abandoned().
    std::optional<zmq::socket_t> tasks_monitor_;
    std::optional<Clock::time_point> dropped_at_;  // the last event was a drop, seen then
    zmq::socket_t results_;
    Encoder encoder_;

    Phase phase_ = Phase::running;
    std::deque<Held> queue_;
    std::vector<Held> waiting_;  // failed, to be re-run after a delay
    std::vector<Running> running_;
    std::deque<std::string> outbox_;  // encoded results not handed to the sink socket yet
    ResultGroup group_;               // results of grouped tasks, not encoded yet
    std::size_t group_bytes_ = 0;     // the bytes of their outputs and inputs
    Clock::time_point first_unsent_;  // when the oldest of them (or of outbox_) was made
    bool sink_full_ = false;          // the sink socket refused the last one
    Clock::time_point next_heartbeat_;
    std::uint32_t capacity_;                // tasks held at most: pace_'s, 0 when draining
    std::uint32_t announced_capacity_ = 0;  // as last sent in a heartbeat
    Capacity pace_{options_.concurrency, Clock::now()};
    std::vector<TaskRef> releasing_;

    std::uint64_t completed_ = 0;
    std::uint64_t failed_ = 0;
    MalformedLog malformed_;
};

}  // namespace taskpipe
