#include "run.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <system_error>
#include <thread>

#include "dispatch.hpp"
#include "listening_port.hpp"
#include "taskpipe/log.hpp"
#include "taskpipe/sockets.hpp"

namespace taskpipe {

namespace {

using namespace std::chrono_literals;

// How long the sink and the ventilator may take to bind their endpoints.
constexpr auto kStartupTimeout = 10s;
// After the batch: the local programs get SIGTERM, and a second one (exit at once) after this.
// A worker has nothing left to run by then; what it may wait for is its sockets' linger.
constexpr auto kHelperGrace = 500ms;
// Then the hosts launcher's own --stop-timeout (60 s), and a margin, before SIGKILL.
constexpr auto kStopTimeout = 75s;
// While starting: how often to look whether an endpoint is bound.
constexpr auto kStartupPoll = 1ms;

// A private directory for the ipc:// sockets, short enough for their paths (108 bytes).
std::filesystem::path make_private_dir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string base = tmp && *tmp ? tmp : "/tmp";
    if (base.size() > 60) base = "/tmp";
    std::string pattern = base + "/taskpipe-run.XXXXXX";
    if (!mkdtemp(pattern.data())) {
        throw StartupError("cannot make a private directory in " + base + ": " +
                           std::error_code(errno, std::generic_category()).message());
    }
    return pattern;
}

bool is_socket(const std::string& path) {
    struct stat info {};
    return stat(path.c_str(), &info) == 0 && S_ISSOCK(info.st_mode);
}

bool joblog_has_records(const std::string& path) {
    struct stat info {};
    return !path.empty() && stat(path.c_str(), &info) == 0 && info.st_size > 0;
}

// Copies the terminal to `out` until end of input (^D), so that the ventilator, in a process
// group that is not the terminal's foreground group, reads a pipe instead of the terminal.
void relay(int in, int out) {
    std::array<char, 4096> buffer{};
    for (;;) {
        const ssize_t got = read(in, buffer.data(), buffer.size());
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        for (ssize_t sent = 0; sent < got;) {
            const ssize_t n =
                write(out, buffer.data() + sent, static_cast<std::size_t>(got - sent));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                close(out);
                return;
            }
            sent += n;
        }
    }
    close(out);
}

}  // namespace

Run::Run(RunOptions options) : options_(std::move(options)) {
    sink_program_ = program_path("taskpipe-sink");
    ventilator_program_ = program_path("taskpipe-ventilator");
    if (runs_local_worker(options_)) worker_program_ = program_path("taskpipe-worker");
    if (runs_remote_workers(options_)) hosts_program_ = program_path("taskpipe-hosts");
    dir_ = make_private_dir();
    const std::string ipc = "ipc://" + dir_.string() + "/";
    endpoints_.control = ipc + "control";
    if (hosts_program_.empty()) {
        endpoints_.tasks_bind = endpoints_.tasks_connect = ipc + "tasks";
        endpoints_.results_bind = endpoints_.results_connect = ipc + "results";
    } else {
        endpoints_.tasks_bind = endpoints_.results_bind = "tcp://*:*";
    }

    sigset_t handled;
    sigemptyset(&handled);
    for (int signo : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&handled, signo);
    sigprocmask(SIG_BLOCK, &handled, &original_mask_);
    signal_fd_ = signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signal_fd_ < 0) {
        const int error = errno;
        sigprocmask(SIG_SETMASK, &original_mask_, nullptr);
        std::filesystem::remove_all(dir_);
        throw std::system_error(error, std::generic_category(), "signalfd");
    }
}

Run::~Run() {
    hosts_.reset();
    worker_.reset();
    ventilator_.reset();
    sink_.reset();
    close(signal_fd_);
    sigprocmask(SIG_SETMASK, &original_mask_, nullptr);
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
}

int Run::stdin_for_ventilator() {
    if (!isatty(STDIN_FILENO)) return STDIN_FILENO;
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
        throw std::system_error(errno, std::generic_category(), "pipe2");
    }
    log_info("reading the tasks from the terminal, one per line; end them with ^D");
    std::thread(relay, STDIN_FILENO, pipe_fds[1]).detach();
    return pipe_fds[0];
}

void Run::start_sink() {
    sink_ = std::make_unique<Child>(sink_command(sink_program_, options_, endpoints_),
                                    ChildStdio{-1, STDOUT_FILENO}, 0, original_mask_);
    group_ = sink_->pid();
    phase_ = Phase::starting_sink;
    phase_deadline_ = Clock::now() + kStartupTimeout;
}

