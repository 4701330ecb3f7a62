#include "options.hpp"

#include <charconv>
#include <cmath>

#include "taskpipe/endpoints.hpp"
#include "taskpipe/message.hpp"

namespace po = boost::program_options;

namespace taskpipe {

namespace {

constexpr const char* kUsage =
    "taskpipe submit [OPTIONS] [PAYLOAD...]\n"
    "  or:  taskpipe submit --status [OPTIONS] (ID... | --key KEY)\n"
    "  or:  taskpipe submit --cancel [OPTIONS] ID...\n"
    "\n"
    "Submits tasks to the head of a taskpipe service (taskpipe ventilator --serve) and prints\n"
    "each task's id, once the head has accepted it; with --wait, waits for each task and\n"
    "prints its output, byte for byte. Each PAYLOAD is one task; with none (or '-') the tasks\n"
    "are read from stdin, one per line (-0: NUL-separated; --whole: all of stdin is one).\n"
    "Several tasks are submitted at once and printed in their order. A head that is not\n"
    "there is an error at once; one that goes away or stops answering for 30 s ends the\n"
    "command (status 4), even without --timeout.\n"
    "\n"
    "Exit status: 0 done (with --wait: every task ok; --cancel: every task cancelled);\n"
    "1 a task failed, errored, timed out or was lost, the head refused a request, or a task\n"
    "could not be cancelled; 2 usage error, or no head answers; 3 interrupted; 4 no result:\n"
    "a waited task was cancelled or is unknown to the head, --timeout passed, or the head\n"
    "went away and did not come back. With several tasks, the highest applies.";

// Seconds on the command line, as milliseconds.
std::chrono::milliseconds to_ms(double seconds) {
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000.0)));
}

// `what` names the option in the error.
void check_seconds(double seconds, double low, double high, const std::string& what) {
    if (!(seconds >= low) || seconds > high) {
        auto text = [](double v) {
            std::string s = std::to_string(v);
            s.erase(s.find_last_not_of('0') + 1);
            if (s.ends_with('.')) s.pop_back();
            return s;
        };
        throw UsageError(what + " must be between " + text(low) + " and " + text(high) +
                         " seconds");
    }
}

std::uint64_t parse_id(const std::string& text) {
    std::uint64_t id = 0;
    const char* end = text.data() + text.size();
    const auto [rest, error] = std::from_chars(text.data(), end, id);
    if (text.empty() || error != std::errc() || rest != end || id == 0) {
        throw UsageError("'" + text + "' is not a task id (a number from 1)");
    }
    return id;
}

// Reads `digits` decimal digits from the front of `text`.
std::optional<int> take_number(std::string_view& text, std::size_t digits) {
    if (text.size() < digits) return std::nullopt;
    int value = 0;
    for (std::size_t i = 0; i < digits; ++i) {
        if (text[i] < '0' || text[i] > '9') return std::nullopt;
        value = value * 10 + (text[i] - '0');
    }
    text.remove_prefix(digits);
    return value;
}

bool take(std::string_view& text, char c) {
    if (text.empty() || text.front() != c) return false;
    text.remove_prefix(1);
    return true;
}

// ".5" -> 500000 microseconds; no fraction: 0.
std::optional<std::uint64_t> take_fraction(std::string_view& text) {
    if (!take(text, '.')) return 0;
    std::uint64_t micros = 0;
    std::size_t digits = 0;
    while (!text.empty() && text.front() >= '0' && text.front() <= '9') {
        if (digits < 6) micros = micros * 10 + static_cast<std::uint64_t>(text.front() - '0');
        ++digits;
        text.remove_prefix(1);
    }
    if (digits == 0) return std::nullopt;
    for (std::size_t i = digits; i < 6; ++i) micros *= 10;
    return micros;
}

