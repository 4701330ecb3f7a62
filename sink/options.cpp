#include "options.hpp"

#include <arpa/inet.h>

#include <charconv>

#include "taskpipe/endpoints.hpp"

namespace po = boost::program_options;

namespace taskpipe {

Parsed<SinkOptions> parse_sink_options(int argc, const char* const argv[]) {
    Parsed<SinkOptions> parsed;
    SinkOptions& o = parsed.options;
    po::options_description options("Options");
    auto add = options.add_options();
    add("bind,b", po::value(&o.bind)->default_value(o.bind),
        "endpoint the workers send results to (PULL)");
    add("control", po::value(&o.control)->default_value(o.control),
        "endpoint the ventilator connects to");
    add("jsonl,j", po::bool_switch(&o.jsonl),
        "write one JSON object per result instead of each task's stdout");
    add_curve_options(options, o.curve, kSinkCurveRoles);
    std::string metrics;
    add("metrics", po::value(&metrics)->value_name("ADDR:PORT"),
        "serve Prometheus metrics over HTTP at http://ADDR:PORT/metrics (ADDR: an IPv4 address, "
        "localhost or *; PORT 0: any free port); off by default");
    po::variables_map values;
    parsed.early_output =
        parse_command_line(argc, argv, options, {}, values, "sink [OPTIONS] > RESULTS");
    if (!parsed.early_output.empty()) return parsed;
    if (auto error = endpoint_error(o.bind, EndpointUse::bind)) throw UsageError(*error);
    if (auto error = endpoint_error(o.control, EndpointUse::bind)) throw UsageError(*error);
    check_curve_options(o.curve, kSinkCurveRoles);
    if (values.count("metrics")) o.metrics = parse_metrics_address(metrics);
    // Two binds to port * get two different ports; any other repeat would collide.
    if (o.bind == o.control && !o.bind.ends_with(":*")) {
        throw UsageError("--bind and --control must differ");
    }
    return parsed;
}

MetricsAddress parse_metrics_address(const std::string& text) {
    const auto bad = [&](const std::string& why) {
        return UsageError("--metrics '" + text + "': " + why);
    };
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) throw bad("expected ADDR:PORT");
    MetricsAddress address;
    address.host = text.substr(0, colon);
    const std::string_view port = std::string_view(text).substr(colon + 1);
    const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), address.port);
    if (port.empty() || error != std::errc() || end != port.data() + port.size()) {
        throw bad("the port must be a number from 0 to 65535");
    }
    if (address.host == "*") {
        address.host = "0.0.0.0";
    } else if (address.host == "localhost") {
        address.host = "127.0.0.1";
    } else if (in_addr parsed{}; inet_pton(AF_INET, address.host.c_str(), &parsed) != 1) {
        throw bad("the address must be an IPv4 address, localhost or *");
    }
    return address;
}

}  // namespace taskpipe
