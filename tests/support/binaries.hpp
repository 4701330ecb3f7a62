// Where the programs under test were built (paths fixed by CMake at configure time).
#pragma once

#include <string>

namespace taskpipe::testing {

std::string ventilator_path();
std::string worker_path();
std::string sink_path();
std::string submit_path();
// taskpipe, the one command; the programs above are beside it (build/bin).
std::string taskpipe_path();

}  // namespace taskpipe::testing
