#include "joblog_reader.hpp"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "taskpipe/joblog_format.hpp"
#include "taskpipe/message.hpp"
#include "taskpipe/sockets.hpp"

namespace taskpipe {

namespace {

std::vector<std::string_view> split_tabs(std::string_view line) {
    std::vector<std::string_view> fields;
    for (;;) {
        const auto tab = line.find('\t');
        fields.push_back(line.substr(0, tab));
        if (tab == std::string_view::npos) return fields;
        line.remove_prefix(tab + 1);
    }
}

std::optional<std::uint64_t> parse_id(std::string_view text) {
    std::uint64_t id = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (error != std::errc() || end != text.data() + text.size() || id == 0) return std::nullopt;
    return id;
}

}  // namespace

RecordedTasks parse_joblog(std::istream& in, const std::string& name) {
    const std::string header = joblog::header();
    const std::string_view header_line(header.data(), header.size() - 1);
    RecordedTasks tasks;
    std::string line;
    for (std::uint64_t number = 1; std::getline(in, line); ++number) {
        if (in.eof()) break;  // no newline: a line cut short; its task runs again
        // The sink escapes every carriage return of an input, so one ending the line is a CRLF
        // line end (a copy through Windows or a converting transfer).
        if (!line.empty() && line.back() == '\r') line.pop_back();
        auto fail = [&](const std::string& why) {
            throw std::runtime_error(name + ":" + std::to_string(number) + ": " + why);
        };
        if (line == header_line) continue;
        const auto fields = split_tabs(line);
        if (fields.size() != joblog::kColumns.size()) {
            fail("expected " + std::to_string(joblog::kColumns.size()) +
                 " tab-separated fields, found " + std::to_string(fields.size()));
        }
        const auto id = parse_id(fields[0]);
        if (!id) fail("the id is not a positive integer: " + std::string(fields[0].substr(0, 40)));
        const auto status = status_from_string(fields[4]);
        if (!status) fail("unknown status: " + std::string(fields[4].substr(0, 40)));
        auto input = joblog::unescape(fields[8]);
        if (!input) fail("the input holds an unknown escape sequence");
        RecordedTask& task = tasks[*id];
        if (*status == Status::ok) task.ok = true;
        if (*status != Status::lost && !task.input) task.input = std::move(*input);
    }
    if (in.bad()) throw std::runtime_error(name + ": read error");
    return tasks;
}

RecordedTasks read_joblog(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw StartupError("cannot read the joblog " + path + ": " + std::strerror(errno));
    }
    try {
        return parse_joblog(in, path);
    } catch (const std::runtime_error& e) {
        throw StartupError(std::string("malformed joblog: ") + e.what());
    }
}

}  // namespace taskpipe
