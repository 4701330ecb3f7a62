// A program that `taskpipe run` starts: one of the role programs, or the hosts launcher.
//
// Each child runs in the process group `group` (0: a new one, led by the child), so that
// `taskpipe run` alone receives a terminal's ^C and passes it on once; its parent-death signal
// is SIGTERM, so that a `taskpipe run` killed with SIGKILL does not leave its programs running.
// Lifetime: the destructor SIGKILLs a child that has not been reaped and reaps it (quiet,
// noexcept), after {fmt}'s buffered_file. Not thread-safe.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace taskpipe {

struct ChildStdio {
    int in = -1;   // the child's stdin; -1: /dev/null
    int out = -1;  // the child's stdout; -1: /dev/null
    // stderr is always the parent's.
};

class Child {
  public:
    // Starts argv[0] (a path) with `stdio`, in process group `group`, with the signal mask
    // `mask`. Throws std::system_error when the program cannot be started (not found, not
    // executable).
    Child(const std::vector<std::string>& argv, ChildStdio stdio, pid_t group,
          const sigset_t& mask);
    ~Child();
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    pid_t pid() const { return pid_; }
    const std::string& name() const { return name_; }

    // Sends `signo` to the child if it has not been reaped.
    void signal(int signo);

    // Whether `signo`, sent to the child, has not been delivered yet (/proc/PID/status).
    bool signal_pending(int signo) const;

    // Reaps the child if it has exited (no waiting); true once it has.
    bool reap();
    bool exited() const { return status_.has_value(); }
    // The exit status, 128 + N when killed by signal N; nothing until reaped.
    std::optional<int> status() const { return status_; }

  private:
    std::string name_;
    pid_t pid_ = -1;
    std::optional<int> status_;
};

}  // namespace taskpipe
