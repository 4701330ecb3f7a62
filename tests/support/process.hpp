// A program under test running as a child process, after the drivers of nng's and Redis's
// test suites: started with posix_spawn in a process group of its own, its stdout and stderr
// captured by background threads, signalled and waited for with deadlines.
//
// Lifetime: the destructor SIGKILLs the process group of a child that has not been reaped and
// waits for it, so no test leaves a process behind; it is quiet (noexcept). Thread-safety: the
// output accessors (stdout_text, stderr_text, wait_for_stderr) may be called from any thread;
// everything else belongs to the thread that owns the Process.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/wait.hpp"

namespace taskpipe::testing {

// What a child reads on its standard input.
class Stdin {
  public:
    // /dev/null: the input ends at once.
    static Stdin null() { return Stdin(Kind::null, {}); }
    // `bytes`, written by a background thread (so that a large input cannot deadlock with a
    // child that writes before it reads), then end of input.
    static Stdin data(std::string bytes) { return Stdin(Kind::data, std::move(bytes)); }
    // The contents of the file at `path`.
    static Stdin file(std::string path) { return Stdin(Kind::file, std::move(path)); }
    // A pipe that stays open, with nothing written, until Process::finish_stdin() or
    // Process::close_stdin().
    static Stdin held_open() { return Stdin(Kind::held_open, {}); }

  private:
    friend class Process;
    enum class Kind { null, data, file, held_open };
    Stdin(Kind kind, std::string value) : kind_(kind), value_(std::move(value)) {}
    Kind kind_;
    std::string value_;  // the bytes, or the path
};

class Process {
  public:
    // Starts argv[0] (a path) with the given arguments and the test's environment; throws
    // std::system_error when the process cannot be started.
    explicit Process(std::vector<std::string> argv, Stdin input = Stdin::null());
    ~Process();
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    pid_t pid() const { return pid_; }

    // Sends `signo` to the process (not to its group).
    void signal(int signo);

    // Whether the process has a handler installed for `signo` (SigCgt in /proc/PID/status):
    // lets a test wait until a program is ready to be interrupted.
    bool catches_signal(int signo) const;

    // The exit status (128 + N when killed by signal N) once the process has exited and its
    // stdout and stderr have been read to the end; nullopt if the deadline passes first.
    std::optional<int> wait_for_exit(Deadline deadline);

    // True until the process has exited (and then reaps it).
    bool running();

    // The first complete line of stderr (without its newline) that contains `text`; nullopt if
    // none has appeared by the deadline or stderr ended without one.
    std::optional<std::string> wait_for_stderr(std::string_view text, Deadline deadline);

    // For a process started with Stdin::held_open(): writes `bytes` from a background thread
    // (as Stdin::data does), then ends the input.
    void finish_stdin(std::string bytes);

    // For a process started with Stdin::held_open(): writes `bytes` now and keeps the input
    // open, so that more can follow. Meant for small inputs that fit in the pipe (64 KiB).
    void feed_stdin(std::string_view bytes);

    // Ends the input of a process started with Stdin::held_open().
    void close_stdin();

    std::string stdout_text() const;
    std::string stderr_text() const;

    // The command line and the stderr so far, for failure messages.
    std::string describe() const;

  private:
    struct Stream {
        std::string text;
        bool closed = false;
    };

    bool reap();
    void read_stream(int fd, Stream& stream);
    void write_stdin(int fd, std::string bytes);

    std::vector<std::string> argv_;
    pid_t pid_ = -1;
    std::optional<int> status_;
    int stdin_fd_ = -1;  // write end of a held-open stdin

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    Stream out_;
    Stream err_;
    std::atomic<bool> stop_{false};
    std::vector<std::thread> threads_;
};

}  // namespace taskpipe::testing
