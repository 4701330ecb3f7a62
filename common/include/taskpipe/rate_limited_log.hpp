// A warning log for events that can come back faster than anyone can read them (a refused
// client reconnects every 0.1 to 2 s; a listener out of file descriptors fails thousands of
// accepts a second): each distinct line is written at most once a minute, and at most ten
// lines every ten seconds; what it leaves out is counted on one line per ten seconds.
//
// Not thread-safe: one owner thread calls note() and tick().
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace taskpipe {

class RateLimitedLog {
  public:
    using Clock = std::chrono::steady_clock;

    // `what` names the events in the line that counts the ones left out ("refused connection
    // attempts").
    explicit RateLimitedLog(std::string what);

    // Logs `line` as a warning unless the limits say otherwise.
    void note(const std::string& line, Clock::time_point now = Clock::now());
    // Ends a ten-second window when one has passed: call it now and then even without events.
    void tick(Clock::time_point now = Clock::now());

  private:
    static constexpr auto kWindow = std::chrono::seconds(10);
    static constexpr auto kRepeatAfter = std::chrono::seconds(60);
    static constexpr int kLinesPerWindow = 10;
    static constexpr std::size_t kRemembered = 1024;

    std::string what_;
    std::unordered_map<std::string, Clock::time_point> recent_;
    Clock::time_point window_start_ = Clock::now();
    int lines_ = 0;
    std::uint64_t suppressed_ = 0;
};

}  // namespace taskpipe
