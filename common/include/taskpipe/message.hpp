// The messages of the taskpipe wire protocol (docs/protocol.md), as plain values.
//
// Every message travels as one ZeroMQ frame holding one msgpack map. These structs are what
// the codec (codec.hpp) reads and writes; they carry no behaviour. Each one describes its own
// wire form (schema.hpp): its "type", then one row per field, in the order they are sent. Byte
// fields (payload, stdout, stderr) are std::string used as byte containers: they may hold any
// bytes.
//
// Adding an optional field to a message: a member with its default, one row in `fields`, one
// row in the message's table in docs/protocol.md (a unit test compares the two).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>
#include <vector>

#include "taskpipe/schema.hpp"

namespace taskpipe {

// The protocol version this build speaks; messages with another "v" are dropped.
inline constexpr std::uint64_t kProtocolVersion = 1;

// Identifies a task across the whole system: the batch it belongs to and its 1-based position
// in that batch's input.
struct TaskRef {
    std::uint64_t batch = 0;
    std::uint64_t id = 0;
    friend bool operator==(const TaskRef&, const TaskRef&) = default;
};

// ventilator -> worker: one unit of work.
struct Task {
    std::uint64_t batch = 0;
    std::uint64_t id = 0;
    std::uint32_t attempt = 1;
    std::string payload;
    std::uint64_t sent_us = 0;  // the ventilator's wall clock when it sent this attempt; 0: unknown
    bool echo_input = false;    // send the payload back in the result's `input`

    static constexpr std::string_view type = "task";
    // clang-format off
    static constexpr auto fields = std::tuple{
        field("batch", &Task::batch, required),
        field("id", &Task::id, required),
        field("attempt", &Task::attempt),
        bytes("payload", &Task::payload, required),
        field("sent_us", &Task::sent_us),
        field("echo_input", &Task::echo_input, sent_if_set),
    };
    // clang-format on
    static const char* refusal(const Task& t) {
        return t.id == 0 ? "task id 0 (ids start at 1)" : nullptr;
    }
    friend bool operator==(const Task&, const Task&) = default;
};

enum class Status : std::uint8_t {
    ok,       // the handler ran and succeeded (exit code 0)
    failed,   // the handler ran and failed (non-zero exit code, or killed by a signal)
    error,    // the handler could not run (command not found, payload not usable, ...)
    timeout,  // the handler ran past its time limit and was killed
    lost,     // no result arrived after the maximum number of attempts (made by the sink)
};
inline constexpr std::array kAllStatuses = {Status::ok, Status::failed, Status::error,
                                            Status::timeout, Status::lost};

constexpr const char* to_string(Status status) {
    switch (status) {
        case Status::ok:
            return "ok";
        case Status::failed:
            return "failed";
        case Status::error:
            return "error";
        case Status::timeout:
            return "timeout";
        case Status::lost:
            return "lost";
    }
    return "error";
}
std::optional<Status> status_from_string(std::string_view text);

// worker -> sink: what running one task produced.
struct Result {
    std::uint64_t batch = 0;
    std::uint64_t id = 0;
    std::uint32_t attempt = 1;
    Status status = Status::ok;
    std::optional<std::int32_t> exit_code;  // absent when the process did not exit by itself
    std::optional<std::int32_t> signal;     // the signal that ended the process, if any
    std::string out;                        // the handler's whole stdout
    std::string err;                        // the last bytes of its stderr
    bool out_truncated = false;             // stdout exceeded the worker's limit
    std::string host;                       // the worker that ran it
    std::uint32_t pid = 0;
    std::uint64_t started_us = 0;   // wall clock when the handler started, microseconds since 1970
    std::uint64_t duration_us = 0;  // how long the handler ran
    std::optional<std::string> input;  // the task's payload, when the task asked for it
    std::uint64_t sent_us = 0;         // the task's sent_us, echoed back (0: unknown)

    static constexpr std::string_view type = "result";
    // clang-format off
    static constexpr auto fields = std::tuple{
        field("batch", &Result::batch, required),
        field("id", &Result::id, required),
        field("attempt", &Result::attempt),
        field("status", &Result::status, required),
        field("exit_code", &Result::exit_code),
        field("signal", &Result::signal),
        bytes("stdout", &Result::out),
        bytes("stderr", &Result::err),
        field("stdout_truncated", &Result::out_truncated),
        text("host", &Result::host),
        field("pid", &Result::pid),
        field("started_us", &Result::started_us),
        field("duration_us", &Result::duration_us),
        field("sent_us", &Result::sent_us),
        field("input", &Result::input, sent_if_set),
    };
    // clang-format on
    static const char* refusal(const Result& r) {
        if (r.id == 0) return "result id 0 (ids start at 1)";
        if (r.status == Status::lost) return "a worker's result with status 'lost'";
        return nullptr;
    }
    friend bool operator==(const Result&, const Result&) = default;
};

// worker -> sink, periodically: the worker is alive and holds these tasks (queued or running).
struct Heartbeat {
    std::string host;
    std::uint32_t pid = 0;
    std::uint32_t concurrency = 0;
    // How many tasks it is willing to hold (running and queued); 0 when not given.
    std::uint32_t capacity = 0;
    bool draining = false;  // shutting down: takes no new task
    std::vector<TaskRef> tasks;