std::optional<std::uint64_t> parse_epoch(std::string_view text) {
    std::uint64_t seconds = 0;
    const auto [rest, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (error != std::errc() || rest == text.data()) return std::nullopt;
    text.remove_prefix(static_cast<std::size_t>(rest - text.data()));
    const std::optional<std::uint64_t> micros = take_fraction(text);
    if (!micros || !text.empty() || seconds > 253'402'300'799ull) return std::nullopt;  // 9999
    return seconds * 1'000'000 + *micros;
}

std::optional<std::uint64_t> parse_iso(std::string_view text) {
    using namespace std::chrono;
    const auto y = take_number(text, 4);
    if (!y || !take(text, '-')) return std::nullopt;
    const auto m = take_number(text, 2);
    if (!m || !take(text, '-')) return std::nullopt;
    const auto d = take_number(text, 2);
    if (!d || !(take(text, 'T') || take(text, 't') || take(text, ' '))) return std::nullopt;
    const auto hh = take_number(text, 2);
    if (!hh || !take(text, ':')) return std::nullopt;
    const auto mm = take_number(text, 2);
    if (!mm) return std::nullopt;
    int ss = 0;
    std::uint64_t micros = 0;
    if (take(text, ':')) {
        const auto s = take_number(text, 2);
        const auto fraction = take_fraction(text);
        if (!s || !fraction) return std::nullopt;
        ss = *s;
        micros = *fraction;
    }
    int offset_minutes = 0;
    if (!(take(text, 'Z') || take(text, 'z'))) {
        const bool east = text.starts_with('+');
        if (!east && !text.starts_with('-')) return std::nullopt;  // a zone is required
        text.remove_prefix(1);
        const auto oh = take_number(text, 2);
        if (!oh) return std::nullopt;
        take(text, ':');
        const auto om = text.empty() ? std::optional<int>(0) : take_number(text, 2);
        if (!om || *oh > 23 || *om > 59) return std::nullopt;
        offset_minutes = (east ? 1 : -1) * (*oh * 60 + *om);
    }
    const year_month_day date{year(*y), month(static_cast<unsigned>(*m)),
                              day(static_cast<unsigned>(*d))};
    if (!text.empty() || !date.ok() || *y < 1970 || *hh > 23 || *mm > 59 || ss > 59) {
        return std::nullopt;
    }
    const auto when =
        sys_days(date) + hours(*hh) + minutes(*mm) + seconds(ss) - minutes(offset_minutes);
    const auto since_epoch = duration_cast<microseconds>(when.time_since_epoch()).count();
    if (since_epoch < 0) return 0;  // before 1970 in UTC: in the past all the same
    return static_cast<std::uint64_t>(since_epoch) + micros;
}

}  // namespace

std::optional<std::uint64_t> parse_time(std::string_view text) {
    if (text.starts_with('@')) return parse_epoch(text.substr(1));
    return parse_iso(text);
}

Parsed<SubmitOptions> parse_submit_options(int argc, const char* const argv[],
                                           const char* head_from_environment) {
    Parsed<SubmitOptions> parsed;
    SubmitOptions& o = parsed.options;
    if (head_from_environment != nullptr && *head_from_environment != '\0') {
        o.head = head_from_environment;
    }
    std::string key;
    double delay_seconds = 0.0;
    std::string at;
    double timeout_seconds = 0.0;
    double connect_seconds = 1.0;
    bool status = false;
    bool cancel = false;
    bool null_separated = false;
    bool whole = false;
    std::vector<std::string> arguments;

    po::options_description options("Options");
    auto add = options.add_options();
    add("head", po::value(&o.head)->default_value(o.head),
        "the head's listen endpoint (ventilator --serve --listen); the default comes from "
        "$TASKPIPE_HEAD when it is set");
    add("key", po::value(&key),
        "an idempotency key for the one task submitted (1 to 256 bytes): the same key again "
        "gives the same task, and nothing runs twice; with --status: ask about the task "
        "submitted with this key");
    add("delay", po::value(&delay_seconds)->value_name("SECONDS"),
        "run the tasks no earlier than this many seconds after the head accepts them");
    add("at", po::value(&at)->value_name("TIME"),
        "run the tasks no earlier than TIME: @SECONDS since 1970 (date +@%s), or ISO 8601 with "
        "a zone, 2026-11-24T10:15:00Z or 2026-11-24T11:15+01:00");
    add("wait,w", po::bool_switch(&o.wait),
        "wait for each task to finish and print its output (with --status: its final state); "
        "the exit status says how they ended");
    add("timeout,t", po::value(&timeout_seconds)->default_value(timeout_seconds),
        "seconds the whole command may take (0: no limit); then it stops with status 4");
    add("status", po::bool_switch(&status),
        "print the state of the tasks ID... (or of --key KEY) instead of submitting: delayed, "
        "queued, running, ok, failed, error, timeout, lost, cancelled or unknown");
    add("cancel", po::bool_switch(&cancel),
        "cancel the tasks ID... that have not been sent to a worker yet; prints each one's "
        "state (cancelled, or the state that stopped it)");
    add("json", po::bool_switch(&o.json),
        "print one JSON object per task: the head's answer (id, created, state), or with "
        "--wait and --status everything it knows (state, exit_code, stdout, stderr, worker, "
        "times)");
    add("null,0", po::bool_switch(&null_separated),
        "tasks on stdin end with NUL instead of newline (find -print0)");
    add("whole", po::bool_switch(&whole), "all of stdin, byte for byte, is one task");
    add("connect-timeout", po::value(&connect_seconds)->default_value(connect_seconds),
        "seconds the head may take to answer the connection (status 2 after that; a head that "
        "is not listening is reported at once)");
    add_curve_options(options, o.curve, kSubmitCurveRoles);
    add("arguments", po::value(&arguments)->multitoken(),
        "PAYLOAD... (or ID... with --status and --cancel)");
    po::positional_options_description positional;
    positional.add("arguments", -1);
    po::variables_map values;
    parsed.early_output = parse_command_line(argc, argv, options, positional, values, kUsage);
    if (!parsed.early_output.empty()) return parsed;

    if (auto error = endpoint_error(o.head, EndpointUse::connect)) {
        throw UsageError("--head: " + *error);
    }
    check_curve_options(o.curve, kSubmitCurveRoles);
    if (status && cancel) throw UsageError("give --status or --cancel, not both");
    o.mode = status ? SubmitMode::status : cancel ? SubmitMode::cancel : SubmitMode::submit;
    if (values.count("key")) {
        if (key.empty() || key.size() > 256) throw UsageError("--key must be 1 to 256 bytes");
        o.key = key;
    }
    check_seconds(timeout_seconds, 0, 31'536'000, "--timeout");
    if (timeout_seconds > 0) o.timeout = to_ms(timeout_seconds);
    check_seconds(connect_seconds, 0.01, 3600, "--connect-timeout");
    o.connect_timeout = to_ms(connect_seconds);

    const bool scheduling = values.count("delay") || values.count("at");
    if (o.mode != SubmitMode::submit) {
        if (scheduling || null_separated || whole) {
            throw UsageError("--delay, --at, -0 and --whole are for submitting tasks");
        }
        if (o.mode == SubmitMode::cancel && o.wait) {
            throw UsageError("--cancel answers at once: no --wait");
        }
        if (o.mode == SubmitMode::cancel && o.key) {
            throw UsageError(
                "--cancel takes task ids (--status --key KEY --json shows a key's id)");
        }
        if (o.key && !arguments.empty()) throw UsageError("give task ids or --key, not both");
        if (!o.key && arguments.empty()) {
            throw UsageError(std::string(status ? "--status" : "--cancel") +
                             " needs the ids of the tasks" + (status ? " (or --key KEY)" : ""));
        }
        for (const std::string& argument : arguments) o.ids.push_back(parse_id(argument));
        return parsed;
    }

    if (values.count("delay")) {
        check_seconds(delay_seconds, 0, 315'360'000, "--delay");
        o.delay = to_ms(delay_seconds);
    }
    if (values.count("at")) {
        const std::optional<std::uint64_t> when = parse_time(at);
        if (!when) {
            throw UsageError("--at '" + at +
                             "' is not a time: give @SECONDS since 1970 (date +@%s -d 'tomorrow "
                             "3:00') or ISO 8601 with a zone (2026-11-24T10:15:00Z)");
        }
        o.not_before_us = *when;
    }
    if (null_separated && whole) throw UsageError("give -0 or --whole, not both");
    o.from_stdin = arguments.empty() || (arguments.size() == 1 && arguments[0] == "-");
    if (o.from_stdin) {
        o.split = null_separated ? StdinSplit::nul : whole ? StdinSplit::whole : StdinSplit::lines;
        return parsed;
    }
    if (null_separated || whole) {
        throw UsageError("-0 and --whole say how to read stdin; the tasks here are arguments");
    }
    for (const std::string& argument : arguments) {
        if (argument == "-") throw UsageError("'-' (stdin) cannot be mixed with payloads");
        if (argument.size() > kMaxPayloadBytes) {
            throw UsageError("a payload is over 1 MiB (" + std::to_string(argument.size()) +
                             " bytes)");
        }
    }
    if (o.key && arguments.size() > 1) {
        throw UsageError("--key names one task; " + std::to_string(arguments.size()) +
                         " payloads given");
    }
    o.payloads = std::move(arguments);
    return parsed;
}

}  // namespace taskpipe
