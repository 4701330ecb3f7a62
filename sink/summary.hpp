// The sink's end-of-batch report: log lines for people, JSON (--stats FILE) for scripts. Both
// say the same: counts by status, wall time, throughput, latency percentiles (task sent to
// result received) and a table of workers (tasks, failures, busy time).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stats.hpp"

namespace taskpipe {

// The first line keeps the form scripts already match: "N tasks, F failed, L lost, ...".
std::vector<std::string> summary_lines(const StatsSnapshot& stats, std::uint64_t total);

// `complete` is false when the sink was interrupted before the batch completed.
nlohmann::json summary_json(const StatsSnapshot& stats, std::uint64_t total, bool complete);

// For --stats at start-up: throws StartupError unless `path` can be opened for writing. A file
// that did not exist is created to find out, then removed again. Both follow output_file.hpp:
// a symbolic link or a file that is not regular is refused.
void check_writable_file(const std::string& path);

// Writes `json` to `path` (replacing its contents); throws std::system_error when it cannot.
void write_json_file(const std::string& path, const nlohmann::json& json);

}  // namespace taskpipe
