#include "report.hpp"

#include <nlohmann/json.hpp>

#include "taskpipe/program.hpp"
#include "taskpipe/text.hpp"

namespace taskpipe {

namespace {

constexpr std::size_t kStderrLinesShown = 5;
constexpr std::size_t kShownLineBytes = 200;

void put_bytes(nlohmann::json& object, const std::string& field, std::string_view bytes) {
    object[field] = bytes;
    if (!is_utf8(bytes)) object[field + "_base64"] = base64(bytes);
}

// "task 12", or for a submission the head has not numbered "payload 3" (its place).
std::string name(const Tracker::Task& task) {
    if (task.id != 0) return "task " + std::to_string(task.id);
    if (task.ask == Tracker::Ask::submit) return "payload " + std::to_string(task.number);
    if (task.key) return "the task with key '" + printable(*task.key, kShownLineBytes) + "'";
    return "task ?";
}

const std::string* state_of(const Tracker::Task& task) {
    return task.report ? &task.report->state : nullptr;
}

bool finished_report(const Tracker::Task& task) {
    return task.gave_up.empty() && !task.refused && task.report &&
           (is_final_state(task.report->state) || task.report->state == "unknown");
}

nlohmann::json report_json(const TaskReport& r) {
    nlohmann::json j;
    j["id"] = r.id;
    j["state"] = r.state;
    if (r.key) put_bytes(j, "key", *r.key);
    if (r.submitted_us != 0) j["submitted_us"] = r.submitted_us;
    j["attempts"] = r.attempts;
    if (r.status) {
        j["status"] = *r.status;
        j["exit_code"] = r.exit_code ? nlohmann::json(*r.exit_code) : nlohmann::json(nullptr);
        j["signal"] = r.signal ? nlohmann::json(*r.signal) : nlohmann::json(nullptr);
        put_bytes(j, "stdout", r.out.value_or(""));
        if (r.out_truncated) j["stdout_truncated"] = true;
        put_bytes(j, "stderr", r.err.value_or(""));
        j["worker"] = r.worker ? nlohmann::json(*r.worker) : nlohmann::json(nullptr);
        j["started_us"] = r.started_us;
        j["duration_us"] = r.duration_us;
    }
    if (r.finished_us != 0) j["finished_us"] = r.finished_us;
    if (r.head != 0) j["head"] = r.head;
    return j;
}

}  // namespace

std::string plain_text(const Tracker::Task& task, Printing printing) {
    switch (printing) {
        case Printing::ids:
            return (task.gave_up.empty() && !task.refused ? std::to_string(task.id) : "") + "\n";
        case Printing::output:
            return finished_report(task) ? task.report->out.value_or("") : "";
        case Printing::states: {
            const std::string* state = state_of(task);
            return (state != nullptr && !task.refused ? *state : "") + "\n";
        }
    }
    return "";
}

std::string json_line(const Tracker::Task& task, Printing printing) {
    nlohmann::json j;
    if (task.refused) {
        j["error"] = task.refused->code;
        j["message"] = task.refused->message;
        if (task.refused->id != 0) j["id"] = task.refused->id;
    } else if (task.report) {
        if (printing == Printing::ids) {
            j["id"] = task.report->id;
            j["state"] = task.report->state;
            if (task.report->key) put_bytes(j, "key", *task.report->key);
            j["head"] = task.report->head;
        } else {
            j = report_json(*task.report);
        }
        if (task.ask == Tracker::Ask::submit) j["created"] = task.created;
    } else if (task.id != 0) {
        j["id"] = task.id;
    }
    if (!task.gave_up.empty()) j["gave_up"] = task.gave_up;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::vector<Diagnostic> diagnostics(const Tracker::Task& task, bool waited) {
    std::vector<Diagnostic> lines;
    if (task.refused) {
        const Error& e = *task.refused;
        std::string text = "the head refused " + name(task) + ": " + e.code + ": " +
                           printable(e.message, kShownLineBytes);
        if (e.code == "conflict" && e.id != 0 &&
            e.message.find(std::to_string(e.id)) == std::string::npos) {
            text += " (task " + std::to_string(e.id) + ")";
        }
        lines.push_back({LogLevel::error, text});
        return lines;
    }
    if (!task.gave_up.empty()) {
        const std::string* state = state_of(task);
        lines.push_back({LogLevel::error, name(task) + (state ? " (" + *state + ")" : "") +
                                              ": gave up: " + task.gave_up});
        return lines;
    }
    if (!task.report) return lines;
    const TaskReport& r = *task.report;
    if (r.state == "unknown" && (waited || task.ask != Tracker::Ask::status)) {
        lines.push_back({LogLevel::warning,
                         "the head does not know " + name(task) +
                             ": it never issued it, its result has expired (--keep-results), or "
                             "the head was restarted without --store"});
        return lines;
    }
    if (task.ask == Tracker::Ask::cancel && r.state != "cancelled") {
        lines.push_back(
            {LogLevel::warning, name(task) + " was not cancelled: it is " + r.state +
                                    (r.state == "running" ? " (sent to a worker)" : "")});
        return lines;
    }
    if (!waited || !is_final_state(r.state) || r.state == "ok") {
        if (waited && r.out_truncated) {
            lines.push_back({LogLevel::warning,
                             name(task) + ": its output was cut to the head's --max-output"});
        }
        return lines;
    }
    if (r.state == "cancelled") {
        lines.push_back({LogLevel::warning, name(task) + " was cancelled"});
        return lines;
    }
    std::string text = name(task) + " " + r.state;
    if (r.state == "lost") text += ": no result after " + std::to_string(r.attempts) + " attempts";
    if (r.exit_code) text += " (exit code " + std::to_string(*r.exit_code) + ")";
    if (r.signal) text += " (signal " + std::to_string(*r.signal) + ")";
    if (r.worker) text += " on " + printable(*r.worker, kShownLineBytes);
    lines.push_back({LogLevel::warning, text});
    for (const std::string& line :
         stderr_tail(r.err.value_or(""), kStderrLinesShown, kShownLineBytes)) {
        lines.push_back({LogLevel::warning, "  stderr: " + line});
    }
    return lines;
}

int exit_status(const Tracker::Task& task, bool waited) {
    if (!task.gave_up.empty()) return kExitGaveUp;
    if (task.refused) return kExitTasksFailed;
    const std::string state = task.report ? task.report->state : "";
    switch (task.ask) {
        case Tracker::Ask::cancel:
            return state == "cancelled" ? kExitOk : kExitTasksFailed;
        case Tracker::Ask::status:
        case Tracker::Ask::submit:
            if (!waited) return kExitOk;
            if (state == "ok") return kExitOk;
            if (state == "cancelled" || state == "unknown") return kExitGaveUp;
            return kExitTasksFailed;
    }
    return kExitTasksFailed;
}

}  // namespace taskpipe
