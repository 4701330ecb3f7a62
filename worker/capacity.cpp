#include "capacity.hpp"

#include <algorithm>

namespace taskpipe {

Capacity::Capacity(unsigned concurrency, Clock::time_point now)
    : concurrency_(concurrency),
      value_(2 * concurrency),
      period_start_(now),
      next_update_(now + kPeriod) {}

void Capacity::idle(Clock::time_point now) {
    if (!idle_since_) idle_since_ = now;
}

void Capacity::busy(Clock::time_point now) {
    const bool batch_starts = !ever_busy_ || (idle_since_ && now - *idle_since_ >= kPeriod);
    ever_busy_ = true;
    idle_since_.reset();
    if (!batch_starts) return;
    completed_ = 0;
    period_start_ = now;
    next_update_ = now + kFirstPeriod;
}

bool Capacity::update(Clock::time_point now) {
    if (now < next_update_) return false;
    const auto elapsed =
        std::max<Clock::duration>(now - period_start_, std::chrono::milliseconds(1));
    // Tasks per kPeriod at the pace of the period that ends now.
    const auto paced = static_cast<std::uint64_t>(static_cast<double>(completed_) *
                                                  std::chrono::duration<double>(kPeriod).count() /
                                                  std::chrono::duration<double>(elapsed).count());
    const std::uint64_t target = concurrency_ + std::max<std::uint64_t>(concurrency_, paced);
    value_ = static_cast<std::uint32_t>(std::min<std::uint64_t>(target, 1'000'000));
    completed_ = 0;
    period_start_ = now;
    next_update_ = now + kPeriod;
    return true;
}

}  // namespace taskpipe
