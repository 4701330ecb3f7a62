// render_prometheus (sink/prometheus.hpp), read back the way a Prometheus server reads the text
// exposition format 0.0.4: "# HELP name text", "# TYPE name type", then one sample per line,
// `name{label="value",...} value`, label values escaped as \\, \" and \n; a histogram has
// cumulative `_bucket{le="..."}` samples ending with le="+Inf", equal to `_count`.
#include "prometheus.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace taskpipe {
namespace {

struct Sample {
    std::string name;
    std::map<std::string, std::string> labels;  // unescaped values
    double value = 0;
};

struct Exposition {
    std::vector<Sample> samples;
    std::map<std::string, std::string> types;  // by family name
    std::set<std::string> helped;

    // The value of the one sample named `name` with exactly these labels.
    double value(const std::string& name,
                 const std::map<std::string, std::string>& labels = {}) const {
        const Sample* found = nullptr;
        for (const Sample& s : samples) {
            if (s.name != name || s.labels != labels) continue;
            if (found) throw std::runtime_error("two samples " + name);
            found = &s;
        }
        if (!found) throw std::runtime_error("no sample " + name);
        return found->value;
    }
    bool has(const std::string& name) const {
        for (const Sample& s : samples) {
            if (s.name == name) return true;
        }
        return false;
    }
};

// A strict reader of the format: throws std::runtime_error on anything it does not expect.
Exposition parse(const std::string& text) {
    Exposition out;
    if (text.empty() || text.back() != '\n') throw std::runtime_error("no final newline");
    std::size_t start = 0;
    while (start < text.size()) {
        const std::size_t end = text.find('\n', start);
        const std::string line = text.substr(start, end - start);
        start = end + 1;
        if (line.starts_with("# HELP ")) {
            const std::string rest = line.substr(7);
            out.helped.insert(rest.substr(0, rest.find(' ')));
            continue;
        }
        if (line.starts_with("# TYPE ")) {
            const std::string rest = line.substr(7);
            const auto space = rest.find(' ');
            if (space == std::string::npos) throw std::runtime_error("bad TYPE: " + line);
            if (!out.types.emplace(rest.substr(0, space), rest.substr(space + 1)).second) {
                throw std::runtime_error("TYPE twice: " + line);
            }
            continue;
        }
        if (line.empty() || line[0] == '#') throw std::runtime_error("stray line: " + line);
        Sample sample;
        std::size_t i = 0;
        while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
        sample.name = line.substr(0, i);
        if (i < line.size() && line[i] == '{') {
            ++i;
            while (line.at(i) != '}') {
                const auto eq = line.find('=', i);
                const std::string label = line.substr(i, eq - i);
                i = eq + 1;
                if (line.at(i) != '"') throw std::runtime_error("unquoted label: " + line);
                std::string value;
                for (++i; line.at(i) != '"'; ++i) {
                    if (line[i] != '\\') {
                        value += line[i];
                        continue;
                    }
                    const char escaped = line.at(++i);
                    if (escaped == 'n') {
                        value += '\n';
                    } else if (escaped == '\\' || escaped == '"') {
                        value += escaped;
                    } else {
                        throw std::runtime_error("bad escape: " + line);
                    }
                }
                ++i;
                if (line.at(i) == ',') ++i;
                sample.labels[label] = value;
            }
            ++i;
        }
        if (line.at(i) != ' ') throw std::runtime_error("no value: " + line);
        const std::string value = line.substr(i + 1);
        std::size_t used = 0;
        sample.value = std::stod(value, &used);
        if (used != value.size()) throw std::runtime_error("bad value: " + line);
        out.samples.push_back(std::move(sample));
    }
    return out;
}

// The family a sample belongs to: its name without a histogram's suffix.
std::string family_of(const std::string& name, const Exposition& e) {
    for (const std::string suffix : {"_bucket", "_sum", "_count"}) {
        if (name.ends_with(suffix)) {
            const std::string base = name.substr(0, name.size() - suffix.size());
            if (e.types.contains(base) && e.types.at(base) == "histogram") return base;
        }
    }
    return name;
}

StatsSnapshot busy_snapshot() {
    StatsSnapshot s;
    s.elapsed_s = 12.5;
    s.total = 100;
    s.read = 100;
    s.in_flight = 7;
    s.resent = 3;
    s.received = 95;
    s.by_status = {80, 5, 1, 2, 1};  // ok, failed, error, timeout, lost
    s.skipped = 4;
    s.duplicates = 6;
    s.foreign = 2;
    s.malformed = 9;
    for (const std::uint64_t us : {300u, 1'000u, 20'000u, 20'000u, 700'000u, 90'000'000u}) {
        s.latency.add(us);
    }
    WorkerStats a;
    a.tasks = 50;
    a.failed = 3;
    a.busy_us = 2'500'000;
    a.live = true;
    s.workers["hosta:101"] = a;
    WorkerStats b;
    b.tasks = 38;
    b.failed = 5;
    b.busy_us = 1;
    s.workers["hostb:202"] = b;
    return s;
}

TEST(Prometheus, EverySampleHasHelpAndTypeAndTheRightNames) {
    const Exposition e = parse(render_prometheus(busy_snapshot()));
    ASSERT_FALSE(e.samples.empty());
    for (const Sample& s : e.samples) {
        const std::string family = family_of(s.name, e);
        EXPECT_TRUE(s.name.starts_with("taskpipe_")) << s.name;
        ASSERT_TRUE(e.types.contains(family)) << s.name;
        EXPECT_TRUE(e.helped.contains(family)) << s.name;
        const std::string& type = e.types.at(family);
        EXPECT_EQ(s.name.ends_with("_total"), type == "counter") << s.name << " is a " << type;
    }
}

TEST(Prometheus, CountersAndGaugesCarryTheSnapshotsValues) {
    const Exposition e = parse(render_prometheus(busy_snapshot()));
    EXPECT_EQ(e.value("taskpipe_tasks_read_total"), 100);
    EXPECT_EQ(e.value("taskpipe_results_received_total"), 95);
    EXPECT_EQ(e.value("taskpipe_tasks_finished_total", {{"status", "ok"}}), 80);
    EXPECT_EQ(e.value("taskpipe_tasks_finished_total", {{"status", "failed"}}), 5);
    EXPECT_EQ(e.value("taskpipe_tasks_finished_total", {{"status", "error"}}), 1);
    EXPECT_EQ(e.value("taskpipe_tasks_finished_total", {{"status", "timeout"}}), 2);
    EXPECT_EQ(e.value("taskpipe_tasks_finished_total", {{"status", "lost"}}), 1);
    EXPECT_EQ(e.value("taskpipe_tasks_failed_total"), 9);
    EXPECT_EQ(e.value("taskpipe_tasks_resent_total"), 3);
    EXPECT_EQ(e.value("taskpipe_tasks_in_flight"), 7);
    EXPECT_EQ(e.value("taskpipe_tasks_skipped_total"), 4);
    EXPECT_EQ(e.value("taskpipe_batch_tasks"), 100);
    EXPECT_EQ(e.value("taskpipe_batch_elapsed_seconds"), 12.5);
    EXPECT_EQ(e.value("taskpipe_results_dropped_total", {{"reason", "duplicate"}}), 6);
    EXPECT_EQ(e.value("taskpipe_results_dropped_total", {{"reason", "foreign"}}), 2);
    EXPECT_EQ(e.value("taskpipe_malformed_messages_total"), 9);
    EXPECT_EQ(e.types.at("taskpipe_tasks_in_flight"), "gauge");
    EXPECT_EQ(e.types.at("taskpipe_task_latency_seconds"), "histogram");
}

TEST(Prometheus, EachWorkerHasItsCountsBusySecondsAndLiveness) {
    const Exposition e = parse(render_prometheus(busy_snapshot()));
    const std::map<std::string, std::string> a = {{"worker", "hosta:101"}};
    const std::map<std::string, std::string> b = {{"worker", "hostb:202"}};
    EXPECT_EQ(e.value("taskpipe_worker_tasks_total", a), 50);
    EXPECT_EQ(e.value("taskpipe_worker_tasks_total", b), 38);
    EXPECT_EQ(e.value("taskpipe_worker_failed_total", a), 3);
    EXPECT_EQ(e.value("taskpipe_worker_failed_total", b), 5);
    EXPECT_EQ(e.value("taskpipe_worker_busy_seconds_total", a), 2.5);
    EXPECT_EQ(e.value("taskpipe_worker_busy_seconds_total", b), 1e-6);
    EXPECT_EQ(e.value("taskpipe_worker_up", a), 1);
    EXPECT_EQ(e.value("taskpipe_worker_up", b), 0);
    EXPECT_EQ(e.value("taskpipe_workers_live"), 1);
}

TEST(Prometheus, LatencyHistogramIsCumulativeAndInfEqualsCount) {
    const StatsSnapshot snapshot = busy_snapshot();
    const Exposition e = parse(render_prometheus(snapshot));
    std::vector<std::pair<double, double>> buckets;  // (le, count) in the order written
    bool saw_inf = false;
    for (const Sample& s : e.samples) {
        if (s.name != "taskpipe_task_latency_seconds_bucket") continue;
        ASSERT_FALSE(saw_inf) << "+Inf must be the last bucket";
        const std::string& le = s.labels.at("le");
        if (le == "+Inf") {
            saw_inf = true;
            EXPECT_EQ(s.value, 6);
            continue;
        }
        buckets.emplace_back(std::stod(le), s.value);
    }
    ASSERT_TRUE(saw_inf);
    ASSERT_EQ(buckets.size(), LatencyHistogram::kBucketBounds.size());
    for (std::size_t i = 0; i < buckets.size(); ++i) {
        EXPECT_EQ(buckets[i].first, LatencyHistogram::kBucketBounds[i]);
        EXPECT_EQ(buckets[i].second, static_cast<double>(snapshot.latency.cumulative(i)));
        if (i > 0) {
            EXPECT_LT(buckets[i - 1].first, buckets[i].first);
            EXPECT_LE(buckets[i - 1].second, buckets[i].second);
        }
    }
    EXPECT_EQ(buckets.front().second, 1);  // 300 us <= 0.5 ms
    EXPECT_EQ(buckets.back().second, 5);   // all but the 90 s one
    EXPECT_EQ(e.value("taskpipe_task_latency_seconds_count"), 6);
    EXPECT_DOUBLE_EQ(e.value("taskpipe_task_latency_seconds_sum"), 90.7413);
}

// "label_value can be any sequence of UTF-8 characters, but the backslash (\), double-quote
// ("), and line feed (\n) characters have to be escaped as \\, \", and \n, respectively."
TEST(Prometheus, WorkerNamesFromTheNetworkAreEscaped) {
    StatsSnapshot s;
    const std::string nasty = "evil\\host\"}\nfake_metric 1 \xc3\xa9:42";
    s.workers[nasty].tasks = 7;
    const std::string text = render_prometheus(s);
    EXPECT_NE(text.find(R"(worker="evil\\host\"}\nfake_metric 1 )"), std::string::npos) << text;
    const Exposition e = parse(text);
    EXPECT_EQ(e.value("taskpipe_worker_tasks_total", {{"worker", nasty}}), 7);
    EXPECT_FALSE(e.has("fake_metric"));
}

TEST(Prometheus, EscapeLabelValueEscapesExactlyThreeCharacters) {
    EXPECT_EQ(escape_label_value("plain host-1.example:99"), "plain host-1.example:99");
    EXPECT_EQ(escape_label_value("a\\b"), "a\\\\b");
    EXPECT_EQ(escape_label_value("a\"b"), "a\\\"b");
    EXPECT_EQ(escape_label_value("a\nb"), "a\\nb");
    EXPECT_EQ(escape_label_value("tab\there"), "tab\there");
}

TEST(Prometheus, BatchSizeIsAbsentUntilKnownAndAnEmptySnapshotParses) {
    const Exposition e = parse(render_prometheus(StatsSnapshot{}));
    EXPECT_FALSE(e.has("taskpipe_batch_tasks"));
    EXPECT_EQ(e.value("taskpipe_tasks_finished_total", {{"status", "ok"}}), 0);
    EXPECT_EQ(e.value("taskpipe_task_latency_seconds_bucket", {{"le", "+Inf"}}), 0);
    EXPECT_EQ(e.value("taskpipe_task_latency_seconds_count"), 0);
    EXPECT_FALSE(e.has("taskpipe_worker_tasks_total"));
    EXPECT_EQ(e.value("taskpipe_workers_live"), 0);
}

TEST(Prometheus, AWorkerWithNoNameIsLeftOut) {
    StatsSnapshot s;
    s.workers[""].tasks = 1;
    const Exposition e = parse(render_prometheus(s));
    EXPECT_FALSE(e.has("taskpipe_worker_tasks_total"));
}

}  // namespace
}  // namespace taskpipe
