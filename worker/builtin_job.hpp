// A built-in handler (builtin.hpp) as a job: the handler runs in the worker's thread when the
// job is made; its outcome is due `delay` later (`sleep`), or at once.
#pragma once

#include "builtin.hpp"
#include "job.hpp"

namespace taskpipe {

class BuiltinJob final : public Job {
  public:
    // Runs `builtin` on `payload` now; the outcome is due at `now` plus the outcome's delay.
    BuiltinJob(Builtin builtin, std::string_view payload, Clock::time_point now);

    std::size_t watch(std::vector<pollfd>&) const override { return 0; }
    Clock::time_point wake_at() const override { return due_; }
    std::optional<JobOutcome> step(std::span<const pollfd> ready, Clock::time_point now) override;

  private:
    BuiltinOutcome outcome_;
    Clock::time_point due_;
};

}  // namespace taskpipe
