#include "builtin_job.hpp"

#include <utility>

namespace taskpipe {

BuiltinJob::BuiltinJob(Builtin builtin, std::string_view payload, Clock::time_point now)
    : outcome_(builtin(payload)), due_(now + outcome_.delay) {}

std::optional<JobOutcome> BuiltinJob::step(std::span<const pollfd>, Clock::time_point now) {
    if (now < due_) return std::nullopt;
    JobOutcome outcome;
    outcome.status = outcome_.status;
    outcome.exit_code = outcome_.exit_code;
    outcome.out = std::move(outcome_.out);
    outcome.err = std::move(outcome_.err);
    return outcome;
}

}  // namespace taskpipe
