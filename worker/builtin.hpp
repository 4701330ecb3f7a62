// Handlers that run inside the worker process, with no fork: for tests, demos and benchmarks.
//
//   echo   the output is the payload plus a newline
//   sleep  the payload is a number of milliseconds to wait; the output is empty
//   fail   fails with exit code 1 and the payload on stderr
//   spin   burns CPU for the payload's number of milliseconds (for scaling measurements)
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "taskpipe/message.hpp"

namespace taskpipe {

struct BuiltinOutcome {
    Status status = Status::ok;
    std::optional<std::int32_t> exit_code = 0;
    std::string out;
    std::string err;
    std::chrono::milliseconds delay{0};  // the result is due this long after the start
};

using Builtin = BuiltinOutcome (*)(std::string_view payload);

std::optional<Builtin> find_builtin(std::string_view name);
std::vector<std::string> builtin_names();

}  // namespace taskpipe
