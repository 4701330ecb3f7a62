// submit's command line: what to ask the head of a service (ventilator --serve), and how.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "taskpipe/curve_options.hpp"
#include "taskpipe/program.hpp"

namespace taskpipe {

// What the command does with its arguments.
enum class SubmitMode {
    submit,  // PAYLOAD...: submit tasks, print their ids (with --wait: their output)
    status,  // --status ID... | --status --key KEY: print each task's state
    cancel,  // --cancel ID...: cancel tasks not yet sent to a worker
};

// How stdin is cut into payloads when the tasks come from there.
enum class StdinSplit {
    lines,  // one task per line, as the ventilator reads its input
    nul,    // -0: records end with NUL
    whole,  // --whole: all of stdin is one payload, byte for byte
};

struct SubmitOptions {
    SubmitMode mode = SubmitMode::submit;
    std::string head = "tcp://localhost:5560";  // --head, or $TASKPIPE_HEAD
    // submit: each argument is a payload; none, or the single argument "-": read stdin.
    std::vector<std::string> payloads;
    bool from_stdin = false;
    StdinSplit split = StdinSplit::lines;
    std::vector<std::uint64_t> ids;  // status, cancel
    std::optional<std::string> key;  // submit: the idempotency key; status: the task's key
    std::chrono::milliseconds delay{0};
    std::uint64_t not_before_us = 0;  // --at, microseconds since 1970 UTC; 0: none
    bool wait = false;                // wait for each task to finish
    bool json = false;                // print JSON lines instead of ids, output or states
    // The whole command ends (status 4) when this has passed; none: no limit.
    std::optional<std::chrono::milliseconds> timeout;
    // How long the head may take to complete the first handshake (status 2 after that).
    std::chrono::milliseconds connect_timeout{1000};
    CurveFiles curve;  // --curve-key, --curve-server
};

// submit is a CURVE client of the head's listen socket.
inline constexpr CurveRoles kSubmitCurveRoles{.server = false, .client = true};

// `head_from_environment` is $TASKPIPE_HEAD (null or empty: not set); --head wins over it.
// Throws UsageError for an unusable command line.
Parsed<SubmitOptions> parse_submit_options(int argc, const char* const argv[],
                                           const char* head_from_environment = nullptr);

// --at: "@SECONDS" (since 1970, fractions allowed, as `date +%s` prints) or ISO 8601 with a
// zone, "2026-11-24T10:15:00Z", "2026-11-24 10:15:00.5+01:00" (seconds optional). Returns
// microseconds since 1970 UTC, or nullopt when `text` is neither.
std::optional<std::uint64_t> parse_time(std::string_view text);

}  // namespace taskpipe
