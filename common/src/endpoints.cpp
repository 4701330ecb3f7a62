#include "taskpipe/endpoints.hpp"

#include <charconv>

namespace taskpipe {

std::optional<std::string> endpoint_error(std::string_view endpoint, EndpointUse use) {
    auto quoted = [&] { return "'" + std::string(endpoint) + "'"; };
    const auto sep = endpoint.find("://");
    if (sep == std::string_view::npos) {
        return "endpoint " + quoted() + " has no transport (expected tcp://, ipc:// or inproc://)";
    }
    const auto transport = endpoint.substr(0, sep);
    const auto address = endpoint.substr(sep + 3);
    if (transport == "ipc" || transport == "inproc") {
        if (address.empty()) return "endpoint " + quoted() + " has an empty address";
        return std::nullopt;
    }
    if (transport != "tcp") {
        return "endpoint " + quoted() + " has unsupported transport '" + std::string(transport) +
               "' (expected tcp, ipc or inproc)";
    }
    const auto colon = address.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
        return "endpoint " + quoted() + " is not of the form tcp://HOST:PORT";
    }
    const auto port = address.substr(colon + 1);
    if (port == "*") {
        if (use == EndpointUse::bind) return std::nullopt;
        return "endpoint " + quoted() + " cannot connect to a wildcard port";
    }
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
        return "endpoint " + quoted() + " has an invalid port '" + std::string(port) + "'";
    }
    if (use == EndpointUse::connect && address.substr(0, colon) == "*") {
        return "endpoint " + quoted() + " cannot connect to host '*'";
    }
    return std::nullopt;
}

std::string local_connect_endpoint(std::string_view bound) {
    constexpr std::string_view wildcard = "tcp://*:";
    if (bound.starts_with(wildcard)) {
        return "tcp://localhost:" + std::string(bound.substr(wildcard.size()));
    }
    return std::string(bound);
}

}  // namespace taskpipe
