// The worker's command line.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "command.hpp"
#include "taskpipe/curve_options.hpp"
#include "taskpipe/program.hpp"

namespace taskpipe {

struct WorkerOptions {
    std::string ventilator = "tcp://localhost:5557";
    std::string sink = "tcp://localhost:5558";
    unsigned concurrency = 1;  // parse_worker_options defaults it to the number of CPUs
    HandlerSpec handler = BuiltinHandler{"echo"};
    std::chrono::milliseconds heartbeat_interval{1000};
    std::size_t max_output = 16u << 20;           // stdout bytes kept per task
    std::size_t stderr_tail = 4096;               // last stderr bytes kept per task
    std::chrono::milliseconds timeout{0};         // per task; 0 means no limit
    std::chrono::milliseconds kill_grace{5000};   // SIGTERM to SIGKILL after a timeout
    unsigned retries = 0;                         // re-runs of a failed or timed-out task
    std::chrono::milliseconds retry_delay{1000};  // before the first re-run; doubles each time
    bool kill_leftovers = true;  // SIGKILL what is left of a command's process group at its end
    CurveFiles curve;            // --curve-*: off unless --curve-key is given
};

// The worker is a CURVE client of the ventilator and of the sink.
inline constexpr CurveRoles kWorkerCurveRoles{.server = false, .client = true};

// Everything after "--" (or the first positional argument) is the command. Throws UsageError
// for an unusable command line, including no handler or more than one.
Parsed<WorkerOptions> parse_worker_options(int argc, const char* const argv[]);

}  // namespace taskpipe
