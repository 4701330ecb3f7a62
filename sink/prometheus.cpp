#include "prometheus.hpp"

#include <charconv>
#include <cstdint>
#include <system_error>

namespace taskpipe {

namespace {

// Shortest fixed-point text that reads back as the same double ("0.0005", "2.5", "60").
std::string format_double(double value) {
    char text[32];
    const auto [end, error] =
        std::to_chars(text, text + sizeof text, value, std::chars_format::fixed);
    if (error != std::errc()) return "NaN";
    return std::string(text, end);
}

std::string seconds_from_micros(std::uint64_t micros) {
    return format_double(static_cast<double>(micros) / 1e6);
}

class Exposition {
  public:
    // Starts a metric family: its HELP and TYPE lines.
    void family(std::string_view name, std::string_view type, std::string_view help) {
        text_.append("# HELP ").append(name).append(" ").append(help).append("\n");
        text_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
    }

    // One sample; `labels` is empty or the text between the braces, already escaped.
    void sample(std::string_view name, std::string_view labels, std::string_view value) {
        text_.append(name);
        if (!labels.empty()) text_.append("{").append(labels).append("}");
        text_.append(" ").append(value).append("\n");
    }
    void sample(std::string_view name, std::string_view labels, std::uint64_t value) {
        sample(name, labels, std::to_string(value));
    }

    // A family with a single unlabelled sample.
    void single(std::string_view name, std::string_view type, std::string_view help,
                std::uint64_t value) {
        family(name, type, help);
        sample(name, {}, value);
    }

    std::string take() { return std::move(text_); }

