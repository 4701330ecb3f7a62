// Reading what a sink wrote: raw output compared line by line with the payloads sent, and
// --jsonl output parsed into JSON objects.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace taskpipe::testing {

// How the lines of an output compare with the lines expected, each exactly once.
struct Tally {
    std::vector<std::string> missing;     // expected, never seen
    std::vector<std::string> duplicated;  // seen more than once
    std::vector<std::string> unexpected;  // seen, never expected
    bool exact() const { return missing.empty() && duplicated.empty() && unexpected.empty(); }
    // The counts and the first few lines of each kind, for a failure message.
    std::string describe() const;
};

// Splits `output` into '\n'-terminated lines (a last line without '\n' counts too).
std::vector<std::string> split_lines(std::string_view output);

// True when `line` is a log line of `program` at `level`, in the form every program logs:
// "2026-11-24T10:15:02.345Z sink warning: message".
bool is_log_line(std::string_view line, std::string_view program, std::string_view level);

Tally tally_lines(std::string_view output, const std::vector<std::string>& expected);

// One JSON object per line; throws nlohmann::json::parse_error on a line that is not JSON.
std::vector<nlohmann::json> parse_json_lines(std::string_view output);

// The exact bytes a task wrote to `field` ("stdout" or "stderr") in a --jsonl result: decoded
// from FIELD_base64 when present, else the text field.
std::string result_bytes(const nlohmann::json& result, const std::string& field = "stdout");

// Standard base64 (RFC 4648, with padding); throws std::invalid_argument on other input.
std::string decode_base64(std::string_view text);

// Lower-case hex of `bytes`, two digits per byte, no separators.
std::string to_hex(std::string_view bytes);

}  // namespace taskpipe::testing
