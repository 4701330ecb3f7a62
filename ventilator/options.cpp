#include "options.hpp"

#include "taskpipe/endpoints.hpp"

namespace po = boost::program_options;

namespace taskpipe {

Parsed<VentilatorOptions> parse_ventilator_options(int argc, const char* const argv[]) {
    Parsed<VentilatorOptions> parsed;
    VentilatorOptions& o = parsed.options;
    double liveness_seconds = 5.0;
    double sink_timeout_seconds = 60.0;
    double max_task_seconds = 86400.0;
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
    add("max-task-time", po::value(&max_task_seconds)->default_value(max_task_seconds),
        "seconds a task may be held, even by a worker that still names it, before it is sent "
        "again (attempt + 1; the first result is kept); 0: no limit");
    add("sink-timeout", po::value(&sink_timeout_seconds)->default_value(sink_timeout_seconds),
        "give up (exit 4) after this many seconds without a word from the sink; 0: never");
    add_curve_options(options, o.curve, kVentilatorCurveRoles);
    std::string resume_failed;
    add("resume", po::value(&o.resume)->value_name("FILE"),
        "skip the tasks the sink's joblog FILE records as finished (any status)");
    add("resume-failed", po::value(&resume_failed)->value_name("FILE"),
        "skip the tasks the joblog FILE records as ok; run the others again");
    po::options_description service(
        "Service mode (applications submit tasks; see docs/protocol.md)");
    auto serve = service.add_options();
    double keep_hours = 24.0;
    double drain_seconds = 30.0;
    long long max_queue = static_cast<long long>(o.max_queue);
    long long max_output = static_cast<long long>(o.max_output);
    std::string store_sync = "full";
    serve("serve", po::bool_switch(&o.serve),
          "run as a service: take tasks from producers on --listen instead of an input, for ever");
    serve("listen", po::value(&o.listen)->default_value(o.listen),
          "endpoint the producers connect to (ROUTER)");
    serve("store", po::value(&o.store)->value_name("FILE"),
          "keep the queue and the results in this SQLite file; a submission is answered once it "
          "is on disk (default: in memory, lost with the process)");
    serve("store-sync", po::value(&store_sync)->default_value(store_sync),
          "full: every commit is fsync'ed (survives a power cut); normal: survives a crash of "
          "the program, not of the machine");
    serve("keep-results", po::value(&keep_hours)->default_value(keep_hours),
          "hours a finished task's result is kept, then its id is unknown");
    serve("max-queue", po::value(&max_queue)->default_value(max_queue),
          "most unfinished tasks; more submissions are refused (error full)");
    serve("max-output", po::value(&max_output)->default_value(max_output),
          "bytes of a task's stdout kept and told to its producer");
    serve("drain-timeout", po::value(&drain_seconds)->default_value(drain_seconds),
          "on SIGTERM, seconds to wait for the tasks in flight");
    serve("curve-producers", po::value(&o.curve_producers)->value_name("FILE|DIR"),
          "with --curve-key: public keys of the producers allowed to submit (a .pub file or a "
          "directory of them; may be repeated)");
    options.add(service);
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
    if (!(max_task_seconds >= 0.0) || max_task_seconds > 31'536'000.0) {
        throw UsageError("--max-task-time must be between 0 (no limit) and 31536000 seconds");
    }
    o.max_task_time = std::chrono::milliseconds(static_cast<long long>(max_task_seconds * 1000.0));
    if (!(sink_timeout_seconds >= 0.0) || sink_timeout_seconds > 31'536'000.0) {
        throw UsageError("--sink-timeout must be between 0 (never) and 31536000 seconds");
    }
    if (sink_timeout_seconds > 0.0 && sink_timeout_seconds < 3.0) {
        throw UsageError(
            "--sink-timeout must be at least 3 seconds (the sink speaks every second)");
    }
    o.sink_timeout = std::chrono::milliseconds(static_cast<long>(sink_timeout_seconds * 1000.0));
    const bool service_options =
        !values["listen"].defaulted() || values.count("store") ||
        !values["keep-results"].defaulted() || !values["max-queue"].defaulted() ||
        !values["max-output"].defaulted() || !values["drain-timeout"].defaulted() ||
        !values["store-sync"].defaulted() || values.count("curve-producers");
    if (!o.serve) {
        if (service_options) throw UsageError("--listen, --store and the like need --serve");
        return parsed;
    }
    if (!values["input"].defaulted() || o.null_separated || !o.resume.empty()) {
        throw UsageError("--serve takes tasks from producers: no --input, -0 or --resume");
    }
    if (auto error = endpoint_error(o.listen, EndpointUse::bind)) throw UsageError(*error);
    // A service waits for its sink for ever unless told otherwise.
    if (values["sink-timeout"].defaulted()) o.sink_timeout = std::chrono::milliseconds(0);
    if (store_sync != "full" && store_sync != "normal") {
        throw UsageError("--store-sync must be full or normal");
    }
    o.store_fsync = store_sync == "full";
    if (!(keep_hours >= 0.0) || keep_hours > 24.0 * 3650) {
        throw UsageError("--keep-results must be between 0 and 87600 hours");
    }
    o.keep_results = std::chrono::milliseconds(static_cast<long long>(keep_hours * 3'600'000.0));
    if (max_queue < 1 || max_queue > 100'000'000) {
        throw UsageError("--max-queue must be between 1 and 100000000");
    }
    o.max_queue = static_cast<std::size_t>(max_queue);
    if (max_output < 0 || max_output > 512 * 1024) {
        throw UsageError("--max-output must be between 0 and 524288 bytes");
    }
    o.max_output = static_cast<std::size_t>(max_output);
    if (!(drain_seconds >= 0.0) || drain_seconds > 86400.0) {
        throw UsageError("--drain-timeout must be between 0 and 86400 seconds");
    }
    o.drain_timeout = std::chrono::milliseconds(static_cast<long>(drain_seconds * 1000.0));
    if (o.curve.enabled() && o.curve_producers.empty()) {
        throw UsageError("--serve with --curve-key needs --curve-producers: the producers' keys");
    }
    if (!o.curve.enabled() && !o.curve_producers.empty()) {
        throw UsageError("--curve-producers needs --curve-key");
    }
    return parsed;
}

}  // namespace taskpipe
