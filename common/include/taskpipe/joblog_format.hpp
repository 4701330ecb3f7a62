// The joblog's format, shared by the sink (which writes it) and the ventilator (which reads it
// for --resume): the columns and the escaping of the input column.
//
// A joblog is text: an optional header line naming the columns, then one line per finished
// task, fields separated by tabs. Only the input column needs escaping; escape() and unescape()
// are inverses for every byte string.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace taskpipe::joblog {

// The columns, in order (see README.md, "Joblog and resume").
inline constexpr std::array<std::string_view, 9> kColumns = {
    "id", "worker", "start", "runtime", "status", "exit", "signal", "attempts", "input"};

// The header line, with its newline.
std::string header();

// Backslash as "\\", tab "\t", newline "\n", carriage return "\r", other bytes below 0x20 and
// 0x7f as "\xHH" (lower-case hex); every other byte as it is.
std::string escape(std::string_view bytes);

// The bytes escape() turned into `field`; nullopt when `field` holds an escape sequence
// escape() never writes (a lone backslash, "\q", "\x4").
std::optional<std::string> unescape(std::string_view field);

}  // namespace taskpipe::joblog
