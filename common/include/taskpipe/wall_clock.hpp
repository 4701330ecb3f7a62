// The wall clock as the protocol carries it: microseconds since 1970 (UTC), and its text form.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace taskpipe {

inline std::uint64_t unix_micros() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

// ISO 8601 in UTC with milliseconds: "2026-11-24T10:15:02.345Z".
std::string format_utc(std::uint64_t micros);

}  // namespace taskpipe
