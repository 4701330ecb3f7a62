#include "support/pipeline.hpp"

#include <stdexcept>

#include "support/binaries.hpp"

namespace taskpipe::testing {

namespace {

constexpr auto kStartupTimeout = std::chrono::seconds(10);

bool is_wildcard(const std::string& endpoint) { return endpoint.ends_with(":*"); }

// Replaces a wildcard `endpoint` by the one `process` reports on the stderr line that starts
// with `prefix` (after the time).
void resolve(Process& process, const std::string& prefix, std::string& endpoint) {
    if (!is_wildcard(endpoint)) return;
    const auto line = process.wait_for_stderr(prefix, deadline_in(kStartupTimeout));
    const auto at = line ? line->find(prefix) : std::string::npos;
    if (at == std::string::npos) {
        throw std::runtime_error("no '" + prefix + "' line\n" + process.describe());
    }
    endpoint = line->substr(at + prefix.size());
}

void require_resolved(const std::string& endpoint, const char* what) {
    if (is_wildcard(endpoint)) {
        throw std::logic_error(std::string(what) + " is not known yet: start the sink first");
    }
}

}  // namespace

Endpoints Endpoints::ipc(const TempDir& dir) {
    return {dir.ipc_endpoint("tasks"), dir.ipc_endpoint("results"), dir.ipc_endpoint("control")};
}

Pipeline::Pipeline(Endpoints endpoints) : endpoints_(std::move(endpoints)) {}

Process& Pipeline::start_sink(const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {sink_path(), "--bind", endpoints_.results, "--control",
                                     endpoints_.control};
    argv.insert(argv.end(), extra.begin(), extra.end());
    sink_ = std::make_unique<Process>(std::move(argv));
    resolve(*sink_, "sink info: results on ", endpoints_.results);
    resolve(*sink_, "sink info: control on ", endpoints_.control);
    return *sink_;
}

Process& Pipeline::start_ventilator(Stdin input, const std::vector<std::string>& extra) {
    require_resolved(endpoints_.control, "the sink's control endpoint");
    std::vector<std::string> argv = {ventilator_path(), "-b", endpoints_.tasks, "-s",
                                     endpoints_.control};
    argv.insert(argv.end(), extra.begin(), extra.end());
    ventilator_ = std::make_unique<Process>(std::move(argv), std::move(input));
    resolve(*ventilator_, "ventilator info: tasks on ", endpoints_.tasks);
    return *ventilator_;
}

Process& Pipeline::start_worker(const std::vector<std::string>& args) {
    require_resolved(endpoints_.tasks, "the ventilator's task endpoint");
    require_resolved(endpoints_.results, "the sink's results endpoint");
    std::vector<std::string> argv = {worker_path(), "-v", endpoints_.tasks, "-s",
                                     endpoints_.results};
    argv.insert(argv.end(), args.begin(), args.end());
    workers_.push_back(std::make_unique<Process>(std::move(argv)));
    return *workers_.back();
}

}  // namespace taskpipe::testing
