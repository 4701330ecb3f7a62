#include "support/results.hpp"

#include <regex>
#include <stdexcept>
#include <unordered_map>

namespace taskpipe::testing {

namespace {

std::string first_few(const std::vector<std::string>& lines) {
    std::string text;
    for (std::size_t i = 0; i < lines.size() && i < 5; ++i) text += " '" + lines[i] + "'";
    if (lines.size() > 5) text += " ...";
    return text;
}

}  // namespace

std::string Tally::describe() const {
    return std::to_string(missing.size()) + " missing:" + first_few(missing) + "\n" +
           std::to_string(duplicated.size()) + " duplicated:" + first_few(duplicated) + "\n" +
           std::to_string(unexpected.size()) + " unexpected:" + first_few(unexpected) + "\n";
}

std::vector<std::string> split_lines(std::string_view output) {
    std::vector<std::string> lines;
    while (!output.empty()) {
        const auto end = output.find('\n');
        lines.emplace_back(output.substr(0, end));
        output.remove_prefix(end == std::string_view::npos ? output.size() : end + 1);
    }
    return lines;
}

bool is_log_line(std::string_view line, std::string_view program, std::string_view level) {
    static const std::regex time(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z )");
    const std::string head = std::string(program) + " " + std::string(level) + ": ";
    return std::regex_search(line.begin(), line.end(), time) && line.substr(25).starts_with(head);
}

Tally tally_lines(std::string_view output, const std::vector<std::string>& expected) {
    std::unordered_map<std::string, int> seen;
    for (auto& line : split_lines(output)) ++seen[std::move(line)];
    Tally tally;
    for (const auto& line : expected) {
        auto found = seen.find(line);
        if (found == seen.end()) {
            tally.missing.push_back(line);
            continue;
        }
        if (found->second > 1) tally.duplicated.push_back(line);
        seen.erase(found);
    }
    for (const auto& [line, count] : seen) tally.unexpected.push_back(line);
    return tally;
}

std::vector<nlohmann::json> parse_json_lines(std::string_view output) {
    std::vector<nlohmann::json> objects;
    for (const auto& line : split_lines(output)) objects.push_back(nlohmann::json::parse(line));
    return objects;
}

std::string result_bytes(const nlohmann::json& result, const std::string& field) {
    if (result.contains(field + "_base64")) {
        return decode_base64(result.at(field + "_base64").get<std::string>());
    }
    return result.at(field).get<std::string>();
}

std::string decode_base64(std::string_view text) {
    static constexpr std::string_view kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (text.size() % 4 != 0) throw std::invalid_argument("base64 length not a multiple of 4");
    std::string bytes;
    unsigned bits = 0;
    int count = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '=') {
            if (i + 2 < text.size()) throw std::invalid_argument("base64 padding in the middle");
            continue;
        }
        const auto value = kAlphabet.find(text[i]);
        if (value == std::string_view::npos) throw std::invalid_argument("not base64");
        bits = (bits << 6) | static_cast<unsigned>(value);
        count += 6;
        if (count >= 8) {
            count -= 8;
            bytes.push_back(static_cast<char>((bits >> count) & 0xffu));
        }
    }
    return bytes;
}

std::string to_hex(std::string_view bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string hex;
    for (const char c : bytes) {
        const auto byte = static_cast<unsigned char>(c);
        hex.push_back(kDigits[byte >> 4]);
        hex.push_back(kDigits[byte & 0xfu]);
    }
    return hex;
}

}  // namespace taskpipe::testing
