// The task store of service mode (`ventilator --serve`): every task a producer submitted, from
// acceptance to its one recorded result, and the service's batch id.
//
// Group commit. The ventilator's event loop calls the mutations (submit, cancel, mark_sent,
// record, expire) for everything it received in one iteration, then commit() once, and acts on
// the changes (answers producers, sends tasks) only after commit() has returned. Mutations are
// visible to the lookups at once (read-your-writes), durable once commit() returns, and undone
// by rollback() or a failed commit(): "the group" is every mutation since the last commit().
//
// Errors. A store that cannot be written (disk full, read-only, I/O error) throws StoreError.
// Then the whole group is rolled back at once (the lookups see the last committed state, in
// memory as on disk), every further mutation of the group throws StoreError too, and commit()
// throws StoreError and ends the group: the loop answers every submission of the group with
// `error{code: store}` and carries on; the next group is tried afresh (the disk may have room
// again). The memory store never throws StoreError.
//
// Ids are 1, 2, 3, ... and never reused once committed (not after expiry either); the ids of a
// group that was rolled back are given out again, as nobody was told them.
//
// Thread-safety: none; one thread (the event loop) owns a store (the SQLite store runs its WAL
// checkpoints on a thread of its own, invisibly). Memory: the memory store holds every task it
// keeps; the SQLite store holds none (a bounded page cache, statements, counters).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "taskpipe/message.hpp"

namespace taskpipe {

// Where a task is in its life. `delayed` (docs/protocol.md) is not a stored state: it is a
// queued task whose not_before_us is still in the future (see state_name()).
enum class TaskState : std::uint8_t {
    queued,     // accepted, not sent (or put back after a restart: see unfinished())
    running,    // sent to a worker, no result recorded
    finished,   // its one result is recorded (final)
    cancelled,  // cancelled before it was sent (final)
};

// The one recorded result of a task.
struct StoredResult {
    Status status = Status::ok;  // ok, failed, error, timeout, lost
    std::optional<std::int32_t> exit_code;
    std::optional<std::int32_t> signal;
    std::string out;  // already cut to the head's --max-output
    bool out_truncated = false;
    std::string err;
    std::string worker;  // "host:pid"
    std::uint64_t started_us = 0;
    std::uint64_t duration_us = 0;
    std::uint64_t finished_us = 0;  // when the head recorded it
    friend bool operator==(const StoredResult&, const StoredResult&) = default;
};

struct StoredTask {
    std::uint64_t id = 0;
    std::optional<std::string> key;
    std::string payload;
    TaskState state = TaskState::queued;
    std::uint64_t submitted_us = 0;
    std::uint64_t not_before_us = 0;  // 0: run at once
    std::uint32_t attempts = 0;       // sends so far, as last recorded by mark_sent()
    // When it reached its final state (result->finished_us, or the cancel time); 0 before.
    // expire() goes by it.
    std::uint64_t final_us = 0;
    std::optional<StoredResult> result;  // finished only
    friend bool operator==(const StoredTask&, const StoredTask&) = default;
};

// The protocol's name for the task's state at `now_us`: "delayed", "queued", "running",
// "cancelled", or the result's status ("ok", "failed", ...) for a finished task.
const char* state_name(const StoredTask& task, std::uint64_t now_us);

// A random non-zero batch id, for a new store.
std::uint64_t new_batch_id();

struct Submission {
    std::string payload;
    std::optional<std::string> key;   // the idempotency key
    std::uint64_t not_before_us = 0;  // 0: run at once
    std::uint64_t now_us = 0;         // the submission time
};

struct SubmitOutcome {
    enum class Kind {
        created,    // a new task
        duplicate,  // a kept task has this key and the same payload: `task` is that task
        conflict,   // a kept task has this key and another payload: `task` is that task
    };
    Kind kind = Kind::created;
    StoredTask task;
};

// How many tasks are kept, by state; queued + running is what --max-queue bounds, `kept` (the
// finished and cancelled ones) what --keep-results bounds.
struct StoreCounts {
    std::size_t queued = 0;
    std::size_t running = 0;
    std::size_t kept = 0;
    friend bool operator==(const StoreCounts&, const StoreCounts&) = default;
};

// The store cannot be opened or written. what() is for people, and names the file.
class StoreError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class TaskStore {
  public:
    virtual ~TaskStore() = default;

