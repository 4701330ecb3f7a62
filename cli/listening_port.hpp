// The TCP port a process listens on, read from /proc: how `taskpipe run -S` learns which free
// ports its sink and ventilator bound with tcp://*:*, without a message from them and without
// choosing a port before they bind it (which another program could take in between).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <istream>
#include <optional>
#include <set>
#include <string>

namespace taskpipe {

// The local port of the one socket in state LISTEN, among the sockets whose inodes are in
// `inodes`, in a /proc/net/tcp or /proc/net/tcp6 table read from `table`. Every such port found
// is added to `ports`.
void listening_ports_in_table(std::istream& table, const std::set<unsigned long>& inodes,
                              std::set<std::uint16_t>& ports);

// The port `pid` listens on over TCP (IPv4 or IPv6): nothing while it listens on none yet, or
// once it has exited. Throws std::runtime_error if it listens on more than one.
std::optional<std::uint16_t> listening_tcp_port(pid_t pid);

}  // namespace taskpipe
