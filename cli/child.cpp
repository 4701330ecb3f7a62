#include "child.hpp"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>
#include <system_error>

namespace taskpipe {

namespace {

// Reports errno on `error_fd` and exits: for the child, when exec_child fails.
[[noreturn]] void exit_with_errno(int error_fd) {
    const int error = errno;
    (void)!write(error_fd, &error, sizeof error);
    _exit(127);
}

// In the child between fork and exec: async-signal-safe calls only.
[[noreturn]] void exec_child(const std::vector<char*>& argv, ChildStdio stdio, pid_t group,
                             pid_t parent, const sigset_t& mask, int error_fd) {
    const auto fail = [error_fd] { exit_with_errno(error_fd); };
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) fail();
    if (getppid() != parent) _exit(128 + SIGTERM);  // the parent died before prctl
    if (setpgid(0, group) != 0) fail();
    const int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0) fail();
    if (dup2(stdio.in >= 0 ? stdio.in : null, STDIN_FILENO) < 0) fail();
    if (dup2(stdio.out >= 0 ? stdio.out : null, STDOUT_FILENO) < 0) fail();
    if (sigprocmask(SIG_SETMASK, &mask, nullptr) != 0) fail();
    execv(argv[0], argv.data());
    exit_with_errno(error_fd);
}

}  // namespace

Child::Child(const std::vector<std::string>& argv, ChildStdio stdio, pid_t group,
             const sigset_t& mask)
    : name_(argv.at(0)) {
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);

    int error_pipe[2];
    if (pipe2(error_pipe, O_CLOEXEC) != 0) {
        throw std::system_error(errno, std::generic_category(), "pipe2");
    }
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
        close(error_pipe[0]);
        exec_child(args, stdio, group, parent, mask, error_pipe[1]);
    }
    const int fork_error = errno;
    close(error_pipe[1]);
    if (pid_ < 0) {
        close(error_pipe[0]);
        throw std::system_error(fork_error, std::generic_category(), "fork");
    }
    // Also here, so that the group exists before anything is sent to it.
    setpgid(pid_, group == 0 ? pid_ : group);
    int exec_error = 0;
    ssize_t got;
    do {
        got = read(error_pipe[0], &exec_error, sizeof exec_error);
    } while (got < 0 && errno == EINTR);
    close(error_pipe[0]);
    if (got == static_cast<ssize_t>(sizeof exec_error)) {
        int ignored;
        waitpid(pid_, &ignored, 0);
        pid_ = -1;
        throw std::system_error(exec_error, std::generic_category(), "cannot run " + name_);
    }
}

Child::~Child() {
    if (pid_ <= 0 || status_) return;
    ::kill(pid_, SIGKILL);
    int ignored;
    while (waitpid(pid_, &ignored, 0) < 0 && errno == EINTR) {
    }
}

void Child::signal(int signo) {
    if (pid_ > 0 && !status_) ::kill(pid_, signo);
}

bool Child::signal_pending(int signo) const {
    if (pid_ <= 0 || status_) return false;
    std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
    for (std::string line; std::getline(status, line);) {
        // "ShdPnd:\t0000000000004000": the signals pending for the whole process, bit N-1
        // for signal N.
        if (!line.starts_with("ShdPnd:")) continue;
        const unsigned long long pending = std::stoull(line.substr(7), nullptr, 16);
        return (pending >> (signo - 1)) & 1u;
    }
    return false;
}

bool Child::reap() {
    if (status_) return true;
    if (pid_ <= 0) return false;
    int raw = 0;
    const pid_t got = waitpid(pid_, &raw, WNOHANG);
    if (got != pid_) return false;
    status_ = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
    return true;
}

}  // namespace taskpipe
