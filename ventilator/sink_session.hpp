// The ventilator's conversation with the sink over the control socket, as a state machine that
// takes events and the current time and says what to do; no I/O, no clock of its own.
//
// Phases: `waiting` until a sink welcomes the batch (Hello every second), then `welcomed`. The
// sink sends something at least once a second (an empty `alive` if nothing else). When it has
// been silent for kRehelloAfter, the ventilator says Hello again every second, carrying the
// sink instance that welcomed it: ZeroMQ replaces a connection whose peer was paused past its
// heartbeat timeout, and the sink must learn the new one (a restarted sink must learn the batch
// at all). A Welcome from another sink instance than before means the sink was restarted: the
// batch is handed over to it (Welcomed::new_sink). While the sink is silent for a liveness
// timeout the ledger holds its deadlines (silent()); after the give-up timeout the ventilator
// stops with kExitGaveUp (gave_up()). A pause of this process (SIGSTOP, a suspended machine) is
// not the sink's silence: paused() forgives it.
//
// Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>

namespace taskpipe {

class SinkSession {
  public:
    using Clock = std::chrono::steady_clock;
    using TimePoint = Clock::time_point;

    static constexpr auto kHelloInterval = std::chrono::seconds(1);
    // The sink says something every second; this much silence means it lost our connection.
    static constexpr auto kRehelloAfter = std::chrono::milliseconds(2500);

    struct Settings {
        std::chrono::milliseconds liveness_timeout{5000};
        std::chrono::milliseconds give_up{60000};  // 0: wait for ever
    };

    enum class Phase : std::uint8_t { waiting, welcomed };
    enum class Welcomed : std::uint8_t { first, again, new_sink };

    SinkSession(Settings settings, TimePoint now) : settings_(settings), last_heard_(now) {}

    Phase phase() const { return phase_; }
    bool welcomed() const { return phase_ == Phase::welcomed; }
    // The sink instance that welcomed the batch last (0: none yet, or an older sink).
    std::uint64_t sink() const { return sink_; }

    // Whether to send a Hello now; hello_sent() when it went.
    bool hello_due(TimePoint now) const;
    void hello_sent(TimePoint now) {
        last_hello_ = now;
        reconnected_ = false;
    }
    // ZeroMQ made a new connection to the sink (after a drop): once welcomed, say Hello on it at
    // once, so that the sink moves the batch's conversation to it.
    void connected() { reconnected_ = welcomed(); }

    // Anything well-formed from the sink about our batch.
    void heard(TimePoint now) { last_heard_ = now; }
    // A Welcome for our batch from sink instance `sink`.
    Welcomed welcome(std::uint64_t sink, TimePoint now);

    // No word from the sink for a liveness timeout: deadlines must be held.
    bool silent(TimePoint now) const { return now - last_heard_ > settings_.liveness_timeout; }
    // No word for the give-up timeout.
    bool gave_up(TimePoint now) const;
    Clock::duration silence(TimePoint now) const { return now - last_heard_; }

    // This process did not run for `gap` (stopped, or the machine suspended).
    void paused(Clock::duration gap) { last_heard_ += gap; }

  private:
    Settings settings_;
    Phase phase_ = Phase::waiting;
    std::uint64_t sink_ = 0;
    TimePoint last_heard_;
    TimePoint last_hello_ = TimePoint::min();
    bool reconnected_ = false;
};

}  // namespace taskpipe
