#include "support/binaries.hpp"

namespace taskpipe::testing {

std::string ventilator_path() { return TASKPIPE_VENTILATOR_PATH; }
std::string worker_path() { return TASKPIPE_WORKER_PATH; }
std::string sink_path() { return TASKPIPE_SINK_PATH; }
std::string submit_path() { return TASKPIPE_SUBMIT_PATH; }
std::string taskpipe_path() { return TASKPIPE_CLI_PATH; }

}  // namespace taskpipe::testing