  private:
    std::string text_;
};

std::string label(std::string_view name, std::string_view value) {
    return std::string(name) + "=\"" + escape_label_value(value) + "\"";
}

void render_tasks(Exposition& out, const StatsSnapshot& s) {
    out.single("taskpipe_tasks_read_total", "counter",
               "Tasks the ventilator has read from its input.", s.read);
    out.single("taskpipe_results_received_total", "counter",
               "Results of the batch received, duplicates included.", s.received);
    out.family("taskpipe_tasks_finished_total", "counter",
               "Tasks with a final outcome, by status (lost included, skipped excluded).");
    for (std::size_t i = 0; i < kStatusCount; ++i) {
        out.sample("taskpipe_tasks_finished_total",
                   label("status", to_string(static_cast<Status>(i))), s.by_status[i]);
    }
    out.single("taskpipe_tasks_failed_total", "counter",
               "Tasks whose final outcome is not ok (failed, error, timeout or lost).",
               s.unsuccessful());
    out.single("taskpipe_tasks_resent_total", "counter",
               "Sends of a task again after a liveness timeout (the ventilator's count).",
               s.resent);
    out.single("taskpipe_tasks_in_flight", "gauge",
               "Tasks sent by the ventilator and not yet acknowledged.", s.in_flight);
    if (s.service) {
        out.single("taskpipe_tasks_queued", "gauge",
                   "A service's tasks accepted and waiting for a worker.", s.queued);
        out.single("taskpipe_tasks_delayed", "gauge",
                   "A service's tasks accepted and waiting for their time.", s.delayed);
    }
    out.single("taskpipe_tasks_skipped_total", "counter",
               "Tasks skipped because an earlier run finished them.", s.skipped);
    if (s.total) {
        out.single("taskpipe_batch_tasks", "gauge",
                   "Tasks in the batch (known once the ventilator has read all its input).",
                   *s.total);
    }
    out.family("taskpipe_batch_elapsed_seconds", "gauge",
               "Seconds since the batch started (frozen when it completes).");
    out.sample("taskpipe_batch_elapsed_seconds", {}, format_double(s.elapsed_s));
}

void render_dropped(Exposition& out, const StatsSnapshot& s) {
    out.family("taskpipe_results_dropped_total", "counter",
               "Results dropped: a duplicate of a task's first result, or of another batch.");
    out.sample("taskpipe_results_dropped_total", label("reason", "duplicate"), s.duplicates);
    out.sample("taskpipe_results_dropped_total", label("reason", "foreign"), s.foreign);
    out.single("taskpipe_malformed_messages_total", "counter",
               "Messages dropped as malformed, on either socket.", s.malformed);
}

void render_workers(Exposition& out, const StatsSnapshot& s) {
    // A worker that names no host has no name to label it with.
    // At most --max-workers series each; the tasks of workers dropped from the sink's table, or
    // never in it, are counted under worker="other" (no real name lacks its ':pid').
    const auto each_worker = [&](std::string_view name, auto value_of) {
        for (const auto& [worker, stats] : s.workers) {
            if (!worker.empty()) out.sample(name, label("worker", worker), value_of(stats));
        }
    };
    const auto and_others = [&](std::string_view name, auto value_of) {
        if (s.other_workers.tasks > 0) {
            out.sample(name, label("worker", "other"), value_of(s.other_workers));
        }
    };
    out.family("taskpipe_worker_tasks_total", "counter",
               "Tasks whose first result came from this worker (host:pid).");
    each_worker("taskpipe_worker_tasks_total", [](const WorkerStats& w) { return w.tasks; });
    and_others("taskpipe_worker_tasks_total", [](const WorkerStats& w) { return w.tasks; });
    out.family("taskpipe_worker_failed_total", "counter",
               "Of those tasks, the ones whose result is not ok.");
    each_worker("taskpipe_worker_failed_total", [](const WorkerStats& w) { return w.failed; });
    and_others("taskpipe_worker_failed_total", [](const WorkerStats& w) { return w.failed; });
    out.family("taskpipe_worker_busy_seconds_total", "counter",
               "Sum of the run times of those tasks, in seconds.");
    each_worker("taskpipe_worker_busy_seconds_total",
                [](const WorkerStats& w) { return seconds_from_micros(w.busy_us); });
    and_others("taskpipe_worker_busy_seconds_total",
               [](const WorkerStats& w) { return seconds_from_micros(w.busy_us); });
    out.family("taskpipe_worker_up", "gauge",
               "1 when the worker was heard from in the last few seconds, else 0.");
    each_worker("taskpipe_worker_up", [](const WorkerStats& w) { return std::uint64_t{w.live}; });
    std::uint64_t live = 0;
    for (const auto& [worker, stats] : s.workers)
        if (!worker.empty() && stats.live) ++live;
    out.single("taskpipe_workers_live", "gauge", "Workers heard from in the last few seconds.",
               live);
    out.single("taskpipe_workers_dropped_total", "counter",
               "Workers dropped from the sink's table (--max-workers) for newer ones; their "
               "tasks count under worker=\"other\".",
               s.workers_dropped);
    out.single("taskpipe_workers_untracked_messages_total", "counter",
               "Heartbeats and results from workers not tracked: the table (--max-workers) was "
               "full of live workers.",
               s.workers_untracked);
}

void render_latency(Exposition& out, const LatencyHistogram& latency) {
    constexpr std::string_view kName = "taskpipe_task_latency_seconds";
    out.family(kName, "histogram",
               "Seconds from the task's last send by the ventilator to its result at the sink.");
    const std::string bucket = std::string(kName) + "_bucket";
    for (std::size_t i = 0; i < LatencyHistogram::kBucketBounds.size(); ++i) {
        out.sample(bucket, label("le", format_double(LatencyHistogram::kBucketBounds[i])),
                   latency.cumulative(i));
    }
    out.sample(bucket, label("le", "+Inf"), latency.count());
    out.sample(std::string(kName) + "_sum", {}, seconds_from_micros(latency.sum_micros()));
    out.sample(std::string(kName) + "_count", {}, latency.count());
}

}  // namespace

std::string escape_label_value(std::string_view value) {
    std::string escaped;
    escaped.reserve(value.size());
    for (const char c : value) {
        if (c == '\\') {
            escaped += "\\\\";
        } else if (c == '"') {
            escaped += "\\\"";
        } else if (c == '\n') {
            escaped += "\\n";
        } else {
            escaped += c;
        }
    }
    return escaped;
}

std::string render_prometheus(const StatsSnapshot& stats) {
    Exposition out;
    render_tasks(out, stats);
    render_dropped(out, stats);
    render_workers(out, stats);
    render_latency(out, stats.latency);
    return out.take();
}

}  // namespace taskpipe
