// The command line of `taskpipe run`, and the command lines it gives the programs it starts.
//
// `taskpipe run` takes the options of the sink, the ventilator and the worker under the same
// names (GNU parallel's where parallel has one: -j, -k, -0, -a, -S, --tag, --joblog, --resume),
// and hands each program its own. The programs' own parsers check the values, so a bad value
// is reported before anything starts, in the same words as by the program itself.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "taskpipe/log.hpp"
#include "taskpipe/program.hpp"

namespace taskpipe {

// One -S entry: a host that runs a worker over ssh, or ":" for this host. `jobs` is the N of
// N/HOST (empty: -j, or the host's number of CPUs).
struct HostSpec {
    std::string name;
    std::string jobs;

    bool is_local() const { return name == ":"; }
    bool operator==(const HostSpec&) const = default;
};

enum class Resume { none, all, failed };  // --resume, --resume-failed

struct RunOptions {
    std::vector<std::string> sink_args;        // the sink's options (not its endpoints)
    std::vector<std::string> ventilator_args;  // the ventilator's (not its endpoints or --resume)
    std::vector<std::string> worker_args;      // the worker's options and handler (not -v, -s, -c)
    std::optional<unsigned> jobs;              // -j: tasks at once on each host
    std::vector<HostSpec> hosts;               // -S; none: this host only
    std::string ssh = "ssh -o BatchMode=yes";  // --ssh: how to reach a host
    std::string server;                        // --server: how the hosts reach this one
    std::string remote_worker;                 // --remote-worker: "" for the launcher's default
    std::string joblog;                        // --joblog FILE; "" for none
    Resume resume = Resume::none;
    LogLevel log_level = LogLevel::info;
};

// Throws UsageError for an unusable command line.
Parsed<RunOptions> parse_run_options(int argc, const char* const argv[]);

// "a,8/b" -> {a, ""}, {b, "8"}; ":" is this host. Throws UsageError for a malformed entry.
std::vector<HostSpec> parse_hosts(const std::string& list);

// Whether a worker runs on this host: with no -S, or with -S ":".
bool runs_local_worker(const RunOptions& options);
bool runs_remote_workers(const RunOptions& options);

// Where the programs meet. With remote workers the tasks and results endpoints are TCP, bound
// on every interface (tcp://*:*); the ports are known once bound.
struct RunEndpoints {
    std::string tasks_bind;       // the ventilator binds
    std::string results_bind;     // the sink binds
    std::string control;          // the sink binds, the ventilator connects
    std::string tasks_connect;    // a local worker connects
    std::string results_connect;  // a local worker connects
    std::string tasks_remote;     // remote workers connect (tcp://SERVER:PORT)
    std::string results_remote;
};

// The command lines, each starting with the program's path.
std::vector<std::string> sink_command(const std::string& program, const RunOptions& options,
                                      const RunEndpoints& endpoints);
// `joblog_has_records`: whether --joblog FILE exists and is not empty, so that --resume has
// something to read (on a first run there is none, and everything runs, as with parallel).
std::vector<std::string> ventilator_command(const std::string& program, const RunOptions& options,
                                            const RunEndpoints& endpoints, bool joblog_has_records);
std::vector<std::string> local_worker_command(const std::string& program, const RunOptions& options,
                                              const RunEndpoints& endpoints);
std::vector<std::string> hosts_command(const std::string& program, const RunOptions& options,
                                       const RunEndpoints& endpoints);

// The least important level the ventilator and workers log at under `taskpipe run`: their
// start-up and summary lines (info) say nothing the sink does not, so info becomes warning.
LogLevel helper_log_level(LogLevel run_level);
std::string to_string(LogLevel level);

}  // namespace taskpipe
