#include "sink_session.hpp"

namespace taskpipe {

bool SinkSession::hello_due(TimePoint now) const {
    if (reconnected_) return true;
    if (last_hello_ != TimePoint::min() && now - last_hello_ < kHelloInterval) return false;
    return phase_ == Phase::waiting || now - last_heard_ >= kRehelloAfter;
}

SinkSession::Welcomed SinkSession::welcome(std::uint64_t sink, TimePoint now) {
    last_heard_ = now;
    if (phase_ == Phase::waiting) {
        phase_ = Phase::welcomed;
        sink_ = sink;
        return Welcomed::first;
    }
    if (sink == sink_) return Welcomed::again;
    sink_ = sink;
    return Welcomed::new_sink;
}

bool SinkSession::gave_up(TimePoint now) const {
    return settings_.give_up.count() > 0 && now - last_heard_ >= settings_.give_up;
}

}  // namespace taskpipe
