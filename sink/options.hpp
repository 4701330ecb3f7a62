// The sink's command line.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "taskpipe/curve_options.hpp"
#include "taskpipe/program.hpp"

namespace taskpipe {

// Where --metrics serves HTTP: an IPv4 address ("0.0.0.0" for every interface) and a port (0: any
// free one).
struct MetricsAddress {
    std::string host;
    std::uint16_t port = 0;
};

struct SinkOptions {
    std::string bind = "tcp://*:5558";     // PULL socket the workers push results to
    std::string control = "tcp://*:5559";  // ROUTER socket the ventilator connects to
    bool jsonl = false;                    // one JSON object per result instead of raw stdout
    bool tag = false;                      // raw output lines prefixed with the input and a tab
    bool keep_order = false;               // -k: results in input order
    std::uint64_t reorder_window = 10000;  // with -k: most results held back waiting for one
    std::string results_dir;               // --results: each task's output as files; "" off
    std::string stats_file;                // --stats: the end summary as JSON; "" off
    bool quiet = false;                    // no progress report
    std::chrono::milliseconds progress_interval{5000};  // progress log lines off a terminal
    std::uint64_t show_failures = 10;                   // failed tasks logged with their stderr
    std::size_t max_workers = 1000;  // --max-workers: the size of the sink's worker table
    std::chrono::milliseconds bye_timeout{3000};  // wait for the ventilator's Bye at the end
    // No word from the batch's ventilator for this long: exit 4. 0: never.
    std::chrono::milliseconds ventilator_timeout{60000};
    CurveFiles curve;    // --curve-*: off unless --curve-key is given
    std::string joblog;  // --joblog FILE: one line per finished task; empty: none
    std::optional<MetricsAddress> metrics;  // --metrics: no HTTP server unless given
    bool serve = false;  // --serve: the sink of a service (ventilator --serve), for ever
};

// The sink is a CURVE server on both its sockets.
inline constexpr CurveRoles kSinkCurveRoles{.server = true, .client = false};

// Throws UsageError for an unusable command line.
Parsed<SinkOptions> parse_sink_options(int argc, const char* const argv[]);

// ADDR:PORT, ADDR an IPv4 address, "localhost" (127.0.0.1) or "*" (0.0.0.0); throws UsageError.
MetricsAddress parse_metrics_address(const std::string& text);

}  // namespace taskpipe
