#include "options.hpp"

#include "taskpipe/endpoints.hpp"

namespace po = boost::program_options;

namespace taskpipe {

Parsed<VentilatorOptions> parse_ventilator_options(int argc, const char* const argv[]) {
    Parsed<VentilatorOptions> parsed;
    VentilatorOptions& o = parsed.options;
    double liveness_seconds = 5.0;
    double sink_timeout_seconds = 60.0;
    // Parsed as signed numbers: Boost would read "-1" into an unsigned as a huge value.
    long long window = static_cast<long long>(o.window);
    long long max_attempts = o.max_attempts;
    po::options_description options("Options");
    auto add = options.add_options();
    add("bind,b", po::value(&o.bind)->default_value(o.bind),
        "endpoint the workers connect to (PUSH)");
    add("sink,s", po::value(&o.sink)->default_value(o.sink), "the sink's control endpoint");
    add("input,i", po::value(&o.input)->default_value(o.input),
        "read tasks from FILE instead of stdin");
    add("null,0", po::bool_switch(&o.null_separated),
        "tasks are separated by NUL bytes, not newlines (like xargs -0)");
    add("window,w", po::value(&window)->default_value(window),
        "most tasks sent and not yet acknowledged by the sink");
    add("liveness-timeout", po::value(&liveness_seconds)->default_value(liveness_seconds),
        "seconds a task may go without a result or a live worker holding it before it is "
        "sent again");
    add("max-attempts", po::value(&max_attempts)->default_value(max_attempts),
        "times a task is sent before it is reported lost");
    add("sink-timeout", po::value(&sink_timeout_seconds)->default_value(sink_timeout_seconds),
        "give up (exit 4) after this many seconds without a word from the sink; 0: never");
    add_curve_options(options, o.curve, kVentilatorCurveRoles);
    std::string resume_failed;
    add("resume", po::value(&o.resume)->value_name("FILE"),
        "skip the tasks the sink's joblog FILE records as finished (any status)");
    add("resume-failed", po::value(&resume_failed)->value_name("FILE"),
        "skip the tasks the joblog FILE records as ok; run the others again");
    po::variables_map values;
    parsed.early_output = parse_command_line(
        argc, argv, options, {}, values,
        "taskpipe ventilator [OPTIONS] < TASKS\n\n"
        "Reads tasks, one per line, and sends them to the workers until the sink has a result "
        "for each.");
    if (!parsed.early_output.empty()) return parsed;
    if (auto error = endpoint_error(o.bind, EndpointUse::bind)) throw UsageError(*error);
    if (auto error = endpoint_error(o.sink, EndpointUse::connect)) throw UsageError(*error);
    check_curve_options(o.curve, kVentilatorCurveRoles);
    if (values.count("resume") && values.count("resume-failed")) {
        throw UsageError("--resume and --resume-failed are mutually exclusive");
    }
    if (values.count("resume-failed")) {
        o.resume = resume_failed;
        o.resume_failed = true;
    }
    if (values.count("resume") + values.count("resume-failed") > 0 && o.resume.empty()) {
        throw UsageError("--resume and --resume-failed need a joblog file");
    }
    if (window < 1 || window > 10'000'000) {
        throw UsageError("--window must be between 1 and 10000000");
    }
    if (max_attempts < 1 || max_attempts > 1000) {
        throw UsageError("--max-attempts must be between 1 and 1000");
    }
    o.window = static_cast<std::size_t>(window);
    o.max_attempts = static_cast<std::uint32_t>(max_attempts);
    if (!(liveness_seconds > 0.0) || liveness_seconds > 86400.0) {
        throw UsageError("--liveness-timeout must be between 0 and 86400 seconds");
    }
    o.liveness_timeout = std::chrono::milliseconds(static_cast<long>(liveness_seconds * 1000.0));
    if (!(sink_timeout_seconds >= 0.0) || sink_timeout_seconds > 31'536'000.0) {
        throw UsageError("--sink-timeout must be between 0 (never) and 31536000 seconds");
    }
    if (sink_timeout_seconds > 0.0 && sink_timeout_seconds < 3.0) {
        throw UsageError(
            "--sink-timeout must be at least 3 seconds (the sink speaks every second)");
    }
    o.sink_timeout = std::chrono::milliseconds(static_cast<long>(sink_timeout_seconds * 1000.0));
    return parsed;
}

}  // namespace taskpipe
