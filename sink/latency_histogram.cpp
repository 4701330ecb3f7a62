#include "latency_histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace taskpipe {

std::size_t LatencyHistogram::fine_index(std::uint64_t micros) {
    if (micros < 16) return static_cast<std::size_t>(micros);
    const auto exponent = static_cast<std::size_t>(std::bit_width(micros)) - 1;  // >= 4
    const auto sub = static_cast<std::size_t>((micros >> (exponent - 4)) & 15);
    return std::min<std::size_t>(16 + (exponent - 4) * 16 + sub, kFine - 1);
}

std::uint64_t LatencyHistogram::fine_upper(std::size_t index) {
    if (index < 16) return index;
    const std::size_t exponent = (index - 16) / 16 + 4;
    const std::uint64_t sub = (index - 16) % 16;
    return ((16 + sub + 1) << (exponent - 4)) - 1;
}

void LatencyHistogram::add(std::uint64_t micros) {
    ++fine_[fine_index(micros)];
    const double seconds = static_cast<double>(micros) / 1e6;
    const auto bound = std::lower_bound(kBucketBounds.begin(), kBucketBounds.end(), seconds);
    if (bound != kBucketBounds.end())
        ++coarse_[static_cast<std::size_t>(bound - kBucketBounds.begin())];
    ++count_;
    sum_ += micros;
}

std::uint64_t LatencyHistogram::percentile(double q) const {
    if (count_ == 0) return 0;
    const auto rank = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_))));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kFine; ++i) {
        seen += fine_[i];
        if (seen >= rank) return fine_upper(i);
    }
    return fine_upper(kFine - 1);
}

std::uint64_t LatencyHistogram::cumulative(std::size_t i) const {
    std::uint64_t total = 0;
    for (std::size_t j = 0; j <= i && j < coarse_.size(); ++j) total += coarse_[j];
    return total;
}

}  // namespace taskpipe
