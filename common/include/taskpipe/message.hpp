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

// ventilator -> worker: several tasks in one frame, when the ventilator has more than one to send
// and every live worker takes groups (Alive.group_max). Never more than group_max of them.
struct TaskGroup {
    Grouped<Task> tasks;

    static constexpr std::string_view type = "tasks";
    static constexpr auto fields = std::tuple{field("tasks", &TaskGroup::tasks, required)};
    friend bool operator==(const TaskGroup&, const TaskGroup&) = default;
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

// worker -> sink: the results of several tasks in one frame. A worker groups only the results of
// tasks that came in a TaskGroup (which a sink that reads groups let the ventilator send).
struct ResultGroup {
    Grouped<Result> results;

    static constexpr std::string_view type = "results";
    static constexpr auto fields = std::tuple{field("results", &ResultGroup::results, required)};
    friend bool operator==(const ResultGroup&, const ResultGroup&) = default;
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
    // Of `tasks`, those that have started. Absent (an older worker): not known; present, the
    // other tasks are only queued there.
    std::optional<std::vector<TaskRef>> running{};
    // The most tasks it takes in one `tasks` frame; 0: it takes only single `task` messages.
    std::uint32_t group_max = 0;

    static constexpr std::string_view type = "heartbeat";
    // clang-format off
    static constexpr auto fields = std::tuple{
        text("host", &Heartbeat::host, required),
        field("pid", &Heartbeat::pid, required),
        field("concurrency", &Heartbeat::concurrency),
        field("capacity", &Heartbeat::capacity),
        field("draining", &Heartbeat::draining),
        field("tasks", &Heartbeat::tasks),
        field("running", &Heartbeat::running, sent_if_set),
        field("group_max", &Heartbeat::group_max, sent_if_set),
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
    // The sink instance (Welcome.sink) that welcomed this batch before; 0 on the first Hello.
    std::uint64_t sink = 0;
    bool serve = false;  // a service (ventilator --serve): only a sink --serve takes it

    static constexpr std::string_view type = "hello";
    static constexpr auto fields = std::tuple{
        field("batch", &Hello::batch, required),
        field("sink", &Hello::sink, sent_if_set),
        field("serve", &Hello::serve, sent_if_set),
    };
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
    // This sink process: a random non-zero number chosen at its start (0: an older sink), so that
    // a restarted sink is told apart from the one before.
    std::uint64_t sink = 0;
    bool serve = false;           // the sink serves a service (sink --serve)
    std::uint64_t group_max = 0;  // as in Alive

    static constexpr std::string_view type = "welcome";
    // clang-format off
    static constexpr auto fields = std::tuple{
        field("batch", &Welcome::batch, required),
        field("capacity", &Welcome::capacity),
        field("reorder_window", &Welcome::reorder_window),
        field("echo_input", &Welcome::echo_input),
        field("sink", &Welcome::sink),
        field("serve", &Welcome::serve, sent_if_set),
        field("group_max", &Welcome::group_max, sent_if_set),
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
    std::uint64_t queued = 0;     // a service: accepted, waiting for a worker
    std::uint64_t delayed = 0;    // a service: accepted, waiting for their time

    static constexpr std::string_view type = "progress";
    // clang-format off
    static constexpr auto fields = std::tuple{
        field("batch", &Progress::batch, required),
        field("read", &Progress::read),
        field("in_flight", &Progress::in_flight),
        field("resent", &Progress::resent),
        field("expected", &Progress::expected),
        field("queued", &Progress::queued, sent_if_set),
        field("delayed", &Progress::delayed, sent_if_set),
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
    std::uint64_t sink = 0;  // as in Welcome
    // Of `ids`, those that have started (the heartbeat's `running`); absent when the heartbeat
    // did not say.
    std::optional<std::vector<std::uint64_t>> running{};
    // The smallest group_max of the live workers' heartbeats (0 if one of them gave none): the
    // most tasks the ventilator may put in one `tasks` frame; 0 or 1, only single `task`s.
    std::uint64_t group_max = 0;

    static constexpr std::string_view type = "alive";
    // clang-format off
    static constexpr auto fields = std::tuple{
        field("batch", &Alive::batch, required),
        field("ids", &Alive::ids, required),
        field("capacity", &Alive::capacity),
        field("sink", &Alive::sink),
        field("running", &Alive::running, sent_if_set),
        field("group_max", &Alive::group_max, sent_if_set),
    };
    // clang-format on
    friend bool operator==(const Alive&, const Alive&) = default;
};

// sink -> ventilator: the sink is exiting before the batch is complete (interrupted, or its
// output failed); `status` is its exit status.
struct Abort {
    std::uint64_t batch = 0;
    std::uint32_t status = 0;
    std::string reason{};

    static constexpr std::string_view type = "abort";
    static constexpr auto fields = std::tuple{
        field("batch", &Abort::batch, required),
        field("status", &Abort::status),
        text("reason", &Abort::reason),
    };
    friend bool operator==(const Abort&, const Abort&) = default;
};

// ventilator -> a sink instance that took over a running batch (the sink restarted): an earlier
// sink instance recorded tasks 1..through and `ids`; those in `failed` did not succeed. Count
// them as done, write nothing for them. Several may be sent (each list at most 4,096 ids).
struct Handover {
    std::uint64_t batch = 0;
    std::uint64_t through = 0;
    std::vector<std::uint64_t> ids{};
    std::vector<std::uint64_t> failed{};

    static constexpr std::string_view type = "handover";
    static constexpr auto fields = std::tuple{
        field("batch", &Handover::batch, required),
        field("through", &Handover::through, required),
        field("ids", &Handover::ids),
        field("failed", &Handover::failed),
    };
    friend bool operator==(const Handover&, const Handover&) = default;
};

// sink -> a service's ventilator (instead of Ack): a result for task `id`, which the sink holds
// until the ventilator answers with Record. Stdout is cut to the ventilator's --max-output.
struct Outcome {
    std::uint64_t batch = 0;
    std::uint64_t id = 0;
    std::uint32_t attempt = 1;
    Status status = Status::ok;
    std::optional<std::int32_t> exit_code{};
    std::optional<std::int32_t> signal{};
    std::string out{};
    bool out_truncated = false;
    std::string err{};
    std::string host{};
    std::uint32_t pid = 0;
    std::uint64_t started_us = 0;
    std::uint64_t duration_us = 0;

    static constexpr std::string_view type = "outcome";
    static constexpr auto fields = std::tuple{
        field("batch", &Outcome::batch, required),
        field("id", &Outcome::id, required),
        field("attempt", &Outcome::attempt),
        field("status", &Outcome::status, required),
        field("exit_code", &Outcome::exit_code),
        field("signal", &Outcome::signal),
        bytes("stdout", &Outcome::out),
        field("stdout_truncated", &Outcome::out_truncated),
        bytes("stderr", &Outcome::err),
        text("host", &Outcome::host),
        field("pid", &Outcome::pid),
        field("started_us", &Outcome::started_us),
        field("duration_us", &Outcome::duration_us),
    };
    friend bool operator==(const Outcome&, const Outcome&) = default;
};

// a service's ventilator -> sink: the results the sink holds for `ids` are THE results of those
// tasks (write them); those for `drop` are not (a task already had one). At most 4,096 ids each.
struct Record {
    std::uint64_t batch = 0;
    std::vector<std::uint64_t> ids{};
    std::vector<std::uint64_t> drop{};

    static constexpr std::string_view type = "record";
    static constexpr auto fields = std::tuple{
        field("batch", &Record::batch, required),
        field("ids", &Record::ids),
        field("drop", &Record::drop),
    };
    friend bool operator==(const Record&, const Record&) = default;
};

// ---- The producers' messages (a service's listen socket; docs/protocol.md, "Service mode").

// producer -> head: a new task.
struct Submit {
    std::uint64_t req = 0;  // the producer's number for this request, echoed in the answer
    std::string payload{};
    std::optional<std::string> key{};  // idempotency key, 1 to 256 bytes
    std::uint64_t delay_ms = 0;
    std::uint64_t not_before_us = 0;
    bool notify = true;  // push a Done to this connection when the task finishes

    static constexpr std::string_view type = "submit";
    static constexpr auto fields = std::tuple{
        field("req", &Submit::req, required),
        bytes("payload", &Submit::payload, required),
        text("key", &Submit::key),
        field("delay_ms", &Submit::delay_ms),
        field("not_before_us", &Submit::not_before_us),
        field("notify", &Submit::notify),
    };
    friend bool operator==(const Submit&, const Submit&) = default;
};

// producer -> head: what became of a task (by id, or by key); with wait_ms, answer once it is
// finished or that time has passed.
struct Query {
    std::uint64_t req = 0;
    std::uint64_t id = 0;
    std::optional<std::string> key{};
    std::uint64_t wait_ms = 0;

    static constexpr std::string_view type = "status";
    static constexpr auto fields = std::tuple{
        field("req", &Query::req, required),
        field("id", &Query::id, sent_if_set),
        text("key", &Query::key),
        field("wait_ms", &Query::wait_ms),
    };
    friend bool operator==(const Query&, const Query&) = default;
};

// producer -> head: cancel a task that has not been sent to a worker.
struct Cancel {
    std::uint64_t req = 0;
    std::uint64_t id = 0;

    static constexpr std::string_view type = "cancel";
    static constexpr auto fields = std::tuple{
        field("req", &Cancel::req, required),
        field("id", &Cancel::id, required),
    };
    friend bool operator==(const Cancel&, const Cancel&) = default;
};

// head -> producer: the answer to a Submit.
struct Accepted {
    std::uint64_t req = 0;
    std::uint64_t id = 0;
    bool created = true;  // false: a task with this key existed; this is its id
    std::string state{};
    std::uint64_t head = 0;  // the head's instance (its batch): ids are the head's own

    static constexpr std::string_view type = "accepted";
    static constexpr auto fields = std::tuple{
        field("req", &Accepted::req, required),
        field("id", &Accepted::id, required),
        field("created", &Accepted::created, required),
        text("state", &Accepted::state, required),
        field("head", &Accepted::head),
    };
    friend bool operator==(const Accepted&, const Accepted&) = default;
};

// What the head knows of one task: in State (an answer) and Done (pushed when it finishes).
struct TaskReport {
    std::uint64_t id = 0;  // 0: no task (a key that names none)
    std::string state{};   // delayed, queued, running, ok, failed, ..., cancelled, unknown
    std::optional<std::string> key{};
    std::uint64_t submitted_us = 0;
    std::uint32_t attempts = 0;
    // Finished tasks only:
    std::optional<std::string> status{};
    std::optional<std::int32_t> exit_code{};
    std::optional<std::int32_t> signal{};
    std::optional<std::string> out{};
    bool out_truncated = false;
    std::optional<std::string> err{};
    std::optional<std::string> worker{};
    std::uint64_t started_us = 0;
    std::uint64_t duration_us = 0;
    std::uint64_t finished_us = 0;
    std::uint64_t head = 0;  // as in Accepted
    friend bool operator==(const TaskReport&, const TaskReport&) = default;
};

// The fields of a TaskReport, after those of the message that holds it (`report`).
template <typename M>
constexpr auto report_fields() {
    return std::tuple{
        field("id", &M::id),
        text("state", &M::state, required),
        text("key", &M::key),
        field("submitted_us", &M::submitted_us, sent_if_set),
        field("attempts", &M::attempts, sent_if_set),
        text("status", &M::status),
        field("exit_code", &M::exit_code, sent_if_set),
        field("signal", &M::signal, sent_if_set),
        field("stdout", &M::out, sent_if_set),
        field("stdout_truncated", &M::out_truncated, sent_if_set),
        field("stderr", &M::err, sent_if_set),
        text("worker", &M::worker),
        field("started_us", &M::started_us, sent_if_set),
        field("duration_us", &M::duration_us, sent_if_set),
        field("finished_us", &M::finished_us, sent_if_set),
        field("head", &M::head),
    };
}

// head -> producer: the answer to a status query or a cancel.
struct State : TaskReport {
    std::uint64_t req = 0;

    static constexpr std::string_view type = "state";
    static constexpr auto fields =
        std::tuple_cat(std::tuple{field("req", &State::req, required)}, report_fields<State>());
    friend bool operator==(const State&, const State&) = default;
};

// head -> producer, unasked: a task this connection submitted (with notify) has finished.
struct Done : TaskReport {
    static constexpr std::string_view type = "done";
    static constexpr auto fields = report_fields<Done>();
    friend bool operator==(const Done&, const Done&) = default;
};

// head -> producer: a request that could not be carried out.
struct Error {
    std::uint64_t req = 0;
    std::string code{};  // invalid, too_large, conflict, full, store, draining
    std::string message{};
    std::uint64_t id = 0;  // conflict: the existing task

    static constexpr std::string_view type = "error";
    static constexpr auto fields = std::tuple{
        field("req", &Error::req, required),
        text("code", &Error::code, required),
        text("message", &Error::message, required),
        field("id", &Error::id, sent_if_set),
    };
    friend bool operator==(const Error&, const Error&) = default;
};

// ventilator -> sink, after a Welcome on a new connection: the ventilator still waits for these
// tasks; acknowledge again those that have a result (their Ack may have gone into the
// connection that died). At most 4,096 ids per message.
struct Pending {
    std::uint64_t batch = 0;
    std::vector<std::uint64_t> ids{};

    static constexpr std::string_view type = "pending";
    // clang-format off
    static constexpr auto fields = std::tuple{
        field("batch", &Pending::batch, required),
        field("ids", &Pending::ids, required),
    };
    // clang-format on
    friend bool operator==(const Pending&, const Pending&) = default;
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
using TasksMessage = std::variant<Task, TaskGroup>;  // ventilator -> worker
using ResultsMessage =
    std::variant<Result, ResultGroup, Heartbeat, WorkerRelease>;  // worker -> sink
using ToSinkControl =
    std::variant<Hello, End, Lost, Skip, Handover, Pending, Progress, Bye, Record>;
using ToVentilatorControl = std::variant<Welcome, Reject, Ack, Alive, SinkRelease, Abort, Outcome>;
using ToHead = std::variant<Submit, Query, Cancel>;             // producer -> head (listen)
using ToProducer = std::variant<Accepted, State, Done, Error>;  // head -> producer

// Every message of the protocol. Two forms of one type (release) are told apart by their
// `excluded` keys, the first form that fits winning.
using Message =
    std::variant<Task, TaskGroup, Result, ResultGroup, Heartbeat, WorkerRelease, SinkRelease, Hello,
                 Welcome, Reject, End, Lost, Skip, Handover, Pending, Progress, Ack, Alive, Bye,
                 Abort, Outcome, Record, Submit, Query, Cancel, Accepted, State, Done, Error>;

// The largest result frame a sink accepts (ZMQ_MAXMSGSIZE), and so the most stdout a worker
// may keep per task, leaving room for the rest of the result (the echoed input among it).
inline constexpr std::size_t kMaxResultFrame = 32u << 20;
inline constexpr std::size_t kMaxStdoutBytes = kMaxResultFrame - (2u << 20);

// The largest task payload the ventilator sends and a worker accepts.
inline constexpr std::size_t kMaxPayloadBytes = 1u << 20;

// The largest number of ids one Ack, Alive or Heartbeat carries; longer lists are split.
inline constexpr std::size_t kMaxIdsPerMessage = 4096;

// The most messages one `tasks` or `results` frame holds; a frame with more is malformed.
inline constexpr std::size_t kMaxGroupItems = 1024;

}  // namespace taskpipe
