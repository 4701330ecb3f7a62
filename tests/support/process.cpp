#include "support/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <fstream>
#include <stdexcept>
#include <system_error>
#include <utility>

extern char** environ;

namespace taskpipe::testing {

namespace {

constexpr int kPollMs = 50;  // how often the I/O threads look at the stop flag

// A child that dies must show up as EPIPE in the stdin writer, not kill the test. Children
// get the default disposition back (POSIX_SPAWN_SETSIGDEF below).
void ignore_sigpipe() {
    static const bool ignored = [] {
        std::signal(SIGPIPE, SIG_IGN);
        return true;
    }();
    (void)ignored;
}

struct Pipe {
    int read = -1;
    int write = -1;
};

Pipe make_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        throw std::system_error(errno, std::generic_category(), "pipe2");
    }
    return {fds[0], fds[1]};
}

void close_fd(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

// Owns the posix_spawn attribute objects for the duration of one spawn.
class SpawnSetup {
  public:
    SpawnSetup() {
        posix_spawn_file_actions_init(&actions);
        posix_spawnattr_init(&attributes);
        sigset_t defaults;
        sigemptyset(&defaults);
        for (int signo : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2}) {
            sigaddset(&defaults, signo);
        }
        posix_spawnattr_setsigdefault(&attributes, &defaults);
        sigset_t unblocked;
        sigemptyset(&unblocked);
        posix_spawnattr_setsigmask(&attributes, &unblocked);
        posix_spawnattr_setpgroup(&attributes, 0);
        posix_spawnattr_setflags(
            &attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
    }
    ~SpawnSetup() {
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attributes);
    }
    SpawnSetup(const SpawnSetup&) = delete;
    SpawnSetup& operator=(const SpawnSetup&) = delete;

    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
};

std::optional<std::string> find_line(const std::string& text, std::string_view wanted) {
    std::size_t start = 0;
    for (std::size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
        std::string_view line(text.data() + start, end - start);
        if (line.find(wanted) != std::string_view::npos) return std::string(line);
    }
    return std::nullopt;
}

}  // namespace

Process::Process(std::vector<std::string> argv, Stdin input) : argv_(std::move(argv)) {
    ignore_sigpipe();
    Pipe in;
    Pipe out;
    Pipe err;
    auto close_all = [&] {
        for (int* fd : {&in.read, &in.write, &out.read, &out.write, &err.read, &err.write}) {
            close_fd(*fd);
        }
    };
    try {
        out = make_pipe();
        err = make_pipe();
        if (input.kind_ == Stdin::Kind::data || input.kind_ == Stdin::Kind::held_open) {
            in = make_pipe();
        }
    } catch (...) {
        close_all();
        throw;
    }

    SpawnSetup setup;
    switch (input.kind_) {
        case Stdin::Kind::null:
            posix_spawn_file_actions_addopen(&setup.actions, 0, "/dev/null", O_RDONLY, 0);
            break;
        case Stdin::Kind::file:
            posix_spawn_file_actions_addopen(&setup.actions, 0, input.value_.c_str(), O_RDONLY, 0);
            break;
        case Stdin::Kind::data:
        case Stdin::Kind::held_open:
            posix_spawn_file_actions_adddup2(&setup.actions, in.read, 0);
            break;
    }
    posix_spawn_file_actions_adddup2(&setup.actions, out.write, 1);
    posix_spawn_file_actions_adddup2(&setup.actions, err.write, 2);

    std::vector<char*> args;
    for (auto& arg : argv_) args.push_back(arg.data());
    args.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, argv_.at(0).c_str(), &setup.actions, &setup.attributes,
                                 args.data(), environ);
    if (rc != 0) {
        close_all();
        throw std::system_error(rc, std::generic_category(), "posix_spawn " + argv_[0]);
    }
    close_fd(in.read);
    close_fd(out.write);
    close_fd(err.write);

    threads_.emplace_back([this, fd = out.read] { read_stream(fd, out_); });
    threads_.emplace_back([this, fd = err.read] { read_stream(fd, err_); });
    if (input.kind_ == Stdin::Kind::data) {
        threads_.emplace_back(
            [this, fd = in.write, bytes = std::move(input.value_)] { write_stdin(fd, bytes); });
    } else if (input.kind_ == Stdin::Kind::held_open) {
        stdin_fd_ = in.write;
    }
}

