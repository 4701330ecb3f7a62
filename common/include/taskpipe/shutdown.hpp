// SIGINT and SIGTERM as an event the loop can poll, after Redis and the ZeroMQ Guide's
// interrupt.c: the handler only counts the signal and writes a byte to a pipe; the loop sees the
// pipe become readable and shuts down in its own time. A second signal exits the process at
// once with status 128 + signal number. SIGPIPE is ignored, so a closed stdout is an error
// return, not a silent death.
#pragma once

namespace taskpipe {

class ShutdownSignal {
  public:
    // Installs the handlers (once per process) and returns the process-wide instance.
    static ShutdownSignal& install();

    // Readable once a shutdown has been requested; for zmq::pollitem_t::fd.
    int fd() const;
    bool requested() const;
    // The signal that asked for the shutdown (0 if none yet).
    int signal_number() const;

    // A function the handler calls just before the immediate exit on a second signal. It runs
    // inside the signal handler: it may only make async-signal-safe calls (kill, write).
    using ImmediateExitHook = void (*)();
    void set_immediate_exit_hook(ImmediateExitHook hook);

  private:
    ShutdownSignal() = default;
};

}  // namespace taskpipe