void Run::start_ventilator() {
    const bool reads_file =
        std::find(options_.ventilator_args.begin(), options_.ventilator_args.end(), "--input") !=
        options_.ventilator_args.end();
    const int in = reads_file ? -1 : stdin_for_ventilator();
    ventilator_ =
        std::make_unique<Child>(ventilator_command(ventilator_program_, options_, endpoints_,
                                                   joblog_has_records(options_.joblog)),
                                ChildStdio{in, -1}, group_, original_mask_);
    if (in > STDIN_FILENO) close(in);
    phase_ = Phase::starting_ventilator;
    phase_deadline_ = Clock::now() + kStartupTimeout;
}

void Run::start_workers() {
    if (!hosts_program_.empty()) {
        hosts_ = std::make_unique<Child>(hosts_command(hosts_program_, options_, endpoints_),
                                         ChildStdio{}, group_, original_mask_);
    }
    if (!worker_program_.empty()) {
        worker_ =
            std::make_unique<Child>(local_worker_command(worker_program_, options_, endpoints_),
                                    ChildStdio{}, group_, original_mask_);
    }
    phase_ = Phase::running;
    phase_deadline_ = Clock::time_point::max();
}

// Whether `owner` has bound `bind`. An ipc:// endpoint is its own address; for tcp://*:* the
// port it got gives the addresses a local worker (`local`) and the other hosts (`remote`)
// connect to.
bool Run::bound(const std::string& bind, pid_t owner, std::string& local, std::string& remote) {
    if (bind.starts_with("ipc://")) return is_socket(bind.substr(6));
    const auto port = listening_tcp_port(owner);
    if (!port) return false;
    local = "tcp://127.0.0.1:" + std::to_string(*port);
    remote = "tcp://" + options_.server + ":" + std::to_string(*port);
    return true;
}

