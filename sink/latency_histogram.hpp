// A histogram of durations in microseconds with about 6% resolution, for percentiles, and the
// fixed buckets Prometheus clients conventionally use, for --metrics.
//
// Memory is constant (a few KiB) whatever the number of values. Not thread-safe.
#pragma once

#include <array>
#include <cstdint>

namespace taskpipe {

class LatencyHistogram {
  public:
    // Upper bounds, in seconds, of the cumulative buckets published by --metrics (+Inf last).
    static constexpr std::array<double, 16> kBucketBounds = {
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
        0.25,   0.5,   1.0,    2.5,   5.0,  10.0,  30.0, 60.0};

    void add(std::uint64_t micros);

    std::uint64_t count() const { return count_; }
    std::uint64_t sum_micros() const { return sum_; }
    // The value below which a fraction `q` (0..1] of the values lie, in microseconds, to within
    // the resolution; 0 when empty.
    std::uint64_t percentile(double q) const;
    // How many values were at most kBucketBounds[i] seconds (cumulative, as Prometheus wants).
    std::uint64_t cumulative(std::size_t i) const;

  private:
    // Values below 16 us each have a bucket; above, every power of two is split in 16.
    static constexpr std::size_t kFine = 16 + 60 * 16;
    static std::size_t fine_index(std::uint64_t micros);
    static std::uint64_t fine_upper(std::size_t index);

    std::array<std::uint64_t, kFine> fine_{};
    std::array<std::uint64_t, kBucketBounds.size()> coarse_{};  // not cumulative
    std::uint64_t count_ = 0;
    std::uint64_t sum_ = 0;
};

}  // namespace taskpipe
