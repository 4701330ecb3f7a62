// Validation of ZeroMQ endpoint strings given on the command line.
//
// ZeroMQ reports a bad endpoint only when a socket binds or connects, and for connect often not
// at all; checking first lets a typo become a one-line usage error.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace taskpipe {

enum class EndpointUse { bind, connect };

// Returns why `endpoint` is not usable for `use`, or nullopt when it is. Accepted forms:
// tcp://HOST:PORT (PORT 1-65535, or * when binding), ipc://PATH, inproc://NAME.
std::optional<std::string> endpoint_error(std::string_view endpoint, EndpointUse use);

// Turns the wildcard host of a bind endpoint into something a peer on this host can connect
// to: tcp://*:5557 -> tcp://localhost:5557. Other endpoints are returned unchanged.
std::string local_connect_endpoint(std::string_view bound);

}  // namespace taskpipe
