#include "run_options.hpp"

#include <unistd.h>

#include <array>
#include <climits>
#include <cstring>

#include "sink/options.hpp"
#include "ventilator/options.hpp"
#include "worker/options.hpp"

namespace po = boost::program_options;

namespace taskpipe {

namespace {

constexpr const char* kUsage =
    "taskpipe run [OPTIONS] (--builtin NAME | --shell SCRIPT | -- COMMAND ARG...) < TASKS\n"
    "\n"
    "Runs a batch on this host in one command, like GNU parallel or xargs -P: a sink, a worker\n"
    "and a ventilator, over sockets in a private directory (no port), from stdin (or -a FILE)\n"
    "to stdout. Exits with the sink's status: 0 every task ok, 1 some failed, 2 usage or\n"
    "start-up error, 3 interrupted.\n"
    "\n"
    "  find . -name '*.jpg' | taskpipe run -j 8 -- convert {} -resize 50% {.}.thumb.jpg\n"
    "\n"
    "COMMAND ARG... takes the replacement strings {} {.} {/} {//} {/.} {#} (see 'taskpipe\n"
    "worker --help'); no shell is involved. With -S HOST, workers also run on those hosts,\n"
    "started over ssh ('taskpipe hosts'); they connect back to this one (--server).";

// Options taken under the same name by one of the programs: "name" or "name,x" as Boost wants
// it, the long name passed on.
struct PassThrough {
    const char* spec;
    const char* value_name;  // nullptr for a switch
    const char* help;
};

constexpr std::array kSinkOptions{
    PassThrough{"keep-order,k", nullptr, "write results in input order, not completion order"},
    PassThrough{"tag", nullptr, "prefix each line of a task's output with its input and a tab"},
    PassThrough{"jsonl", nullptr, "write one JSON object per result instead of raw output"},
    PassThrough{"results", "DIR",
                "also store each task's input, stdout, stderr and result.json "
                "in DIR/<id>/"},
    PassThrough{"stats", "FILE", "write the end summary to FILE as JSON"},
    PassThrough{"quiet,q", nullptr, "no progress line or progress log lines"},
    PassThrough{"progress-interval", "SECONDS",
                "seconds between progress log lines when stderr is not a terminal (5)"},
    PassThrough{"show-failures", "N", "failed tasks logged one by one with their stderr (10)"},
    PassThrough{"reorder-window", "N",
                "with -k: most tasks sent past the oldest unfinished one "
                "(10000)"},
};

constexpr std::array kWorkerOptions{
    PassThrough{"timeout,t", "SECONDS", "seconds a task may run before it is stopped (0: none)"},
    PassThrough{"kill-grace", "SECONDS", "seconds from a timeout's SIGTERM to SIGKILL (5)"},
    PassThrough{"retries,r", "N", "times a failed or timed-out task is run again (0)"},
    PassThrough{"retry-delay", "SECONDS", "seconds before the first re-run, doubling (1)"},
    PassThrough{"max-output", "BYTES", "stdout bytes kept per task (16777216)"},
    PassThrough{"heartbeat", "SECONDS", "seconds between a worker's heartbeats (1)"},
    PassThrough{"file-names", nullptr,
                "payloads are file names: one that would start an argument with '-' gets './' "
                "in front, so that the command cannot read it as an option"},
    PassThrough{"builtin", "NAME", "run a built-in handler: echo, sleep, fail, spin"},
    PassThrough{"shell", "SCRIPT", "run /bin/sh -c SCRIPT with the payload as $1"},
};

constexpr std::array kVentilatorOptions{
    PassThrough{"null,0", nullptr, "tasks end with NUL, not newline (like xargs -0)"},
    PassThrough{"window,w", "N", "most tasks sent and not yet acknowledged (1000)"},
    PassThrough{"liveness-timeout", "SECONDS",
                "seconds a task may go with no result and no live worker holding it before it "
                "is sent again (5)"},
    PassThrough{"max-attempts", "N", "sends before a task is reported lost (3)"},
};

template <std::size_t N>
void add_pass_through(po::options_description& description,
                      const std::array<PassThrough, N>& options) {
    auto add = description.add_options();
    for (const PassThrough& o : options) {
        if (o.value_name) {
            add(o.spec, po::value<std::string>()->value_name(o.value_name), o.help);
        } else {
            add(o.spec, po::bool_switch(), o.help);
        }
    }
}

// The given options, as "--name" or "--name VALUE", in the order of `options`.
template <std::size_t N>
void collect(const po::variables_map& values, const std::array<PassThrough, N>& options,
             std::vector<std::string>& args) {
    for (const PassThrough& o : options) {
        const std::string name(o.spec, std::strcspn(o.spec, ","));
        if (!values.count(name) || values[name].defaulted()) continue;
        if (o.value_name) {
            args.push_back("--" + name);
            args.push_back(values[name].as<std::string>());
        } else if (values[name].as<bool>()) {
            args.push_back("--" + name);
        }
    }
}

std::vector<const char*> c_argv(const char* program, const std::vector<std::string>& args) {
    std::vector<const char*> argv{program};
    for (const std::string& arg : args) argv.push_back(arg.c_str());
    return argv;
}

// The programs' own parsers check the options they will get; the endpoints are placeholders.
void check_with_the_programs(const RunOptions& o) {
    std::vector<std::string> sink = o.sink_args;
    if (!o.joblog.empty()) sink.insert(sink.end(), {"--joblog", o.joblog});
    auto argv = c_argv("sink", sink);
    parse_sink_options(static_cast<int>(argv.size()), argv.data());

    std::vector<std::string> ventilator = o.ventilator_args;
    argv = c_argv("ventilator", ventilator);
    parse_ventilator_options(static_cast<int>(argv.size()), argv.data());

    std::vector<std::string> worker = {"-c", std::to_string(o.jobs.value_or(1))};
    worker.insert(worker.end(), o.worker_args.begin(), o.worker_args.end());
    argv = c_argv("worker", worker);
    parse_worker_options(static_cast<int>(argv.size()), argv.data());
}

std::string host_name() {
    std::array<char, HOST_NAME_MAX + 1> name{};
    if (gethostname(name.data(), name.size()) != 0) return "localhost";
    return name.data();
}

}  // namespace

std::string to_string(LogLevel level) {
    switch (level) {
        case LogLevel::error:
            return "error";
        case LogLevel::warning:
            return "warning";
        case LogLevel::info:
            return "info";
        case LogLevel::debug:
            return "debug";
    }
    return "info";
}

LogLevel helper_log_level(LogLevel run_level) {
    return run_level == LogLevel::info ? LogLevel::warning : run_level;
}

std::vector<HostSpec> parse_hosts(const std::string& list) {
    std::vector<HostSpec> hosts;
    std::size_t from = 0;
    while (from <= list.size()) {
        const auto comma = std::min(list.find(',', from), list.size());
        const std::string entry = list.substr(from, comma - from);
        from = comma + 1;
        if (entry.empty()) continue;
        HostSpec host{entry, ""};
        if (const auto slash = entry.find('/'); slash != std::string::npos) {
            host.jobs = entry.substr(0, slash);
            host.name = entry.substr(slash + 1);
            const bool count = !host.jobs.empty() && host.jobs.size() <= 4 &&
                               host.jobs.find_first_not_of("0123456789") == std::string::npos &&
                               std::stoi(host.jobs) >= 1 && std::stoi(host.jobs) <= 4096;
            if (!count) throw UsageError("-S '" + entry + "': N/HOST needs N from 1 to 4096");
        }
        if (host.name.empty() || host.name.starts_with('-') ||
            host.name.find_first_of("/ \t") != std::string::npos) {
            throw UsageError("-S '" + entry + "': not a host name");
        }
        hosts.push_back(std::move(host));
    }
    return hosts;
}

bool runs_local_worker(const RunOptions& options) {
    if (options.hosts.empty()) return true;
    for (const HostSpec& host : options.hosts) {
        if (host.is_local()) return true;
    }
    return false;
}

bool runs_remote_workers(const RunOptions& options) {
    for (const HostSpec& host : options.hosts) {
        if (!host.is_local()) return true;
    }
    return false;
}

Parsed<RunOptions> parse_run_options(int argc, const char* const argv[]) {
    Parsed<RunOptions> parsed;
    RunOptions& o = parsed.options;
    long long jobs = 0;
    std::string arg_file;
    std::vector<std::string> hosts;
    std::vector<std::string> command;

    po::options_description input("Input");
    input.add_options()("arg-file,a", po::value(&arg_file)->value_name("FILE"),
                        "read the tasks from FILE instead of stdin");
    add_pass_through(input, std::array{kVentilatorOptions[0]});

    po::options_description running("Running the tasks");
    running.add_options()("jobs,j", po::value(&jobs)->value_name("N"),
                          "tasks run at once on each host (default: its number of CPUs)");
    add_pass_through(running, kWorkerOptions);
    running.add_options()("command", po::value(&command)->multitoken(),
                          "COMMAND ARG... after --, with replacement strings; with none, the "
                          "payload is appended");

    po::options_description output("Output (the sink's)");
    add_pass_through(output, kSinkOptions);
    output.add_options()("joblog", po::value(&o.joblog)->value_name("FILE"),
                         "append one line per finished task to FILE");
    output.add_options()("resume", po::bool_switch(),
                         "with --joblog: run only the tasks FILE does not record (all of them "
                         "if FILE does not exist yet)");
    output.add_options()("resume-failed", po::bool_switch(),
                         "with --joblog: run the tasks FILE does not record as ok");

    po::options_description remote("Other hosts");
    remote.add_options()("sshlogin,S", po::value(&hosts)->value_name("HOSTS"),
                         "also run a worker on each of HOSTS (comma-separated; N/HOST: N tasks "
                         "at once there; ':' is this host, which otherwise runs none); "
                         "repeatable");
    remote.add_options()("ssh", po::value(&o.ssh)->value_name("COMMAND"),
                         "how to reach a host, as for 'taskpipe hosts' (default: ssh -o "
                         "BatchMode=yes)");
    remote.add_options()("server", po::value(&o.server)->value_name("HOST"),
                         "this host's name or address as the other hosts reach it (default: "
                         "its host name)");
    remote.add_options()("remote-worker", po::value(&o.remote_worker)->value_name("PATH"),
                         "the worker program on the other hosts (default: taskpipe-worker)");
    add_pass_through(
        remote, std::array{kVentilatorOptions[1], kVentilatorOptions[2], kVentilatorOptions[3]});

    po::options_description all;
    all.add(input).add(running).add(output).add(remote);
    po::positional_options_description positional;
    positional.add("command", -1);
    po::variables_map values;
    parsed.early_output = parse_command_line(argc, argv, all, positional, values, kUsage);
    if (!parsed.early_output.empty()) return parsed;
    const LogLevel level =
        values["log-level"].empty()
            ? LogLevel::info
            : log_level_from_string(values["log-level"].as<std::string>()).value_or(LogLevel::info);

    collect(values, kSinkOptions, o.sink_args);
    collect(values, kVentilatorOptions, o.ventilator_args);
    if (!arg_file.empty()) o.ventilator_args.insert(o.ventilator_args.end(), {"--input", arg_file});
    collect(values, kWorkerOptions, o.worker_args);
    if (!command.empty()) {
        o.worker_args.push_back("--");
        o.worker_args.insert(o.worker_args.end(), command.begin(), command.end());
    }
    if (values.count("jobs")) {
        if (jobs < 1 || jobs > 4096) throw UsageError("-j must be between 1 and 4096");
        o.jobs = static_cast<unsigned>(jobs);
    }
    for (const std::string& list : hosts) {
        for (HostSpec& host : parse_hosts(list)) o.hosts.push_back(std::move(host));
    }
    const bool resume = values["resume"].as<bool>();
    const bool resume_failed = values["resume-failed"].as<bool>();
    if (resume && resume_failed) {
        throw UsageError("--resume and --resume-failed are mutually exclusive");
    }
    if ((resume || resume_failed) && o.joblog.empty()) {
        throw UsageError("--resume and --resume-failed need --joblog FILE");
    }
    o.resume = resume ? Resume::all : resume_failed ? Resume::failed : Resume::none;
    if (o.server.empty()) o.server = host_name();
    if (values.count("ssh") && o.ssh.find_first_not_of(" \t") == std::string::npos) {
        throw UsageError("--ssh needs a command");
    }
    o.log_level = level;
    check_with_the_programs(o);
    set_log_level(level);  // the programs' parsers set theirs
    return parsed;
}

std::vector<std::string> sink_command(const std::string& program, const RunOptions& options,
                                      const RunEndpoints& endpoints) {
    std::vector<std::string> argv = {
        program,           "--bind",      endpoints.results_bind,      "--control",
        endpoints.control, "--log-level", to_string(options.log_level)};
    argv.insert(argv.end(), options.sink_args.begin(), options.sink_args.end());
    if (!options.joblog.empty()) argv.insert(argv.end(), {"--joblog", options.joblog});
    return argv;
}

std::vector<std::string> ventilator_command(const std::string& program, const RunOptions& options,
                                            const RunEndpoints& endpoints,
                                            bool joblog_has_records) {
    std::vector<std::string> argv = {program,
                                     "--bind",
                                     endpoints.tasks_bind,
                                     "--sink",
                                     endpoints.control,
                                     "--log-level",
                                     to_string(helper_log_level(options.log_level))};
    argv.insert(argv.end(), options.ventilator_args.begin(), options.ventilator_args.end());
    if (options.resume != Resume::none && joblog_has_records) {
        argv.insert(argv.end(), {options.resume == Resume::all ? "--resume" : "--resume-failed",
                                 options.joblog});
    }
    return argv;
}

std::vector<std::string> local_worker_command(const std::string& program, const RunOptions& options,
                                              const RunEndpoints& endpoints) {
    std::vector<std::string> argv = {program,
                                     "--ventilator",
                                     endpoints.tasks_connect,
                                     "--sink",
                                     endpoints.results_connect,
                                     "--log-level",
                                     to_string(helper_log_level(options.log_level))};
    std::string jobs = options.jobs ? std::to_string(*options.jobs) : "";
    for (const HostSpec& host : options.hosts) {
        if (host.is_local() && !host.jobs.empty()) jobs = host.jobs;
    }
    if (!jobs.empty()) argv.insert(argv.end(), {"--concurrency", jobs});
    argv.insert(argv.end(), options.worker_args.begin(), options.worker_args.end());
    return argv;
}

std::vector<std::string> hosts_command(const std::string& program, const RunOptions& options,
                                       const RunEndpoints& endpoints) {
    std::string list;
    for (const HostSpec& host : options.hosts) {
        if (host.is_local()) continue;
        if (!list.empty()) list += ',';
        list += host.jobs.empty() ? host.name : host.jobs + "/" + host.name;
    }
    std::vector<std::string> argv = {program,
                                     "--ssh",
                                     options.ssh,
                                     "-H",
                                     list,
                                     "-v",
                                     endpoints.tasks_remote,
                                     "-s",
                                     endpoints.results_remote};
    if (options.jobs) argv.insert(argv.end(), {"-c", std::to_string(*options.jobs)});
    if (!options.remote_worker.empty())
        argv.insert(argv.end(), {"--worker", options.remote_worker});
    argv.insert(argv.end(), {"--", "--log-level", to_string(helper_log_level(options.log_level))});
    argv.insert(argv.end(), options.worker_args.begin(), options.worker_args.end());
    return argv;
}

}  // namespace taskpipe
