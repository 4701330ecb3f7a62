// What both heads, a batch's Ventilator and a Service, do as time passes: while the sink is
// silent, or after this process did not run for a while (SIGSTOP, a suspended machine), every
// deadline is held rather than tasks re-sent blindly; otherwise the ledger's deadlines expire.
// It logs; the role reports the lost tasks its own way.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "ledger.hpp"
#include "sink_session.hpp"

namespace taskpipe {

// "12 s": a duration in whole seconds, for log lines.
std::string seconds(std::chrono::steady_clock::duration d);

class HeadWatch {
  public:
    using Clock = std::chrono::steady_clock;

    // Both must outlive the watch.
    HeadWatch(Ledger& ledger, SinkSession& session) : ledger_(ledger), session_(session) {}

    // The loop starts at `now`.
    void start(Clock::time_point now) { last_loop_ = now; }
    // The loop runs at least every `expected`; a much longer gap means this process was not
    // running. Deadlines and the sink's silence restart from now, and the sink hears a Hello at
    // once (ZeroMQ may have replaced the connection meanwhile).
    void check_pause(Clock::time_point now, Clock::duration expected);
    // Holds or expires the deadlines; returns the tasks given up on (logged already).
    std::vector<Ledger::LostTask> check_deadlines(Clock::time_point now);

  private:
    Ledger& ledger_;
    SinkSession& session_;
    Clock::time_point last_loop_;
    bool sink_silent_ = false;
};

}  // namespace taskpipe
