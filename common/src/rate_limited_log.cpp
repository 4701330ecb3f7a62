#include "taskpipe/rate_limited_log.hpp"

#include "taskpipe/log.hpp"

namespace taskpipe {

RateLimitedLog::RateLimitedLog(std::string what) : what_(std::move(what)) {}

void RateLimitedLog::note(const std::string& line, Clock::time_point now) {
    tick(now);
    auto it = recent_.find(line);
    if ((it != recent_.end() && now - it->second < kRepeatAfter) || lines_ >= kLinesPerWindow) {
        ++suppressed_;
        return;
    }
    if (recent_.size() >= kRemembered) recent_.clear();
    recent_[line] = now;
    ++lines_;
    log_warning(line);
}

void RateLimitedLog::tick(Clock::time_point now) {
    if (now - window_start_ < kWindow) return;
    if (suppressed_ > 0) {
        log_warning(std::to_string(suppressed_) + " more " + what_ +
                    " (repeats are logged once a minute)");
    }
    window_start_ = now;
    lines_ = 0;
    suppressed_ = 0;
}

}  // namespace taskpipe