    static constexpr std::string_view type = "heartbeat";
    // clang-format off
    static constexpr auto fields = std::tuple{
        text("host", &Heartbeat::host, required),
        field("pid", &Heartbeat::pid, required),
        field("concurrency", &Heartbeat::concurrency),
        field("capacity", &Heartbeat::capacity),
        field("draining", &Heartbeat::draining),
        field("tasks", &Heartbeat::tasks),
    };
    // clang-format on
    friend bool operator==(const Heartbeat&, const Heartbeat&) = default;
};

// worker -> sink: tasks the worker received but will not run (it holds its capacity already).
// The sink passes them on as a SinkRelease.
struct WorkerRelease {
    std::vector<TaskRef> tasks;

    static constexpr std::string_view type = "release";
    static constexpr auto fields = std::tuple{field("tasks", &WorkerRelease::tasks, required)};
    static constexpr std::array<std::string_view, 2> excluded = {"batch", "ids"};
    friend bool operator==(const WorkerRelease&, const WorkerRelease&) = default;
};

// sink -> ventilator: send these tasks again, to someone else, without counting an attempt.
struct SinkRelease {
    std::uint64_t batch = 0;
    std::vector<std::uint64_t> ids;

    static constexpr std::string_view type = "release";
    // clang-format off
    static constexpr auto fields = std::tuple{
        field("batch", &SinkRelease::batch, required),
        field("ids", &SinkRelease::ids, required),
    };
    // clang-format on
    static constexpr std::array<std::string_view, 1> excluded = {"tasks"};
    static const char* refusal(const SinkRelease& r) {
        return r.batch == 0 ? "release for batch 0" : nullptr;
    }
    friend bool operator==(const SinkRelease&, const SinkRelease&) = default;
};

// ventilator -> sink: a batch starts; the sink answers Welcome or Reject.
struct Hello {
    std::uint64_t batch = 0;

    static constexpr std::string_view type = "hello";
    static constexpr auto fields = std::tuple{field("batch", &Hello::batch, required)};
    friend bool operator==(const Hello&, const Hello&) = default;
};
struct Welcome {
    std::uint64_t batch = 0;
    std::uint64_t capacity = 0;  // as in Alive
    // Output is written in input order: do not send a task whose id is reorder_window or more
    // above the lowest id not yet acknowledged. 0: no limit.
    std::uint64_t reorder_window = 0;
    // The sink shows each task's input (--tag, --jsonl, --joblog, --results): ask the workers to
    // send it back (Task.echo_input). Off, results stay small.
    bool echo_input = false;

    static constexpr std::string_view type = "welcome";
    // clang-format off
    static constexpr auto fields = std::tuple{
        field("batch", &Welcome::batch, required),
        field("capacity", &Welcome::capacity),
        field("reorder_window", &Welcome::reorder_window),
        field("echo_input", &Welcome::echo_input),
    };
    // clang-format on
    friend bool operator==(const Welcome&, const Welcome&) = default;
};
struct Reject {
    std::uint64_t batch = 0;
    std::string reason;

    static constexpr std::string_view type = "reject";
    // clang-format off
    static constexpr auto fields = std::tuple{
        field("batch", &Reject::batch, required),
        text("reason", &Reject::reason),
    };
    // clang-format on
    friend bool operator==(const Reject&, const Reject&) = default;
};

// ventilator -> sink: the input has ended; the batch holds `total` tasks, ids 1..total.
struct End {
    std::uint64_t batch = 0;
    std::uint64_t total = 0;

    static constexpr std::string_view type = "end";
    // clang-format off
    static constexpr auto fields = std::tuple{
        field("batch", &End::batch, required),
        field("total", &End::total, required),
    };
    // clang-format on
    friend bool operator==(const End&, const End&) = default;
};

// ventilator -> sink: task `id` was sent `attempts` times and never produced a result.
struct Lost {
    std::uint64_t batch = 0;
    std::uint64_t id = 0;
    std::uint32_t attempts = 0;

