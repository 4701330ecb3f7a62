// LatencyHistogram (sink/latency_histogram.hpp): "durations in microseconds with about 6%
// resolution, for percentiles, and the fixed buckets Prometheus clients conventionally use".
#include "latency_histogram.hpp"

#include <gtest/gtest.h>

#include <cstdint>

namespace taskpipe {
namespace {

// Within the histogram's resolution: 1/16 of the true value, plus one for the exact buckets.
void expect_near_percentile(std::uint64_t got, std::uint64_t want) {
    EXPECT_LE(got, want + want / 16 + 1) << "want about " << want;
    EXPECT_GE(got + got / 16 + 1, want) << "want about " << want;
}

TEST(LatencyHistogram, EmptyHasNoCountAndZeroPercentiles) {
    const LatencyHistogram h;
    EXPECT_EQ(h.count(), 0u);
    EXPECT_EQ(h.sum_micros(), 0u);
    EXPECT_EQ(h.percentile(0.5), 0u);
    for (std::size_t i = 0; i < LatencyHistogram::kBucketBounds.size(); ++i) {
        EXPECT_EQ(h.cumulative(i), 0u);
    }
}

TEST(LatencyHistogram, PercentilesOfAUniformSpreadAreWithinTheResolution) {
    LatencyHistogram h;
    for (std::uint64_t us = 1; us <= 100'000; ++us) h.add(us);
    EXPECT_EQ(h.count(), 100'000u);
    EXPECT_EQ(h.sum_micros(), std::uint64_t{100'000} * 100'001 / 2);
    expect_near_percentile(h.percentile(0.5), 50'000);
    expect_near_percentile(h.percentile(0.9), 90'000);
    expect_near_percentile(h.percentile(0.99), 99'000);
    expect_near_percentile(h.percentile(1.0), 100'000);
    expect_near_percentile(h.percentile(0.00001), 1);
}

TEST(LatencyHistogram, SmallValuesAreExact) {
    LatencyHistogram h;
    for (std::uint64_t us = 0; us < 16; ++us) h.add(us);
    for (std::uint64_t us = 0; us < 16; ++us) {
        EXPECT_EQ(h.percentile(static_cast<double>(us + 1) / 16.0), us);
    }
}

TEST(LatencyHistogram, OneRepeatedValueIsEveryPercentile) {
    LatencyHistogram h;
    for (int i = 0; i < 1000; ++i) h.add(250'000);
    for (const double q : {0.01, 0.5, 0.99, 1.0}) expect_near_percentile(h.percentile(q), 250'000);
}

// "How many values were at most kBucketBounds[i] seconds (cumulative, as Prometheus wants)":
// a value equal to a bound is in that bound's bucket.
TEST(LatencyHistogram, CumulativeBucketsCountValuesAtMostEachBound) {
    LatencyHistogram h;
    h.add(400);         // 0.4 ms: <= 0.0005
    h.add(1'000);       // exactly 0.001
    h.add(1'001);       // just above: <= 0.0025
    h.add(700'000);     // <= 1
    h.add(60'000'000);  // exactly the last bound
    h.add(90'000'000);  // above every bound: only in +Inf, that is count()
    const auto& bounds = LatencyHistogram::kBucketBounds;
    const auto index_of = [&](double bound) {
        for (std::size_t i = 0; i < bounds.size(); ++i) {
            if (bounds[i] == bound) return i;
        }
        ADD_FAILURE() << "no bound " << bound;
        return std::size_t{0};
    };
    EXPECT_EQ(h.cumulative(index_of(0.0005)), 1u);
    EXPECT_EQ(h.cumulative(index_of(0.001)), 2u);
    EXPECT_EQ(h.cumulative(index_of(0.0025)), 3u);
    EXPECT_EQ(h.cumulative(index_of(0.5)), 3u);
    EXPECT_EQ(h.cumulative(index_of(1.0)), 4u);
    EXPECT_EQ(h.cumulative(index_of(30.0)), 4u);
    EXPECT_EQ(h.cumulative(index_of(60.0)), 5u);
    EXPECT_EQ(h.count(), 6u);
    for (std::size_t i = 1; i < bounds.size(); ++i) {
        EXPECT_LT(bounds[i - 1], bounds[i]);
        EXPECT_LE(h.cumulative(i - 1), h.cumulative(i));
    }
}

}  // namespace
}  // namespace taskpipe
