#include "options.hpp"

#include <thread>

#include "builtin.hpp"
#include "taskpipe/endpoints.hpp"

namespace po = boost::program_options;

namespace taskpipe {

namespace {

constexpr const char* kUsage =
    "taskpipe worker [OPTIONS] (--builtin NAME | --shell SCRIPT | -- COMMAND ARG...)\n"
    "\n"
    "Runs the tasks a ventilator sends and sends their results to the sink.\n"
    "\n"
    "Replacement strings in COMMAND ARG... stand for parts of the task, as in GNU parallel.\n"
    "  {}    the payload (the task's input line)       dir/sub/photo.jpg\n"
    "  {.}   the payload without its extension         dir/sub/photo\n"
    "  {/}   its base name                             photo.jpg\n"
    "  {//}  its directory                             dir/sub\n"
    "  {/.}  its base name without the extension       photo\n"
    "  {#}   the task's id (its line in the input)     7\n"
    "With none of them the payload is appended as the last argument. No shell is involved,\n"
    "so spaces, quotes and $(...) in a payload stay one argument, byte for byte.\n"
    "\n"
    "Two things to watch:\n"
    "  A payload that starts with '-' is an option to most commands: a task '-o/etc/motd'\n"
    "  given to 'sort {}' truncates /etc/motd. With file names, give --file-names (it makes\n"
    "  it ./-o/etc/motd), or put -- before {} when the command takes it (sort -- {}).\n"
    "  Never put {} inside 'sh -c' program text: the payload would run as code. Use\n"
    "  --shell 'SCRIPT', which gives the payload to SCRIPT as \"$1\".";

}  // namespace

Parsed<WorkerOptions> parse_worker_options(int argc, const char* const argv[]) {
    Parsed<WorkerOptions> parsed;
    WorkerOptions& o = parsed.options;
    const long long cpus = std::max(1u, std::thread::hardware_concurrency());
    long long concurrency = cpus;
    double heartbeat_seconds = 1.0;
    long long max_output = static_cast<long long>(o.max_output);
    double timeout_seconds = 0.0;
    double kill_grace_seconds = 5.0;
    long long retries = 0;
    double retry_delay_seconds = 1.0;
    std::string builtin;
    std::string shell;
    std::vector<std::string> command;

    std::string builtins;
    for (const auto& name : builtin_names()) builtins += (builtins.empty() ? "" : ", ") + name;
    po::options_description options("Options");
    auto add = options.add_options();
    add("ventilator,v", po::value(&o.ventilator)->default_value(o.ventilator),
        "the ventilator's endpoint, where tasks come from");
    add("sink,s", po::value(&o.sink)->default_value(o.sink),
        "the sink's endpoint, where results go");
    add("concurrency,c", po::value(&concurrency)->default_value(cpus, "CPUs"),
        "tasks run at once (default: the number of CPUs)");
    add("builtin", po::value(&builtin), ("run a built-in handler: " + builtins).c_str());
    add("shell", po::value(&shell), "run /bin/sh -c SCRIPT with the payload as $1");
    add("timeout,t", po::value(&timeout_seconds)->default_value(timeout_seconds),
        "seconds a task may run before its process group gets SIGTERM (0: no limit); its "
        "status is then 'timeout'");
    add("kill-grace", po::value(&kill_grace_seconds)->default_value(kill_grace_seconds),
        "seconds between the SIGTERM of a timeout and SIGKILL");
    add("keep-leftovers",
        "leave running what a command started in the background and left behind when it "
        "exited (by default the rest of its process group is killed when the task ends)");
    add("retries,r", po::value(&retries)->default_value(retries),
        "times a failed or timed-out task is run again on this worker before its result is "
        "sent");
    add("retry-delay", po::value(&retry_delay_seconds)->default_value(retry_delay_seconds),
        "seconds before the first re-run; doubled for each further one, up to 60");
    add("heartbeat", po::value(&heartbeat_seconds)->default_value(heartbeat_seconds),
        "seconds between heartbeats to the sink");
    add("max-output", po::value(&max_output)->default_value(max_output),
        "stdout bytes kept per task; the rest is dropped and the result marked truncated");
    add_curve_options(options, o.curve, kWorkerCurveRoles);
    bool file_names = false;
    add("file-names", po::bool_switch(&file_names),
        "payloads are file names: a replacement string that would start an argument with '-' "
        "gets './' in front, so that the command cannot read it as an option");
    add("command", po::value(&command)->multitoken(),
        "COMMAND ARG... after --, with replacement strings (see above); with none, the payload "
        "is appended");
    po::positional_options_description positional;
    positional.add("command", -1);
    po::variables_map values;
    parsed.early_output = parse_command_line(argc, argv, options, positional, values, kUsage);
    if (!parsed.early_output.empty()) return parsed;

    if (auto error = endpoint_error(o.ventilator, EndpointUse::connect)) throw UsageError(*error);
    if (auto error = endpoint_error(o.sink, EndpointUse::connect)) throw UsageError(*error);
    check_curve_options(o.curve, kWorkerCurveRoles);
    if (concurrency < 1 || concurrency > 4096) {
        throw UsageError("--concurrency must be between 1 and 4096");
    }
    if (!(heartbeat_seconds >= 0.05) || heartbeat_seconds > 3600.0) {
        throw UsageError("--heartbeat must be between 0.05 and 3600 seconds");
    }
    if (max_output < 0 || static_cast<unsigned long long>(max_output) > kMaxStdoutBytes) {
        throw UsageError("--max-output must be between 0 and " + std::to_string(kMaxStdoutBytes) +
                         " bytes (the sink's limit for one result)");
    }
    if (!(timeout_seconds >= 0.0) || timeout_seconds > 31'536'000.0) {
        throw UsageError("--timeout must be between 0 and 31536000 seconds");
    }
    if (!(kill_grace_seconds >= 0.0) || kill_grace_seconds > 3600.0) {
        throw UsageError("--kill-grace must be between 0 and 3600 seconds");
    }
    if (retries < 0 || retries > 100) throw UsageError("--retries must be between 0 and 100");
    if (!(retry_delay_seconds >= 0.0) || retry_delay_seconds > 3600.0) {
        throw UsageError("--retry-delay must be between 0 and 3600 seconds");
    }
    auto to_ms = [](double seconds) {
        return std::chrono::milliseconds(static_cast<long>(seconds * 1000.0));
    };
    o.timeout = to_ms(timeout_seconds);
    o.kill_grace = to_ms(kill_grace_seconds);
    o.retries = static_cast<unsigned>(retries);
    o.retry_delay = to_ms(retry_delay_seconds);
    o.kill_leftovers = values.count("keep-leftovers") == 0;
    const int handlers =
        int{values.count("builtin") > 0} + int{values.count("shell") > 0} + int{!command.empty()};
    if (handlers != 1) {
        throw UsageError("give exactly one of --builtin NAME, --shell SCRIPT or -- COMMAND ARG...");
    }
    if (!builtin.empty() || values.count("builtin")) {
        if (!find_builtin(builtin)) {
            throw UsageError("unknown built-in '" + builtin + "' (known: " + builtins + ")");
        }
        o.handler = BuiltinHandler{builtin};
    } else if (values.count("shell")) {
        o.handler = ShellHandler{shell};
    } else {
        o.handler = CommandHandler{command, file_names};
    }
    o.concurrency = static_cast<unsigned>(concurrency);
    o.heartbeat_interval = std::chrono::milliseconds(static_cast<long>(heartbeat_seconds * 1000.0));
    o.max_output = static_cast<std::size_t>(max_output);
    return parsed;
}

}  // namespace taskpipe
