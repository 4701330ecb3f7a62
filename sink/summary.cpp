#include "summary.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

#include "output_file.hpp"
#include "taskpipe/sockets.hpp"

namespace taskpipe {

namespace {

constexpr std::array<Status, kStatusCount> kStatuses = {Status::ok, Status::failed, Status::error,
                                                        Status::timeout, Status::lost};

std::string milliseconds_text(std::uint64_t micros) {
    char text[32];
    std::snprintf(text, sizeof text, "%.2f ms", static_cast<double>(micros) / 1000.0);
    return text;
}

double throughput(const StatsSnapshot& s) {
    return s.elapsed_s > 0 ? static_cast<double>(s.finished()) / s.elapsed_s : 0.0;
}

}  // namespace

std::vector<std::string> summary_lines(const StatsSnapshot& s, std::uint64_t total) {
    std::vector<std::string> lines;
    char rate[64];
    std::snprintf(rate, sizeof rate, "%.2f s, %.0f tasks/s", s.elapsed_s, throughput(s));
    const std::uint64_t lost = s.count(Status::lost);
    const std::uint64_t workers = s.workers.size() + s.workers_dropped;
    std::string line = std::to_string(total) + " tasks, " +
                       std::to_string(s.unsuccessful() - lost) + " failed, " +
                       std::to_string(lost) + " lost, " + rate + ", " + std::to_string(workers) +
                       (workers == 1 ? " worker" : " workers");
    if (s.workers_untracked > 0) {
        line += ", " + std::to_string(s.workers_untracked) +
                " messages from workers past the table of " + std::to_string(s.max_workers) +
                " (--max-workers) not tracked";
    }
    if (s.duplicates > 0)
        line += ", " + std::to_string(s.duplicates) + " duplicate results dropped";
    if (s.foreign > 0)
        line += ", " + std::to_string(s.foreign) + " results of other batches dropped";
    if (s.malformed > 0) line += ", " + std::to_string(s.malformed) + " malformed messages dropped";
    if (s.refused > 0) {
        line += ", " + std::to_string(s.refused) +
                " control messages refused (not from the batch's ventilator)";
    }
    if (s.skipped > 0) {
        line += ", " + std::to_string(s.skipped) + " skipped (finished in an earlier run)";
    }
    if (s.handed_over > 0) {
        line += ", " + std::to_string(s.handed_over) + " recorded by the sink before this one (" +
                std::to_string(s.handed_over_failed) + " not ok)";
    }
    lines.push_back(line);

    line = "by status:";
    for (Status status : kStatuses) {
        line += " " + std::to_string(s.count(status)) + " " + to_string(status) + ",";
    }
    line.pop_back();
    if (s.skipped > 0) {
        line += "; " + std::to_string(s.skipped) + " skipped (" + std::to_string(s.skipped_failed) +
                " of them failed in an earlier run)";
    }
    lines.push_back(line);

    if (s.latency.count() > 0) {
        lines.push_back("latency, task sent to result received: p50 " +
                        milliseconds_text(s.latency.percentile(0.50)) + ", p95 " +
                        milliseconds_text(s.latency.percentile(0.95)) + ", p99 " +
                        milliseconds_text(s.latency.percentile(0.99)));
    }
    if (!s.workers.empty()) {
        char row[256];
        std::snprintf(row, sizeof row, "%-32s %10s %10s %12s", "worker", "tasks", "failed",
                      "busy s");
        lines.emplace_back(row);
        for (const auto& [name, w] : s.workers) {
            std::snprintf(row, sizeof row, "%-32s %10llu %10llu %12.2f", name.c_str(),
                          static_cast<unsigned long long>(w.tasks),
                          static_cast<unsigned long long>(w.failed),
                          static_cast<double>(w.busy_us) / 1e6);
            lines.emplace_back(row);
        }
        const WorkerStats& o = s.other_workers;
        if (o.tasks > 0) {
            std::snprintf(row, sizeof row, "%-32s %10llu %10llu %12.2f", "(other workers)",
                          static_cast<unsigned long long>(o.tasks),
                          static_cast<unsigned long long>(o.failed),
                          static_cast<double>(o.busy_us) / 1e6);
            lines.emplace_back(row);
        }
    }
    return lines;
}

nlohmann::json summary_json(const StatsSnapshot& s, std::uint64_t total, bool complete) {
    nlohmann::json j;
    j["complete"] = complete;
    j["tasks"] = total;
    nlohmann::json by_status = nlohmann::json::object();
    for (Status status : kStatuses) by_status[to_string(status)] = s.count(status);
    j["status"] = by_status;
    j["skipped"] = s.skipped;
    j["skipped_failed"] = s.skipped_failed;
    j["handed_over"] = s.handed_over;
    j["handed_over_failed"] = s.handed_over_failed;
    j["refused"] = s.refused;
    j["wall_s"] = s.elapsed_s;
    j["tasks_per_s"] = throughput(s);
    j["results_received"] = s.received;
    j["duplicates"] = s.duplicates;
    j["foreign"] = s.foreign;
    j["malformed"] = s.malformed;
    j["resent"] = s.resent;
    nlohmann::json latency;
    latency["count"] = s.latency.count();
    for (const auto& [name, q] : {std::pair{"p50", 0.50}, {"p95", 0.95}, {"p99", 0.99}}) {
        latency[name] = static_cast<double>(s.latency.percentile(q)) / 1e6;
    }
    j["latency_s"] = latency;
    nlohmann::json workers = nlohmann::json::array();
    for (const auto& [name, w] : s.workers) {
        workers.push_back({{"worker", name},
                           {"tasks", w.tasks},
                           {"failed", w.failed},
                           {"busy_s", static_cast<double>(w.busy_us) / 1e6}});
    }
    j["workers"] = workers;
    // Workers dropped from the sink's table (--max-workers), and those never in it.
    j["other_workers"] = {{"tasks", s.other_workers.tasks},
                          {"failed", s.other_workers.failed},
                          {"busy_s", static_cast<double>(s.other_workers.busy_us) / 1e6},
                          {"dropped", s.workers_dropped},
                          {"untracked_messages", s.workers_untracked}};
    return j;
}

void check_writable_file(const std::string& path) {
    try {
        const OutputFile file = open_output_file(AT_FDCWD, path, path);
        ::close(file.fd);
        if (file.created) ::unlink(path.c_str());
    } catch (const std::system_error& e) {
        throw StartupError(std::string("--stats: ") + e.what());
    }
}

void write_json_file(const std::string& path, const nlohmann::json& json) {
    const OutputFile file = open_output_file(AT_FDCWD, path, path);
    try {
        if (::ftruncate(file.fd, 0) != 0) {
            throw std::system_error(errno, std::generic_category(), "cannot write " + path);
        }
        write_or_throw(file.fd, json.dump(2) + "\n", path);
    } catch (...) {
        ::close(file.fd);
        throw;
    }
    if (::close(file.fd) != 0) {
        throw std::system_error(errno, std::generic_category(), "cannot write " + path);
    }
}

}  // namespace taskpipe
