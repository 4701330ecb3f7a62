#include "support/connections.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace taskpipe::testing {

namespace {

constexpr const char* kEstablished = "01";  // TCP_ESTABLISHED in /proc/net/tcp's "st" column

std::size_t count_in(const char* table, int port) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // the header
    std::size_t count = 0;
    while (std::getline(in, line)) {
        // "  0: 0100007F:A9E3 0100007F:D2F4 01 ...": slot, local, remote, state.
        std::istringstream fields(line);
        std::string slot, local, remote, state;
        if (!(fields >> slot >> local >> remote >> state)) continue;
        const auto colon = local.rfind(':');
        if (colon == std::string::npos || state != kEstablished) continue;
        if (std::stoi(local.substr(colon + 1), nullptr, 16) == port) ++count;
    }
    return count;
}

}  // namespace

int tcp_port(const std::string& endpoint) {
    const auto colon = endpoint.rfind(':');
    if (!endpoint.starts_with("tcp://") || colon == std::string::npos) {
        throw std::invalid_argument("not a tcp://HOST:PORT endpoint: " + endpoint);
    }
    return std::stoi(endpoint.substr(colon + 1));
}

std::size_t accepted_connections(int port) {
    return count_in("/proc/net/tcp", port) + count_in("/proc/net/tcp6", port);
}

}  // namespace taskpipe::testing
