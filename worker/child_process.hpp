// One running command: a child process in its own process group, with its stdout and stderr
// on non-blocking pipes that the worker's event loop polls, and a pidfd that becomes readable
// when it exits.
//
// Follows {fmt}'s buffered_file: the destructor is quiet (it kills the process group with
// SIGKILL and reaps the child if it still runs); finish() is the loud, explicit end. Move-only.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace taskpipe {

struct ExitStatus {
    std::optional<int> exit_code;  // set when the process exited by itself
    std::optional<int> signal;     // set when a signal killed it
};

// Sends SIGKILL to the process group of every ChildProcess still alive. Async-signal-safe: for
// the immediate exit on a second SIGINT/SIGTERM, so that no command outlives its worker.
void kill_all_children() noexcept;

class ChildProcess {
  public:
    // Starts argv[0] with stdin from /dev/null, SIGPIPE, SIGINT and SIGTERM at their default
    // action and no signal blocked. argv[0] is searched in PATH as execvp does, except that the
    // directory where the same name was found last time is tried first (as bash's command hash
    // does). Throws std::system_error when it cannot be started (not found, not executable,
    // out of processes). Thread-safe.
    ChildProcess(const std::vector<std::string>& argv, std::size_t max_stdout,
                 std::size_t stderr_tail);
    ~ChildProcess();
    ChildProcess(ChildProcess&& other) noexcept;
    ChildProcess& operator=(ChildProcess&&) = delete;
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    // Descriptors to poll for reading; -1 once closed.
    int stdout_fd() const { return stdout_fd_; }
    int stderr_fd() const { return stderr_fd_; }
    int exit_fd() const { return pidfd_; }

    // Reads what the pipe holds now (call when poll says it is readable).
    void read_stdout();
    void read_stderr();

    // Sends `signo` to the whole process group.
    void kill_group(int signo);

    // After exit_fd() became readable: collects the remaining output and the exit status.
    // With kill_leftovers, whatever is left of the process group (children that outlived the
    // command) gets SIGKILL, before the command is reaped (so that its group id is not reused).
    ExitStatus finish(bool kill_leftovers = false);

    std::string& out() { return out_; }
    std::string err() const;
    bool out_truncated() const { return out_truncated_; }
    pid_t pid() const { return pid_; }

  private:
    bool drain(int& fd, bool is_stdout);

    pid_t pid_ = -1;
    int stdout_fd_ = -1;
    int stderr_fd_ = -1;
    int pidfd_ = -1;
    std::size_t max_stdout_;
    std::size_t stderr_tail_;
    std::string out_;
    std::string err_;
    bool out_truncated_ = false;
    bool reaped_ = false;
};

}  // namespace taskpipe
