// A sink, a ventilator and workers wired together, the way a user would start them by hand.
//
// Bind endpoints ending in ":*" (the default: tcp loopback) are resolved from the line each
// program logs once bound ("sink info: results on ...", "sink info: control on ...",
// "ventilator info: tasks on ..."), after cppzmq's tests that bind a wildcard port and read
// last_endpoint back: no fixed ports, so tests run in parallel. Start the sink before a ventilator
// or worker that needs one of its wildcard endpoints; with known endpoints (ipc:// in a TempDir)
// any order works.
//
// Lifetime: the Pipeline owns its processes; destroying it kills whatever still runs. The
// references it returns live as long as the Pipeline. Not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace taskpipe::testing {

struct Endpoints {
    std::string tasks = "tcp://127.0.0.1:*";    // the ventilator's PUSH
    std::string results = "tcp://127.0.0.1:*";  // the sink's PULL
    std::string control = "tcp://127.0.0.1:*";  // the sink's ROUTER

    // ipc:// endpoints inside `dir`, known before any process starts.
    static Endpoints ipc(const TempDir& dir);
};

class Pipeline {
  public:
    explicit Pipeline(Endpoints endpoints = {});

    // Starts `sink --bind RESULTS --control CONTROL EXTRA...`. Throws std::runtime_error if a
    // wildcard endpoint is not reported within 10 seconds.
    Process& start_sink(const std::vector<std::string>& extra = {});

    // Starts `ventilator -b TASKS -s CONTROL EXTRA...` reading `input`.
    Process& start_ventilator(Stdin input, const std::vector<std::string>& extra = {});

    // Starts `worker -v TASKS -s RESULTS ARGS...`; ARGS name the handler, e.g.
    // {"--builtin", "echo"} or {"--", "/bin/echo"}, after any other worker options.
    Process& start_worker(const std::vector<std::string>& args);

    // The endpoints, with wildcards replaced once resolved.
    const Endpoints& endpoints() const { return endpoints_; }

    Process& sink() { return *sink_; }
    Process& ventilator() { return *ventilator_; }
    const std::vector<std::unique_ptr<Process>>& workers() const { return workers_; }

  private:
    Endpoints endpoints_;
    // Declared so that workers die first, the sink last.
    std::unique_ptr<Process> sink_;
    std::unique_ptr<Process> ventilator_;
    std::vector<std::unique_ptr<Process>> workers_;
};

}  // namespace taskpipe::testing