    // The service's batch id: chosen (random, non-zero) and made durable when the store is
    // created, read back when it is reopened, so that a restarted ventilator keeps its batch.
    virtual std::uint64_t batch() const = 0;

    // ---- Mutations (see the group rules above).

    // A new task (state queued), or, when a kept task already has the key, that task and
    // nothing stored: a duplicate (same payload) or a conflict (another payload).
    virtual SubmitOutcome submit(const Submission& submission) = 0;
    // A queued task becomes cancelled (final_us = now_us). Returns the task's state after the
    // call: cancelled, or its state unchanged for a running or finished task; nullopt for an
    // unknown id.
    virtual std::optional<TaskState> cancel(std::uint64_t id, std::uint64_t now_us) = 0;
    // The task was sent `attempts` times so far: a queued or running task becomes running.
    // Returns false, changing nothing, for an unknown, finished or cancelled task. Not worth a
    // commit of its own (a restart sends running tasks again anyway), but written with the
    // group like every mutation.
    virtual bool mark_sent(std::uint64_t id, std::uint32_t attempts) = 0;
    // Records THE result of a running or queued task (queued: sent before a restart or before a
    // rolled-back mark_sent): it becomes finished, final_us = result.finished_us. Returns
    // false, changing nothing, for an unknown, finished or cancelled task.
    virtual bool record(std::uint64_t id, const StoredResult& result) = 0;
    // Deletes up to `limit` finished or cancelled tasks whose final_us is before `before_us`,
    // the oldest first, and returns how many. Their keys are free again and their ids unknown.
    virtual std::size_t expire(std::uint64_t before_us, std::size_t limit) = 0;

    // Makes the group durable (SQLite: one transaction, so one fsync of the WAL) and ends it.
    // Throws StoreError having rolled the whole group back. Cheap when the group is empty.
    virtual void commit() = 0;
    // Undoes the group and ends it.
    virtual void rollback() = 0;

    // ---- Lookups, of any kept task, uncommitted changes included. They throw StoreError only
    // when the file cannot be read, and leave the group alone.
    virtual std::optional<StoredTask> find(std::uint64_t id) const = 0;
    virtual std::optional<StoredTask> find_key(std::string_view key) const = 0;
    // Every queued and running task in id order, payloads included: at start-up, what is to be
    // sent (again: the worker of a running task may be gone).
    virtual std::vector<StoredTask> unfinished() const = 0;
    virtual StoreCounts counts() const = 0;
};

// In memory: everything is lost with the process.
std::unique_ptr<TaskStore> make_memory_store();

struct SqliteStoreOptions {
    // true (synchronous=FULL): commit() returns once the group is fsync'ed, so it survives a
    // power cut. false (synchronous=NORMAL): once it is written to the WAL in the operating
    // system's cache, so it survives a kill -9 of the process but not a power cut; much faster
    // on a disk whose fsync is slow.
    bool fsync_commits = true;
    // The bound of SQLite's page cache.
    std::size_t cache_kib = 8 * 1024;
};

// A store in the SQLite database at `path` (WAL mode, flock'ed for this process alone; see
// sqlite_store.cpp for the schema), created when missing or empty (its directory must exist).
// Throws StoreError when it cannot be opened for writing, is a symbolic link, is not a taskpipe
// store (another SQLite database, any other file) or is of another format version, or another
// process has it open.
std::unique_ptr<TaskStore> open_sqlite_store(const std::string& path,
                                             const SqliteStoreOptions& options = {});

}  // namespace taskpipe
