// Where the programs under test were built (paths fixed by CMake at configure time).
#pragma once

#include <string>

namespace taskpipe::testing {

std::string ventilator_path();
std::string worker_path();
std::string sink_path();

}  // namespace taskpipe::testing
