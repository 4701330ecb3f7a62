#include "child_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
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

// Owns the posix_spawn attribute objects for the duration of one spawn.
struct SpawnSetup {
    posix_spawn_file_actions_t actions{};
    posix_spawnattr_t attr{};

    SpawnSetup(int out_write, int err_write) {
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&actions, out_write, STDOUT_FILENO);
        posix_spawn_file_actions_adddup2(&actions, err_write, STDERR_FILENO);
        posix_spawnattr_init(&attr);
        // Own process group, so that a time limit or a shutdown reaches its children too.
        posix_spawnattr_setpgroup(&attr, 0);
        sigset_t none;
        sigemptyset(&none);
        posix_spawnattr_setsigmask(&attr, &none);
        // The worker ignores SIGPIPE and handles SIGINT/SIGTERM; the command gets defaults.
        sigset_t defaults;
        sigemptyset(&defaults);
        sigaddset(&defaults, SIGPIPE);
        sigaddset(&defaults, SIGINT);
        sigaddset(&defaults, SIGTERM);
        posix_spawnattr_setsigdefault(&attr, &defaults);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                            POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_USEVFORK);
    }
    ~SpawnSetup() {
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
    }
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
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);

    int rc;
    {
        SpawnSetup setup(out_pipe[1], err_pipe[1]);
        rc = posix_spawnp(&pid_, args[0], &setup.actions, &setup.attr, args.data(), environ);
    }
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    stdout_fd_ = out_pipe[0];
    stderr_fd_ = err_pipe[0];
    if (rc != 0) {
        close_fd(stdout_fd_);
        close_fd(stderr_fd_);
        pid_ = -1;
        throw std::system_error(rc, std::generic_category(), "cannot run '" + argv[0] + "'");
    }
    register_group(pid_);
    fcntl(stdout_fd_, F_SETFL, O_NONBLOCK);
    fcntl(stderr_fd_, F_SETFL, O_NONBLOCK);
    pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
    if (pidfd_ < 0) {
        const int saved = errno;
        kill_group(SIGKILL);
        waitpid(pid_, nullptr, 0);
        reaped_ = true;
        unregister_group(pid_);
        close_fd(stdout_fd_);
        close_fd(stderr_fd_);
        throw std::system_error(saved, std::generic_category(), "pidfd_open");
    }
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
