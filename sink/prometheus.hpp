// The sink's statistics in Prometheus's text exposition format (version 0.0.4), for --metrics.
//
// Every metric is named taskpipe_*; counters end in _total and durations are in seconds. Label
// values (worker names come from the network) are escaped as the format requires. A pure
// function: safe to call from any thread on a snapshot it owns.
#pragma once

#include <string>
#include <string_view>

#include "stats.hpp"

namespace taskpipe {

// The media type of what render_prometheus() returns, for the HTTP Content-Type header.
inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

// The whole exposition: HELP and TYPE lines, then the samples of each metric.
std::string render_prometheus(const StatsSnapshot& stats);

// `value` escaped for use between the double quotes of a label value: backslash, double quote
// and newline become \\, \" and \n.
std::string escape_label_value(std::string_view value);

}  // namespace taskpipe