void Run::handle_signals() {
    signalfd_siginfo info{};
    while (read(signal_fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        if (info.ssi_signo == SIGCHLD) continue;  // reap() looks at every child
        const int signo = static_cast<int>(info.ssi_signo);
        ++signals_;
        last_signal_ = signo;
        // SIGHUP (the terminal went away) is a request to stop, as SIGTERM is.
        const int forwarded = signo == SIGHUP ? SIGTERM : signo;
        if (signals_ == 1 && phase_ != Phase::stopping) {
            log_warning(
                "interrupted: no new task starts; the running ones finish (a second ^C or "
                "SIGTERM stops them at once)");
        }
        if (group_ > 0) ::kill(-group_, forwarded);
        if (phase_ == Phase::starting_sink || phase_ == Phase::starting_ventilator) {
            phase_ = Phase::stopping;  // nothing new starts; what runs has its signal
        }
        if (signals_ >= 2) {
            phase_ = Phase::stopping;
            phase_deadline_ = std::min(phase_deadline_, Clock::now() + 5s);
        }
    }
}

std::vector<Child*> Run::children() {
    std::vector<Child*> all;
    for (auto* child : {sink_.get(), ventilator_.get(), worker_.get(), hosts_.get()}) {
        if (child) all.push_back(child);
    }
    return all;
}

void Run::reap() {
    for (Child* child : children()) child->reap();
}

bool Run::all_exited() const {
    for (const auto* child : {sink_.get(), ventilator_.get(), worker_.get(), hosts_.get()}) {
        if (child && !child->exited()) return false;
    }
    return true;
}

bool Run::any_worker_left() const {
    return (worker_ && !worker_->exited()) || (hosts_ && !hosts_->exited());
}

void Run::fail(const std::string& why) {
    if (!why.empty()) log_error(why);
    if (!failure_) failure_ = kExitUsage;
    stop_all();
}

// Ends the run: the programs still running get SIGTERM; the ventilator and a local worker,
// which have nothing left to do for a sink that is gone, a second one as soon as the first has
// arrived, so that they do not wait out their sockets' linger.
void Run::stop_all() {
    if (phase_ == Phase::stopping) return;
    phase_ = Phase::stopping;
    for (Child* child : {sink_.get(), ventilator_.get(), worker_.get(), hosts_.get()}) {
        if (!child || child->exited()) continue;
        if (child == hosts_.get() || child == worker_.get()) {
            if (workers_stopped_) continue;  // already told
        }
        child->signal(SIGTERM);
        if (child == ventilator_.get() || child == worker_.get()) quick_stop_.push_back(child);
    }
    workers_stopped_ = true;
    second_term_at_ = std::min(second_term_at_, Clock::now() + kHelperGrace);
    phase_deadline_ = Clock::now() + kStopTimeout;
}

void Run::check_running() {
    if (sink_->exited()) {
        // The batch is over (or the sink could not go on): the others have nothing left to do.
        // Interrupted, they already have their signal.
        if (signals_ == 0) {
            stop_all();
        } else {
            phase_ = Phase::stopping;
        }
        return;
    }
    if (ventilator_ && ventilator_->exited() && signals_ == 0) {
        const int status = *ventilator_->status();
        if (status != kExitOk && status != kExitTasksFailed) {
            // A start-up or input error, reported by the ventilator itself.
            fail("");
            return;
        }
        if (!workers_stopped_) {
            // Every task has its result written: the workers stop now. The local one has
            // nothing left to finish and gets a second SIGTERM (exit at once) shortly, rather
            // than wait out its sockets' linger towards a sink that is gone. The hosts launcher
            // stops its workers in its own time.
            workers_stopped_ = true;
            for (Child* child : {worker_.get(), hosts_.get()}) {
                if (child) child->signal(SIGTERM);
            }
            if (worker_) quick_stop_.push_back(worker_.get());
            second_term_at_ = Clock::now() + kHelperGrace;
        }
        return;
    }
    if (phase_ == Phase::running && signals_ == 0 && !any_worker_left()) {
        fail("every worker exited before the batch was complete (see their errors above)");
    }
}

void Run::step(Clock::time_point now) {
    std::erase_if(quick_stop_, [](Child* child) {
        if (child->exited()) return true;
        if (child->signal_pending(SIGTERM)) return false;
        child->signal(SIGTERM);  // the first has arrived; this one stops it at once
        return true;
    });
    if (now >= second_term_at_) {
        // Stop at once what is left on this host; the hosts launcher stops its workers in its
        // own time (--stop-timeout).
        second_term_at_ = Clock::time_point::max();
        quick_stop_.clear();
        for (Child* child : {ventilator_.get(), worker_.get()}) {
            if (child) child->signal(SIGTERM);
        }
    }
    switch (phase_) {
        case Phase::starting_sink:
            if (sink_->exited()) {
                phase_ = Phase::stopping;
                break;
            }
            if (bound(endpoints_.results_bind, sink_->pid(), endpoints_.results_connect,
                      endpoints_.results_remote) &&
                is_socket(endpoints_.control.substr(6))) {
                start_ventilator();
            } else if (now >= phase_deadline_) {
                fail("the sink did not bind its endpoints within 10 s");
            }
            break;
        case Phase::starting_ventilator:
            check_running();
            if (phase_ != Phase::starting_ventilator) break;
            if (bound(endpoints_.tasks_bind, ventilator_->pid(), endpoints_.tasks_connect,
                      endpoints_.tasks_remote)) {
                start_workers();
            } else if (now >= phase_deadline_) {
                fail("the ventilator did not bind its endpoint within 10 s");
            }
            break;
        case Phase::running:
            check_running();
            break;
        case Phase::stopping:
            if (all_exited()) {
                phase_ = Phase::done;
                break;
            }
            if (now >= phase_deadline_) {
                ::kill(-group_, SIGKILL);
                phase_deadline_ = Clock::time_point::max();
            }
            break;
        case Phase::done:
            break;
    }
}

std::chrono::milliseconds Run::poll_timeout(Clock::time_point now) const {
    if (phase_ == Phase::starting_sink || phase_ == Phase::starting_ventilator ||
        !quick_stop_.empty()) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(kStartupPoll);
    }
    const auto next = std::min(phase_deadline_, second_term_at_);
    if (next == Clock::time_point::max()) return std::chrono::milliseconds(-1);
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::ceil<std::chrono::milliseconds>(next - now));
}

int Run::exit_status() const {
    if (failure_) return *failure_;
    if (ventilator_ && ventilator_->exited() && *ventilator_->status() == kExitUsage) {
        return kExitUsage;
    }
    if (sink_ && sink_->exited()) return *sink_->status();
    if (signals_ > 0) return signals_ >= 2 ? 128 + last_signal_ : kExitInterrupted;
    return kExitUsage;
}

int Run::run() {
    start_sink();
    while (phase_ != Phase::done) {
        const auto timeout = poll_timeout(Clock::now());
        pollfd item{signal_fd_, POLLIN, 0};
        ::poll(&item, 1, static_cast<int>(timeout.count()));
        handle_signals();
        reap();
        for (Phase before = phase_;; before = phase_) {
            step(Clock::now());
            if (phase_ == before) break;
        }
    }
    return exit_status();
}

int run_command(int argc, const char* const argv[]) {
    auto parsed = parse_run_options(argc, argv);
    if (!parsed.early_output.empty()) {
        std::cout << parsed.early_output;
        return kExitOk;
    }
    Run run(std::move(parsed.options));
    return run.run();
}

}  // namespace taskpipe
