#include "builtin.hpp"

#include <array>
#include <charconv>
#include <utility>

namespace taskpipe {

namespace {

std::optional<long> parse_milliseconds(std::string_view payload) {
    long value = 0;
    const auto [end, ec] = std::from_chars(payload.data(), payload.data() + payload.size(), value);
    if (ec != std::errc() || end != payload.data() + payload.size() || value < 0 ||
        value > 86'400'000) {
        return std::nullopt;
    }
    return value;
}

BuiltinOutcome bad_milliseconds(std::string_view name, std::string_view payload) {
    BuiltinOutcome outcome;
    outcome.status = Status::error;
    outcome.exit_code.reset();
    outcome.err = std::string(name) + ": payload '" + std::string(payload.substr(0, 64)) +
                  "' is not a whole number of milliseconds (0 to 86400000)\n";
    return outcome;
}

BuiltinOutcome echo(std::string_view payload) {
    BuiltinOutcome outcome;
    outcome.out.reserve(payload.size() + 1);
    outcome.out.append(payload).push_back('\n');
    return outcome;
}

BuiltinOutcome sleep(std::string_view payload) {
    const auto ms = parse_milliseconds(payload);
    if (!ms) return bad_milliseconds("sleep", payload);
    BuiltinOutcome outcome;
    outcome.delay = std::chrono::milliseconds(*ms);
    return outcome;
}

BuiltinOutcome fail(std::string_view payload) {
    BuiltinOutcome outcome;
    outcome.status = Status::failed;
    outcome.exit_code = 1;
    outcome.err = std::string(payload) + "\n";
    return outcome;
}

BuiltinOutcome spin(std::string_view payload) {
    const auto ms = parse_milliseconds(payload);
    if (!ms) return bad_milliseconds("spin", payload);
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(*ms);
    volatile std::uint64_t sink = 0;
    while (std::chrono::steady_clock::now() < until) {
        for (int i = 0; i < 10000; ++i) sink = sink + static_cast<std::uint64_t>(i);
    }
    return {};
}

constexpr std::array<std::pair<std::string_view, Builtin>, 4> kBuiltins = {{
    {"echo", echo},
    {"sleep", sleep},
    {"fail", fail},
    {"spin", spin},
}};

}  // namespace

std::optional<Builtin> find_builtin(std::string_view name) {
    for (const auto& [n, f] : kBuiltins) {
        if (n == name) return f;
    }
    return std::nullopt;
}

std::vector<std::string> builtin_names() {
    std::vector<std::string> names;
    for (const auto& entry : kBuiltins) names.emplace_back(entry.first);
    return names;
}

}  // namespace taskpipe
