// keygen's command line.
#pragma once

#include <string>

#include "taskpipe/program.hpp"

namespace taskpipe {

struct KeygenOptions {
    std::string name;  // writes NAME.key and NAME.pub
};

// Throws UsageError for an unusable command line.
Parsed<KeygenOptions> parse_keygen_options(int argc, const char* const argv[]);

}  // namespace taskpipe
