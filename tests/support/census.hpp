// Counting a batch's results: which ids of 1..total a sink's --jsonl output holds, how often,
// and with which status. Every fault test ends by asserting exactly-once output with it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/process.hpp"

namespace taskpipe::testing {

// How the ids in a sink's --jsonl output compare with the batch 1..total, each exactly once.
struct Census {
    std::vector<std::uint64_t> missing;
    std::vector<std::uint64_t> duplicated;
    std::vector<std::uint64_t> unexpected;
    std::map<std::uint64_t, nlohmann::json> results;  // the first result for each id

    bool exact() const { return missing.empty() && duplicated.empty() && unexpected.empty(); }

    // The counts and the first few ids of each kind, for a failure message.
    std::string describe() const;

    // The ids whose result has `status`, or (with `equal` false) has another one.
    std::vector<std::uint64_t> with_status(std::string_view status, bool equal = true) const;
    std::vector<std::uint64_t> not_with_status(std::string_view status) const {
        return with_status(status, false);
    }
};

Census take_census(std::string_view jsonl, std::uint64_t total);

// How many results (lines) the sink has written so far.
std::size_t results_written(const Process& sink);

}  // namespace taskpipe::testing
