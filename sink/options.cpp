#include "options.hpp"

#include <arpa/inet.h>

#include <charconv>

#include "taskpipe/endpoints.hpp"

namespace po = boost::program_options;

namespace taskpipe {

Parsed<SinkOptions> parse_sink_options(int argc, const char* const argv[]) {
    Parsed<SinkOptions> parsed;
    SinkOptions& o = parsed.options;
    // Parsed as signed numbers: Boost would read "-1" into an unsigned as a huge value.
    long long reorder_window = static_cast<long long>(o.reorder_window);
    long long show_failures = static_cast<long long>(o.show_failures);
    long long max_workers = static_cast<long long>(o.max_workers);
    double progress_seconds = 5.0;
    double ventilator_timeout_seconds = 60.0;
    po::options_description options("Options");
    auto add = options.add_options();
    add("bind,b", po::value(&o.bind)->default_value(o.bind),
        "endpoint the workers send results to (PULL)");
    add("control", po::value(&o.control)->default_value(o.control),
        "endpoint the ventilator connects to");
    add("jsonl,j", po::bool_switch(&o.jsonl),
        "write one JSON object per result instead of each task's stdout");
    add("tag", po::bool_switch(&o.tag),
        "prefix each line of a task's output with its input and a tab (like parallel --tag)");
    add("keep-order,k", po::bool_switch(&o.keep_order),
        "write results in input order, not completion order");
    add("reorder-window", po::value(&reorder_window)->default_value(reorder_window),
        "with -k: most tasks sent past the oldest unfinished one (bounds the results held "
        "back)");
    add("results", po::value(&o.results_dir),
        "also store each task's input, stdout, stderr and result.json in DIR/<id>/");
    add("stats", po::value(&o.stats_file), "write the end summary to FILE as JSON");
    add("quiet,q", po::bool_switch(&o.quiet), "no progress line or progress log lines");
    add("progress-interval", po::value(&progress_seconds)->default_value(progress_seconds),
        "seconds between progress log lines when stderr is not a terminal");
    add("show-failures", po::value(&show_failures)->default_value(show_failures),
        "failed tasks logged one by one with the end of their stderr");
    add("max-workers", po::value(&max_workers)->default_value(max_workers),
        "most workers the sink keeps track of (capacity, summary rows, metric series); a worker "
        "beyond it replaces the one silent the longest, or is not counted while all are live");
    add("serve", po::bool_switch(&o.serve),
        "serve a service (ventilator --serve): write each task's recorded result, for ever; "
        "SIGTERM stops it with status 0");
    add("ventilator-timeout",
        po::value(&ventilator_timeout_seconds)->default_value(ventilator_timeout_seconds),
        "give up (exit 4) after this many seconds without a word from the batch's ventilator; "
        "0: never");
    add_curve_options(options, o.curve, kSinkCurveRoles);
    add("joblog", po::value(&o.joblog)->value_name("FILE"),
        "append one line per finished task to FILE (for ventilator --resume)");
    std::string metrics;
    add("metrics", po::value(&metrics)->value_name("ADDR:PORT"),
        "serve Prometheus metrics over HTTP at http://ADDR:PORT/metrics (ADDR: an IPv4 address, "
        "localhost or *; PORT 0: any free port); off by default");
    po::variables_map values;
    parsed.early_output = parse_command_line(
        argc, argv, options, {}, values,
        "taskpipe sink [OPTIONS] > RESULTS\n\n"
        "Receives the workers' results and writes each task's output once, on stdout; exits when "
        "the batch is complete.");
    if (!parsed.early_output.empty()) return parsed;
    if (auto error = endpoint_error(o.bind, EndpointUse::bind)) throw UsageError(*error);
    if (auto error = endpoint_error(o.control, EndpointUse::bind)) throw UsageError(*error);
    check_curve_options(o.curve, kSinkCurveRoles);
    if (o.tag && o.jsonl) {
        throw UsageError("--tag is for raw output; --jsonl already gives each task's \"input\"");
    }
    if (reorder_window < 1 || reorder_window > 10'000'000) {
        throw UsageError("--reorder-window must be between 1 and 10000000");
    }
    o.reorder_window = static_cast<std::uint64_t>(reorder_window);
    if (show_failures < 0) throw UsageError("--show-failures must not be negative");
    o.show_failures = static_cast<std::uint64_t>(show_failures);
    if (max_workers < 1 || max_workers > 1'000'000) {
        throw UsageError("--max-workers must be between 1 and 1000000");
    }
    o.max_workers = static_cast<std::size_t>(max_workers);
    if (!(progress_seconds >= 0.1) || progress_seconds > 86400.0) {
        throw UsageError("--progress-interval must be between 0.1 and 86400 seconds");
    }
    o.progress_interval = std::chrono::milliseconds(static_cast<long>(progress_seconds * 1000.0));
    if (!(ventilator_timeout_seconds >= 0.0) || ventilator_timeout_seconds > 31'536'000.0 ||
        (ventilator_timeout_seconds > 0.0 && ventilator_timeout_seconds < 3.0)) {
        throw UsageError(
            "--ventilator-timeout must be 0 (never) or between 3 and 31536000 seconds");
    }
    o.ventilator_timeout =
        std::chrono::milliseconds(static_cast<long>(ventilator_timeout_seconds * 1000.0));
    if (o.serve) {
        // A service's sink waits for its head for ever unless told otherwise.
        if (values["ventilator-timeout"].defaulted()) o.ventilator_timeout = {};
        if (o.keep_order) throw UsageError("-k needs a batch: a service's tasks never end");
        if (!o.joblog.empty()) {
            // allowed: one line per recorded result, as in a batch
        }
    }
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
