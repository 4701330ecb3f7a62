// The ventilator's command line.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "taskpipe/curve_options.hpp"
#include "taskpipe/program.hpp"

namespace taskpipe {

struct VentilatorOptions {
    std::string bind = "tcp://*:5557";          // PUSH socket the workers connect to
    std::string sink = "tcp://localhost:5559";  // the sink's control socket
    std::string input = "-";                    // "-" is stdin
    bool null_separated = false;                // -0: records end with NUL, not newline
    std::size_t window = 1000;                  // tasks sent but not yet acknowledged
    std::chrono::milliseconds liveness_timeout{5000};
    std::uint32_t max_attempts = 3;
    // A task held this long since it was sent is sent again, even while heartbeats name it.
    // 0: no limit.
    std::chrono::milliseconds max_task_time{24LL * 3600 * 1000};
    // No word from the sink for this long (waiting for it, or mid-batch): exit 4. 0: never.
    std::chrono::milliseconds sink_timeout{60000};
    CurveFiles curve;  // --curve-*: off unless --curve-key is given
    // --resume FILE / --resume-failed FILE: a joblog written by the sink; empty: run everything.
    std::string resume;
    bool resume_failed = false;  // skip only the tasks the joblog records ok

    // Service mode (--serve): producers submit tasks on `listen` instead of an input.
    bool serve = false;
    std::string listen = "tcp://*:5560";
    std::string store;        // --store FILE: SQLite; empty: in memory
    bool store_fsync = true;  // --store-sync full (true) or normal
    std::chrono::milliseconds keep_results{24LL * 3600 * 1000};
    std::size_t max_queue = 1'000'000;
    std::size_t max_output = 64 * 1024;
    std::chrono::milliseconds drain_timeout{30000};
    std::vector<std::string> curve_producers;  // --curve-producers FILE|DIR
};

// The ventilator is a CURVE server (its task socket) and a client (of the sink's control socket).
inline constexpr CurveRoles kVentilatorCurveRoles{.server = true, .client = true};

// Throws UsageError for an unusable command line.
Parsed<VentilatorOptions> parse_ventilator_options(int argc, const char* const argv[]);

}  // namespace taskpipe
