// What the kernel knows about a program's TCP connections: lets a test wait until peers have
// really connected (a condition it can observe) instead of sleeping and hoping.
#pragma once

#include <cstddef>
#include <string>

namespace taskpipe::testing {

// The port of a tcp://HOST:PORT endpoint; throws std::invalid_argument for anything else.
int tcp_port(const std::string& endpoint);

// How many established TCP connections, IPv4 or IPv6, have `port` as their local port: the
// peers a listening socket on that port has accepted. Reads /proc/net/tcp and /proc/net/tcp6.
std::size_t accepted_connections(int port);

}  // namespace taskpipe::testing