Process::~Process() {
    if (!status_ && pid_ > 0) {
        ::kill(-pid_, SIGKILL);  // its group: the commands a worker started go too
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
    }
    stop_ = true;
    for (auto& thread : threads_) thread.join();
    close_fd(stdin_fd_);
}

void Process::read_stream(int fd, Stream& stream) {
    char buffer[64 * 1024];
    pollfd item{fd, POLLIN, 0};
    while (!stop_) {
        const int ready = ::poll(&item, 1, kPollMs);
        if (ready <= 0) continue;
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) break;
        {
            std::lock_guard lock(mutex_);
            stream.text.append(buffer, static_cast<std::size_t>(n));
        }
        changed_.notify_all();
    }
    ::close(fd);
    {
        std::lock_guard lock(mutex_);
        stream.closed = true;
    }
    changed_.notify_all();
}

void Process::write_stdin(int fd, std::string bytes) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    std::string_view rest = bytes;
    pollfd item{fd, POLLOUT, 0};
    while (!rest.empty() && !stop_) {
        if (::poll(&item, 1, kPollMs) <= 0) continue;
        const ssize_t n = ::write(fd, rest.data(), rest.size());
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n < 0) break;  // EPIPE: the child is gone or closed its stdin
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    ::close(fd);
}

void Process::signal(int signo) {
    if (!status_) ::kill(pid_, signo);
}

bool Process::catches_signal(int signo) const {
    std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("SigCgt:", 0) != 0) continue;
        const unsigned long long mask = std::stoull(line.substr(7), nullptr, 16);
        return (mask >> (signo - 1)) & 1u;
    }
    return false;
}

bool Process::reap() {
    if (status_) return true;
    int status = 0;
    const pid_t reaped = ::waitpid(pid_, &status, WNOHANG);
    if (reaped != pid_) return false;
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return true;
}

bool Process::running() { return !reap(); }

std::optional<int> Process::wait_for_exit(Deadline deadline) {
    if (!wait_for([this] { return reap(); }, deadline)) return std::nullopt;
    std::unique_lock lock(mutex_);
    if (!changed_.wait_until(lock, deadline, [this] { return out_.closed && err_.closed; })) {
        return std::nullopt;
    }
    return status_;
}

std::optional<std::string> Process::wait_for_stderr(std::string_view text, Deadline deadline) {
    std::optional<std::string> found;
    std::unique_lock lock(mutex_);
    changed_.wait_until(lock, deadline, [&] {
        found = find_line(err_.text, text);
        return found || err_.closed;
    });
    return found;
}

void Process::finish_stdin(std::string bytes) {
    if (stdin_fd_ < 0) throw std::logic_error("finish_stdin: stdin is not held open");
    threads_.emplace_back([this, fd = std::exchange(stdin_fd_, -1), bytes = std::move(bytes)] {
        write_stdin(fd, bytes);
    });
}

void Process::feed_stdin(std::string_view bytes) {
    if (stdin_fd_ < 0) throw std::logic_error("feed_stdin: stdin is not held open");
    while (!bytes.empty()) {
        const ssize_t n = ::write(stdin_fd_, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::system_error(errno, std::generic_category(), "feed_stdin");
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

void Process::close_stdin() { close_fd(stdin_fd_); }

std::string Process::stdout_text() const {
    std::lock_guard lock(mutex_);
    return out_.text;
}

std::string Process::stderr_text() const {
    std::lock_guard lock(mutex_);
    return err_.text;
}

std::string Process::describe() const {
    std::string text = "command:";
    for (const auto& arg : argv_) text += " '" + arg + "'";
    text += "\nstderr:\n" + stderr_text();
    return text;
}

}  // namespace taskpipe::testing
