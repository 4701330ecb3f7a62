#include "support/census.hpp"

#include <algorithm>

#include "support/results.hpp"

namespace taskpipe::testing {

std::string Census::describe() const {
    auto first_few = [](const std::vector<std::uint64_t>& ids) {
        std::string text = std::to_string(ids.size());
        for (std::size_t i = 0; i < ids.size() && i < 10; ++i) {
            text += (i == 0 ? ": " : ", ") + std::to_string(ids[i]);
        }
        return text + (ids.size() > 10 ? " ...\n" : "\n");
    };
    return "missing " + first_few(missing) + "duplicated " + first_few(duplicated) + "unexpected " +
           first_few(unexpected);
}

std::vector<std::uint64_t> Census::with_status(std::string_view status, bool equal) const {
    std::vector<std::uint64_t> ids;
    for (const auto& [id, result] : results) {
        if ((result.at("status") == status) == equal) ids.push_back(id);
    }
    return ids;
}

Census take_census(std::string_view jsonl, std::uint64_t total) {
    Census census;
    std::map<std::uint64_t, int> seen;
    for (auto& result : parse_json_lines(jsonl)) {
        const auto id = result.at("id").get<std::uint64_t>();
        if (++seen[id] == 1) census.results.emplace(id, std::move(result));
    }
    for (std::uint64_t id = 1; id <= total; ++id) {
        const auto found = seen.find(id);
        if (found == seen.end()) {
            census.missing.push_back(id);
        } else if (found->second > 1) {
            census.duplicated.push_back(id);
        }
    }
    for (const auto& [id, count] : seen) {
        if (id == 0 || id > total) census.unexpected.push_back(id);
    }
    return census;
}

std::size_t results_written(const Process& sink) {
    const std::string out = sink.stdout_text();
    return static_cast<std::size_t>(std::count(out.begin(), out.end(), '\n'));
}

}  // namespace taskpipe::testing
