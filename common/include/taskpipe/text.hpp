// Bytes that came off the network, made fit for people: for JSON output and for one log line.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace taskpipe {

// RFC 4648 base64, padded.
std::string base64(std::string_view bytes);

// Whether `bytes` is valid UTF-8 (a JSON string shows it as it is).
bool is_utf8(std::string_view bytes);

// `bytes` cut to `limit` bytes, with control characters shown as '?' (a tab as a space), and
// "..." when cut: fit for one log line.
std::string printable(std::string_view bytes, std::size_t limit);

// The last `lines` lines of a failed task's stderr, oldest first, each made printable() within
// `line_bytes`.
std::vector<std::string> stderr_tail(std::string_view err, std::size_t lines = 5,
                                     std::size_t line_bytes = 200);

}  // namespace taskpipe
