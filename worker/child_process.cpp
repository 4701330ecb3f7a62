#include "child_process.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <string_view>
#include <system_error>
#include <utility>

extern char** environ;

namespace taskpipe {

namespace {

// Process groups of the live children, for kill_all_children() in a signal handler. A slot
// holds 0 when free. Sized for the largest --concurrency.
std::array<std::atomic<pid_t>, 4096> g_live_groups{};

void register_group(pid_t pid) {
    for (auto& slot : g_live_groups) {
        pid_t expected = 0;
        if (slot.compare_exchange_strong(expected, pid)) return;
    }
}

void unregister_group(pid_t pid) {
    for (auto& slot : g_live_groups) {
        pid_t expected = pid;
        if (slot.compare_exchange_strong(expected, 0)) return;
    }
}

void close_fd(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

// Starting a command: clone(CLONE_VM | CLONE_VFORK), as glibc's posix_spawn does (no copy of
// the worker's page tables), but with only the system calls a command needs: posix_spawn's
// child resets every one of the 64 signals (two sigaction calls each), opens /dev/null, and
// posix_spawnp tries each PATH directory in turn for every task. Here the child resets the few
// signals that have a handler, dup2()s descriptors the worker holds open, and execs the path
// that worked last time first; the kernel hands back a pidfd with the pid (CLONE_PIDFD).
//
// The child runs on its own stack in the worker's memory while the worker's thread waits for
// its exec, so it reads only what the worker prepared (SpawnRequest) and makes system calls.

// What the child needs; it writes back `error` and `tried`.
struct SpawnRequest {
    const std::vector<std::string>* candidates;  // full paths to exec, in PATH order
    std::size_t first;                           // the candidate to try first
    char* const* argv;
    int null_fd, out_fd, err_fd;
    const sigset_t* reset;  // signals to give their default action
    int error = 0;          // set by the child when no exec worked
    std::size_t tried = 0;  // the last candidate the child tried (the one that ran, on success)
};

// Keeps errno semantics of glibc's execvpe: a missing file or directory moves on to the next
// PATH entry; EACCES is reported only if no later entry works; anything else stops the search.
bool try_next_after(int error) {
    return error == ENOENT || error == ENOTDIR || error == EACCES || error == ESTALE ||
           error == ENODEV || error == ETIMEDOUT;
}

// Not instrumented by AddressSanitizer: its frames live on a stack ASan does not know, in
// memory the worker's thread reuses for the next spawn.
__attribute__((no_sanitize("address"))) int spawn_child(void* arg) {
    auto& request = *static_cast<SpawnRequest*>(arg);
    // Signals arrive blocked (the worker blocked them all around clone()): first the default
    // action for every signal with a handler (a handler must not run here, in the worker's
    // memory) and for SIGPIPE (ignored by the worker), then no signal blocked, as in a fresh
    // process.
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    for (int signo = 1; signo < NSIG; ++signo) {
        if (sigismember(request.reset, signo) == 1) sigaction(signo, &default_action, nullptr);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // Own process group, so that a time limit or a shutdown reaches its children too.
    setpgid(0, 0);
    if (dup2(request.null_fd, STDIN_FILENO) < 0 || dup2(request.out_fd, STDOUT_FILENO) < 0 ||
        dup2(request.err_fd, STDERR_FILENO) < 0) {
        request.error = errno;
        _exit(127);
    }
    const auto& candidates = *request.candidates;
    int saved = ENOENT;
    bool denied = false;
    for (std::size_t k = 0; k <= candidates.size(); ++k) {
        // The remembered one first, then the others in PATH order.
        const std::size_t i = k == 0 ? request.first : k - 1;
        if (k > 0 && i == request.first) continue;
        if (i >= candidates.size()) continue;
        request.tried = i;
        execve(candidates[i].c_str(), request.argv, environ);
        saved = errno;
        if (saved == EACCES) denied = true;
        if (!try_next_after(saved)) break;
    }
    request.error = denied && try_next_after(saved) ? EACCES : saved;
    _exit(127);
}

// The process-wide state of spawning: the child's stack, /dev/null, the signals to reset, and
// the PATH search of the last command started. One spawn at a time (a mutex).
class Spawner {
  public:
    static Spawner& instance() {
        static Spawner spawner;
        return spawner;
    }

    // Starts argv with stdout and stderr on out_fd and err_fd. Returns the pid and sets
    // `pidfd`; throws std::system_error.
    pid_t spawn(const std::vector<std::string>& argv, int out_fd, int err_fd, int& pidfd) {
        std::lock_guard lock(mutex_);
        if (argv.empty()) throw std::system_error(EINVAL, std::generic_category(), "no command");
        const char* path = std::getenv("PATH");
        const std::string_view search = path != nullptr ? path : "/bin:/usr/bin";
        if (argv[0] != name_ || search != path_) resolve(argv[0], search);
        args_.clear();
        for (const std::string& a : argv) args_.push_back(const_cast<char*>(a.c_str()));
        args_.push_back(nullptr);

        SpawnRequest request{&candidates_, first_, args_.data(), null_fd_, out_fd, err_fd, &reset_};
        sigset_t all;
        sigset_t old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pidfd = -1;
        const pid_t pid = clone(spawn_child, stack_.data() + stack_.size(),
                                CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &request, &pidfd);
        const int clone_error = errno;
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
        if (pid < 0) throw std::system_error(clone_error, std::generic_category(), "clone");
        if (request.error != 0) {
            waitpid(pid, nullptr, 0);
            if (pidfd >= 0) ::close(pidfd);
            pidfd = -1;
            throw std::system_error(request.error, std::generic_category(),
                                    "cannot run '" + argv[0] + "'");
        }
        first_ = request.tried;
        return pid;
    }

  private:
    Spawner() {
        // Descriptors 0 to 2 must be taken, or a pipe could get one and dup2 would clobber it.
        for (int fd = 0; fd <= 2; ++fd) {
            if (fcntl(fd, F_GETFD) < 0) ::open("/dev/null", O_RDWR);
        }
        null_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null_fd_ < 0) throw std::system_error(errno, std::generic_category(), "/dev/null");
        // Every signal with a handler now, at the first spawn (the worker's SIGINT and SIGTERM,
        // installed before it runs anything), and SIGPIPE, SIGINT and SIGTERM in any case.
        sigemptyset(&reset_);
        for (int signo = 1; signo < NSIG; ++signo) {
            struct sigaction current {};
            if (sigaction(signo, nullptr, &current) != 0) continue;
            const bool handled = (current.sa_flags & SA_SIGINFO) != 0 ||
                                 (current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN);
            if (handled) sigaddset(&reset_, signo);
        }
        for (int signo : {SIGPIPE, SIGINT, SIGTERM}) sigaddset(&reset_, signo);
    }

    // The paths to try for `name`, as execvp would: the name itself if it holds a slash, else
    // each directory of `search` (PATH; an empty entry is the current directory).
    void resolve(const std::string& name, std::string_view search) {
        name_ = name;
        path_ = search;
        first_ = 0;
        candidates_.clear();
        if (name.empty() || name.find('/') != std::string::npos) {
            candidates_.push_back(name);
            return;
        }
        std::size_t from = 0;
        while (true) {
            const std::size_t colon = search.find(':', from);
            const std::string_view dir = search.substr(from, colon - from);
            candidates_.push_back(dir.empty() ? name : std::string(dir) + "/" + name);
            if (colon == std::string_view::npos) break;
            from = colon + 1;
        }
    }

    std::mutex mutex_;
    alignas(64) std::array<char, 64 * 1024> stack_{};
    int null_fd_ = -1;
    sigset_t reset_{};
    std::string name_ = std::string(1, '\0');  // matches no argv[0]: resolve() on first use
    std::string path_;
    std::vector<std::string> candidates_;
    std::size_t first_ = 0;
    std::vector<char*> args_;
};

}  // namespace

void kill_all_children() noexcept {
    for (auto& slot : g_live_groups) {
        const pid_t pid = slot.load();
        if (pid > 0) ::kill(-pid, SIGKILL);
    }
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, std::size_t max_stdout,
                           std::size_t stderr_tail)
    : max_stdout_(max_stdout), stderr_tail_(stderr_tail) {
    int out_pipe[2];
    int err_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category());
    if (pipe2(err_pipe, O_CLOEXEC) != 0) {
        const int saved = errno;
        ::close(out_pipe[0]);
        ::close(out_pipe[1]);
        throw std::system_error(saved, std::generic_category());
    }
    try {
        pid_ = Spawner::instance().spawn(argv, out_pipe[1], err_pipe[1], pidfd_);
    } catch (...) {
        for (const int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
        pid_ = -1;
        throw;
    }
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    stdout_fd_ = out_pipe[0];
    stderr_fd_ = err_pipe[0];
    register_group(pid_);
    fcntl(stdout_fd_, F_SETFL, O_NONBLOCK);
    fcntl(stderr_fd_, F_SETFL, O_NONBLOCK);
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      stdout_fd_(std::exchange(other.stdout_fd_, -1)),
      stderr_fd_(std::exchange(other.stderr_fd_, -1)),
      pidfd_(std::exchange(other.pidfd_, -1)),
      max_stdout_(other.max_stdout_),
      stderr_tail_(other.stderr_tail_),
      out_(std::move(other.out_)),
      err_(std::move(other.err_)),
      out_truncated_(other.out_truncated_),
      reaped_(std::exchange(other.reaped_, true)) {}

ChildProcess::~ChildProcess() {
    if (pid_ > 0 && !reaped_) {
        kill_group(SIGKILL);
        waitpid(pid_, nullptr, 0);
        unregister_group(pid_);
    }
    close_fd(stdout_fd_);
    close_fd(stderr_fd_);
    close_fd(pidfd_);
}

void ChildProcess::kill_group(int signo) {
    if (pid_ > 0 && !reaped_) ::kill(-pid_, signo);
}

// Reads until the pipe is empty; closes it at end of file. Returns false once closed.
bool ChildProcess::drain(int& fd, bool is_stdout) {
    char buffer[65536];
    while (fd >= 0) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n > 0) {
            const auto size = static_cast<std::size_t>(n);
            if (is_stdout) {
                const std::size_t room = max_stdout_ - std::min(max_stdout_, out_.size());
                if (size > room) out_truncated_ = true;
                out_.append(buffer, std::min(size, room));
            } else {
                err_.append(buffer, size);
                if (err_.size() > 2 * stderr_tail_) err_.erase(0, err_.size() - stderr_tail_);
            }
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
        close_fd(fd);
    }
    return false;
}

void ChildProcess::read_stdout() { drain(stdout_fd_, true); }
void ChildProcess::read_stderr() { drain(stderr_fd_, false); }

ExitStatus ChildProcess::finish(bool kill_leftovers) {
    // Before reaping: until then the command's pid, which names the group, cannot be reused.
    if (kill_leftovers) ::kill(-pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    unregister_group(pid_);
    // Everything the command wrote is in the pipes now. A background grandchild may still
    // hold them open; what it writes later does not belong to this task.
    drain(stdout_fd_, true);
    drain(stderr_fd_, false);
    close_fd(stdout_fd_);
    close_fd(stderr_fd_);
    close_fd(pidfd_);
    ExitStatus result;
    if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
    return result;
}

std::string ChildProcess::err() const {
    if (err_.size() <= stderr_tail_) return err_;
    return err_.substr(err_.size() - stderr_tail_);
}

}  // namespace taskpipe
