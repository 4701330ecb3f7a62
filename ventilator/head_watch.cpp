#include "head_watch.hpp"

#include "taskpipe/log.hpp"

namespace taskpipe {

namespace {

constexpr auto kPauseThreshold = std::chrono::seconds(1);

}  // namespace

std::string seconds(std::chrono::steady_clock::duration d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + " s";
}

void HeadWatch::check_pause(Clock::time_point now, Clock::duration expected) {
    const Clock::duration gap = now - last_loop_;
    last_loop_ = now;
    if (gap < expected + kPauseThreshold) return;
    log_warning("this ventilator did not run for " + seconds(gap) +
                " (stopped, or the machine was suspended); its deadlines restart now");
    session_.paused(gap);
    ledger_.hold(now);
}

std::vector<Ledger::LostTask> HeadWatch::check_deadlines(Clock::time_point now) {
    if (!session_.welcomed()) return {};
    // Without word from the sink, a missing result says nothing about the workers: hold every
    // deadline until the sink is back rather than re-send (and count attempts) blindly.
    if (session_.silent(now)) {
        if (!sink_silent_) {
            log_warning("no word from the sink for " + seconds(session_.silence(now)) +
                        "; nothing is re-sent until it answers");
            sink_silent_ = true;
        }
        ledger_.hold(now);
        return {};
    }
    if (sink_silent_) {
        log_info("the sink answers again");
        sink_silent_ = false;
    }
    std::vector<Ledger::LostTask> lost = ledger_.expire(now);
    for (const Ledger::LostTask& task : lost) {
        log_warning("task " + std::to_string(task.id) + " lost: no result after " +
                    std::to_string(task.attempts) + " attempts" +
                    (task.overtime ? ", the last held longer than --max-task-time" : ""));
    }
    for (const Ledger::Resend& task : ledger_.take_resends()) {
        log_info("re-sending task " + std::to_string(task.id) + " (attempt " +
                 std::to_string(task.attempt) + "): " + resend_reason(task));
    }
    return lost;
}

}  // namespace taskpipe
