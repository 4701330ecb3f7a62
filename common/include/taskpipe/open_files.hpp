// The limit on a process's open files (RLIMIT_NOFILE), which bounds how many connections a
// server can hold: each accepted connection takes a file descriptor, and at the limit libzmq can
// accept no one, not even a genuine worker (docs/security.md, "Floods of connections").
//
// Many systems start programs with a soft limit of 1024 and a much higher hard limit, which a
// program may raise its soft limit to. Every taskpipe program does so at start-up (through
// parse_command_line, once the log level is known). The worker's commands inherit the raised
// limit. Reentrant; changes the whole process's limit.
#pragma once

#include <cstdint>

namespace taskpipe {

// Never raised past this, whatever the hard limit says (the kernel's usual fs.nr_open).
inline constexpr std::uint64_t kMaxOpenFiles = std::uint64_t{1} << 20;
// A limit below this is too low for a server to hold its peers through a flood; it is logged.
inline constexpr std::uint64_t kFewOpenFiles = 1024;

struct OpenFileLimit {
    std::uint64_t before = 0;  // the soft limit found
    std::uint64_t now = 0;     // the soft limit after raising it
    std::uint64_t hard = 0;
};

// Raises the soft limit to the hard limit (at most kMaxOpenFiles); never lowers it. When the
// limit cannot be read or set, `now` is what it is.
OpenFileLimit raise_open_file_limit();

// Logs what raise_open_file_limit() did: a debug line when it raised the limit, a warning when
// the limit is still below kFewOpenFiles.
void log_open_file_limit(const OpenFileLimit& limit);

}  // namespace taskpipe
