// `taskpipe run`: a sink, a ventilator and workers started together as one process tree, the
// local case in one command.
//
// The life of a run, in phases: the sink starts and binds its endpoints; then the ventilator
// binds its own; then the workers start (one on this host, and `taskpipe hosts` for -S hosts).
// The run ends when the sink exits; the sink's status is the run's, unless a program could not
// start (2). The programs share one process group of their own: a signal to `taskpipe run`
// (a terminal's ^C reaches only it) is passed to the whole group once, and a second one again,
// which stops them at once. The programs meet over ipc:// sockets in a private directory
// (mkdtemp, mode 0700), removed at the end; with -S the tasks and results sockets are TCP on
// free ports, found once bound.
//
// Not thread-safe; one Run per process (it owns the process's signal mask while it lives).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "child.hpp"
#include "run_options.hpp"

namespace taskpipe {

class Run {
  public:
    // Finds the programs and makes the private directory; throws StartupError.
    explicit Run(RunOptions options);
    ~Run();
    Run(const Run&) = delete;
    Run& operator=(const Run&) = delete;

    // Runs the batch; returns the exit status.
    int run();

  private:
    using Clock = std::chrono::steady_clock;
    enum class Phase { starting_sink, starting_ventilator, running, stopping, done };

    void start_sink();
    void start_ventilator();
    void start_workers();
    bool bound(const std::string& bind, pid_t owner, std::string& local, std::string& remote);

    void handle_signals();
    void reap();
    void step(Clock::time_point now);
    void check_running();
    void fail(const std::string& why);
    void stop_all();
    bool any_worker_left() const;
    bool all_exited() const;
    std::vector<Child*> children();
    int exit_status() const;
    std::chrono::milliseconds poll_timeout(Clock::time_point now) const;
    int stdin_for_ventilator();

    RunOptions options_;
    std::string sink_program_;
    std::string ventilator_program_;
    std::string worker_program_;  // empty without a local worker
    std::string hosts_program_;   // empty without remote workers
    std::filesystem::path dir_;   // the private directory
    RunEndpoints endpoints_;

    sigset_t original_mask_{};
    int signal_fd_ = -1;

    Phase phase_ = Phase::starting_sink;
    Clock::time_point phase_deadline_ = Clock::time_point::max();
    Clock::time_point second_term_at_ = Clock::time_point::max();  // stopping: local helpers
    pid_t group_ = 0;  // the programs' process group (the sink's pid)
    int signals_ = 0;  // SIGINT/SIGTERM/SIGHUP received
    int last_signal_ = 0;
    bool workers_stopped_ = false;  // told to stop once the batch was complete
    // The local worker is to get a second SIGTERM (exit at once) as soon as its first has
    // arrived: two signals of one kind sent together arrive as one.
    std::vector<Child*> quick_stop_;
    std::optional<int> failure_;  // the run's own verdict, overriding the sink's status

    // Declared so that the workers are destroyed (killed if still running) first.
    std::unique_ptr<Child> sink_;
    std::unique_ptr<Child> ventilator_;
    std::unique_ptr<Child> worker_;
    std::unique_ptr<Child> hosts_;
};

// `taskpipe run ARGS...` (argv[0] is "run"): parses, runs and returns the exit status.
int run_command(int argc, const char* const argv[]);

}  // namespace taskpipe