    static constexpr std::string_view type = "lost";
    // clang-format off
    static constexpr auto fields = std::tuple{
        field("batch", &Lost::batch, required),
        field("id", &Lost::id, required),
        field("attempts", &Lost::attempts),
    };
    // clang-format on
    friend bool operator==(const Lost&, const Lost&) = default;
};

// ventilator -> sink: these tasks are not sent in this run (a resumed batch's joblog records them
// as finished); count them as done without output. `failed` lists those that finished
// unsuccessfully.
struct Skip {
    std::uint64_t batch = 0;
    std::vector<std::uint64_t> ids;
    std::vector<std::uint64_t> failed;

    static constexpr std::string_view type = "skip";
    // clang-format off
    static constexpr auto fields = std::tuple{
        field("batch", &Skip::batch, required),
        field("ids", &Skip::ids, required),
        field("failed", &Skip::failed),
    };
    // clang-format on
    friend bool operator==(const Skip&, const Skip&) = default;
};

// ventilator -> sink, about once a second: how far the ventilator has got.
struct Progress {
    std::uint64_t batch = 0;
    std::uint64_t read = 0;       // tasks read from the input so far
    std::uint64_t in_flight = 0;  // sent, not yet acknowledged
    std::uint64_t resent = 0;     // sends after a liveness timeout, so far
    std::uint64_t expected = 0;   // records the whole input holds, if counted (a file); 0: unknown

    static constexpr std::string_view type = "progress";
    // clang-format off
    static constexpr auto fields = std::tuple{
        field("batch", &Progress::batch, required),
        field("read", &Progress::read),
        field("in_flight", &Progress::in_flight),
        field("resent", &Progress::resent),
        field("expected", &Progress::expected),
    };
    // clang-format on
    friend bool operator==(const Progress&, const Progress&) = default;
};

// sink -> ventilator: these tasks have a result (again, for duplicates), or the sink has recorded
// their Lost or Skip; `failed` lists those whose first result was not ok.
struct Ack {
    std::uint64_t batch = 0;
    std::vector<std::uint64_t> ids;
    std::vector<std::uint64_t> failed;

    static constexpr std::string_view type = "ack";
    // clang-format off
    static constexpr auto fields = std::tuple{
        field("batch", &Ack::batch, required),
        field("ids", &Ack::ids, required),
        field("failed", &Ack::failed),
    };
    // clang-format on
    friend bool operator==(const Ack&, const Ack&) = default;
};

// sink -> ventilator: a live worker holds these tasks; do not re-send them yet.
struct Alive {
    std::uint64_t batch = 0;
    std::vector<std::uint64_t> ids;
    // The sum of the capacities of the live workers, when known (0: unknown).
    std::uint64_t capacity = 0;

    static constexpr std::string_view type = "alive";
    // clang-format off
    static constexpr auto fields = std::tuple{
        field("batch", &Alive::batch, required),
        field("ids", &Alive::ids, required),
        field("capacity", &Alive::capacity),
    };
    // clang-format on
    friend bool operator==(const Alive&, const Alive&) = default;
};

// ventilator -> sink: every task is acknowledged; the sink may exit.
struct Bye {
    std::uint64_t batch = 0;

    static constexpr std::string_view type = "bye";
    static constexpr auto fields = std::tuple{field("batch", &Bye::batch, required)};
    friend bool operator==(const Bye&, const Bye&) = default;
};

// The messages each socket carries (docs/protocol.md, "Sockets"): a receiver decodes a frame
// as one of its socket's set, and refuses a well-formed message of another.
using TasksMessage = std::variant<Task>;                                // ventilator -> worker
using ResultsMessage = std::variant<Result, Heartbeat, WorkerRelease>;  // worker -> sink
using ToSinkControl = std::variant<Hello, End, Lost, Skip, Progress, Bye>;
using ToVentilatorControl = std::variant<Welcome, Reject, Ack, Alive, SinkRelease>;

// Every message of the protocol. Two forms of one type (release) are told apart by their
// `excluded` keys, the first form that fits winning.
using Message = std::variant<Task, Result, Heartbeat, WorkerRelease, SinkRelease, Hello, Welcome,
                             Reject, End, Lost, Skip, Progress, Ack, Alive, Bye>;

// The largest result frame a sink accepts (ZMQ_MAXMSGSIZE), and so the most stdout a worker
// may keep per task, leaving room for the rest of the result (the echoed input among it).
inline constexpr std::size_t kMaxResultFrame = 32u << 20;
inline constexpr std::size_t kMaxStdoutBytes = kMaxResultFrame - (2u << 20);

// The largest task payload the ventilator sends and a worker accepts.
inline constexpr std::size_t kMaxPayloadBytes = 1u << 20;

// The largest number of ids one Ack, Alive or Heartbeat carries; longer lists are split.
inline constexpr std::size_t kMaxIdsPerMessage = 4096;

}  // namespace taskpipe
