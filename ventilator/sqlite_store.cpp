// The task store in an SQLite database (store.hpp).
//
// The file. One database in WAL mode, used by one process at a time: the store holds an
// exclusive flock(2) on it (another taskpipe gets "in use"; the sqlite3 shell may still read
// it). Marked as ours by PRAGMA application_id = kApplicationId and of format
// PRAGMA user_version = kFormatVersion:
//
//   meta(name, value)          'batch': the batch id; 'next_id': the id the next task gets
//                              (written with each group that created tasks, so that ids are
//                              not reused after the highest ones expired); 'opened_us': the
//                              last open (written at open, which proves the file writable)
//   tasks(id PRIMARY KEY, key, payload, state, submitted_us, not_before_us, attempts,
//         final_us, status, exit_code, signal, out, out_truncated, err, worker, started_us,
//         duration_us, finished_us)
//       state: 0 queued, 1 running, 2 finished, 3 cancelled; final_us NULL while unfinished;
//       the result's columns NULL unless finished; status as text ("ok", ...).
//   tasks_by_key     unique on key, for keyed tasks only (submit, find_key)
//   tasks_unfinished on id, for unfinished tasks only (unfinished() at start-up)
//   tasks_by_final   on final_us, for final tasks only (expire)
//
// A group is one transaction (BEGIN IMMEDIATE at its first mutation, COMMIT in commit()); with
// synchronous=FULL a commit is one fsync of the WAL. Checkpoints (copying the WAL into the
// database file) run on a thread of their own (wal_checkpointer.hpp), not in commit().
// Every statement is prepared once. Memory: SQLite's page cache (cache_size), the prepared
// statements and a few counters; no task is held here.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "sqlite.hpp"
#include "store.hpp"
#include "taskpipe/wall_clock.hpp"
#include "wal_checkpointer.hpp"

namespace taskpipe {
namespace {

constexpr std::int64_t kApplicationId = 0x74707374;  // "tpst"
constexpr std::int64_t kFormatVersion = 1;
// The WAL is checkpointed in the background once it holds this many pages (4 MiB), as SQLite
// does by default in the committing thread.
constexpr int kCheckpointFrames = 1000;
// Past this many pages (32 MiB), the committing thread checkpoints what the background ones
// left (WalCheckpointer::checkpoint_in_writer), so that the WAL starts again.
constexpr int kWalLimitFrames = 8000;

constexpr const char* kSchema = R"sql(
CREATE TABLE meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE tasks(
    id INTEGER PRIMARY KEY,
    key BLOB,
    payload BLOB NOT NULL,
    state INTEGER NOT NULL,
    submitted_us INTEGER NOT NULL,
    not_before_us INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    final_us INTEGER,
    status TEXT,
    exit_code INTEGER,
    signal INTEGER,
    out BLOB,
    out_truncated INTEGER,
    err BLOB,
    worker BLOB,
    started_us INTEGER,
    duration_us INTEGER,
    finished_us INTEGER);
CREATE UNIQUE INDEX tasks_by_key ON tasks(key) WHERE key IS NOT NULL;
CREATE INDEX tasks_unfinished ON tasks(id) WHERE final_us IS NULL;
CREATE INDEX tasks_by_final ON tasks(final_us) WHERE final_us IS NOT NULL;
)sql";

// The columns read into a StoredTask, in read_task()'s order.
#define TASK_COLUMNS                                                                     \
    "id, key, payload, state, submitted_us, not_before_us, attempts, final_us, status, " \
    "exit_code, signal, out, out_truncated, err, worker, started_us, duration_us, finished_us"

std::int64_t state_code(TaskState state) {
    switch (state) {
        case TaskState::queued:
            return 0;
        case TaskState::running:
            return 1;
        case TaskState::finished:
            return 2;
        case TaskState::cancelled:
            return 3;
    }
    return -1;
}

// The store's file, created if missing, open for writing and exclusively flock(2)ed while this
// lives: one process at a time uses a store. Quiet destructor. It must outlive every SQLite
// connection to the file: closing a descriptor of a file drops the process's fcntl locks on
// it, SQLite's included.
class FileLock {
  public:
    explicit FileLock(const std::string& path) {
        check_path(path);
        fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd_ < 0) {
            if (errno == ELOOP) throw StoreError(path + ": is a symbolic link");
            throw StoreError(path + ": cannot be written (" + std::strerror(errno) + ")");
        }
        if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
            const int error = errno;
            ::close(fd_);
            throw StoreError(path + (error == EWOULDBLOCK
                                         ? std::string(": in use by another process")
                                         : ": cannot lock: " + std::string(std::strerror(error))));
        }
    }
    ~FileLock() { ::close(fd_); }
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;

  private:
    // Refuses a symbolic link, anything but a regular file, and a directory that is missing or
    // where the WAL cannot be created, with a message that says so.
    static void check_path(const std::string& path) {
        struct stat st {};
        if (::lstat(path.c_str(), &st) == 0) {
            if (S_ISLNK(st.st_mode)) {
                throw StoreError(path + ": is a symbolic link; give the store's own path");
            }
            if (!S_ISREG(st.st_mode)) throw StoreError(path + ": not a regular file");
        } else if (errno != ENOENT) {
            throw StoreError(path + ": " + std::strerror(errno));
        }
        const auto parent = std::filesystem::absolute(path).parent_path();
        std::error_code ec;
        if (!std::filesystem::is_directory(parent, ec)) {
            throw StoreError(path + ": the directory " + parent.string() + " does not exist");
        }
        if (::access(parent.c_str(), W_OK) != 0) {
            throw StoreError(path + ": cannot be written: its directory " + parent.string() +
                             " is not writable (" + std::strerror(errno) +
                             "), and the store keeps its write-ahead log beside it");
        }
    }

    int fd_ = -1;
};

class SqliteStore final : public TaskStore {
  public:
    SqliteStore(std::string path, const SqliteStoreOptions& options)
        : path_(std::move(path)), lock_(path_), db_(open(path_)) {
        try {
            configure(options);
            prepare();
            load();
            checkpointer_.emplace(path_, kCheckpointFrames);
            sqlite3_wal_hook(db_.get(), &SqliteStore::on_commit, this);
        } catch (const sqlite::Error& e) {
            throw StoreError(path_ + ": " + e.what());
        }
    }

    ~SqliteStore() override {
        sqlite3_wal_hook(db_.get(), nullptr, nullptr);
        checkpointer_.reset();  // before the connection closes (and checkpoints at last)
    }
    SqliteStore(const SqliteStore&) = delete;
    SqliteStore& operator=(const SqliteStore&) = delete;

    std::uint64_t batch() const override { return batch_; }

    SubmitOutcome submit(const Submission& submission) override {
        return mutate([&] {
            if (submission.key) {
                if (auto existing = fetch_key(*submission.key)) {
                    const auto kind = existing->payload == submission.payload
                                          ? SubmitOutcome::Kind::duplicate
                                          : SubmitOutcome::Kind::conflict;
                    return SubmitOutcome{kind, std::move(*existing)};
                }
            }
            StoredTask task;
            task.id = next_id_;
            task.key = submission.key;
            task.payload = submission.payload;
            task.submitted_us = submission.now_us;
            task.not_before_us = submission.not_before_us;
            auto q = insert_.query();
            q.bind(1, task.id)
                .bind_blob(2, task.key)
                .bind_blob(3, std::string_view(task.payload))
                .bind(4, state_code(TaskState::queued))
                .bind(5, task.submitted_us)
                .bind(6, task.not_before_us)
                .run();
            ++next_id_;
            ++counts_.queued;
            return SubmitOutcome{SubmitOutcome::Kind::created, std::move(task)};
        });
    }

    std::optional<TaskState> cancel(std::uint64_t id, std::uint64_t now_us) override {
        return mutate([&]() -> std::optional<TaskState> {
            {
                auto q = cancel_.query();
                q.bind(1, now_us).bind(2, id).run();
            }
            if (db_.changes() == 1) {
                --counts_.queued;
                ++counts_.kept;
                return TaskState::cancelled;
            }
            auto q = state_.query();
            q.bind(1, id);
            if (!q.step()) return std::nullopt;
            return state_from_code(q.int64(0));
        });
    }

    bool mark_sent(std::uint64_t id, std::uint32_t attempts) override {
        return mutate([&] {
            for (const TaskState from : {TaskState::queued, TaskState::running}) {
                {
                    auto q = mark_sent_.query();
                    q.bind(1, std::int64_t{attempts}).bind(2, id).bind(3, state_code(from)).run();
                }
                if (db_.changes() == 1) {
                    if (from == TaskState::queued) {
                        --counts_.queued;
                        ++counts_.running;
                    }
                    return true;
                }
            }
            return false;
        });
    }

    bool record(std::uint64_t id, const StoredResult& result) override {
        return mutate([&] {
            for (const TaskState from : {TaskState::running, TaskState::queued}) {
                {
                    auto q = record_.query();
                    q.bind(1, result.finished_us)
                        .bind_text(2, to_string(result.status))
                        .bind(3, result.exit_code)
                        .bind(4, result.signal)
                        .bind_blob(5, std::string_view(result.out))
                        .bind(6, std::int64_t{result.out_truncated ? 1 : 0})
                        .bind_blob(7, std::string_view(result.err))
                        .bind_blob(8, std::string_view(result.worker))
                        .bind(9, result.started_us)
                        .bind(10, result.duration_us)
                        .bind(11, id)
                        .bind(12, state_code(from))
                        .run();
                }
                if (db_.changes() == 1) {
                    --(from == TaskState::running ? counts_.running : counts_.queued);
                    ++counts_.kept;
                    return true;
                }
            }
            return false;
        });
    }

    std::size_t expire(std::uint64_t before_us, std::size_t limit) override {
        if (limit == 0) return 0;
        return mutate([&] {
            {
                auto q = expire_.query();
                q.bind(1, before_us).bind(2, static_cast<std::int64_t>(limit)).run();
            }
            const auto expired = static_cast<std::size_t>(db_.changes());
            counts_.kept -= expired;
            return expired;
        });
    }

    void commit() override {
        if (failed_) {
            failed_ = false;
            throw StoreError(path_ + ": " + failure_ + " (the group was rolled back)");
        }
        if (!in_group_) return;
        try {
            if (next_id_ != committed_.next_id) {
                auto q = set_meta_.query();
                q.bind_text(1, "next_id").bind(2, next_id_).run();
            }
            commit_.query().run();
        } catch (const sqlite::Error& e) {
            undo_group();
            throw StoreError(path_ + ": " + e.what() + " (the group was rolled back)");
        }
        in_group_ = false;
        committed_ = {next_id_, counts_};
    }

    void rollback() override {
        failed_ = false;
        undo_group();
    }

    std::optional<StoredTask> find(std::uint64_t id) const override {
        return lookup([&]() -> std::optional<StoredTask> {
            auto q = find_.query();
            q.bind(1, id);
            if (!q.step()) return std::nullopt;
            return read_task(q);
        });
    }

    std::optional<StoredTask> find_key(std::string_view key) const override {
        return lookup([&] { return fetch_key(key); });
    }

    std::vector<StoredTask> unfinished() const override {
        return lookup([&] {
            std::vector<StoredTask> tasks;
            auto q = unfinished_.query();
            while (q.step()) tasks.push_back(read_task(q));
            return tasks;
        });
    }

    StoreCounts counts() const override { return counts_; }

  private:
    // What a rollback returns to: the state after the last commit.
    struct Committed {
        std::uint64_t next_id = 1;
        StoreCounts counts;
    };

    static sqlite::Database open(const std::string& path) {
        try {
            // NOMUTEX: the connection is used by one thread at a time (the store's owner).
            sqlite::Database db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                          SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX);
            if (db.read_only()) throw StoreError(path + ": cannot be written (read-only)");
            return db;
        } catch (const sqlite::Error& e) {
            throw StoreError(path + ": cannot open: " + e.what());
        }
    }

    // After each commit: the WAL holds `frames` pages. A failed checkpoint is tried again after
    // the next commit (the WAL only grows meanwhile).
    static int on_commit(void* self, sqlite3* db, const char*, int frames) {
        auto& checkpointer = *static_cast<SqliteStore*>(self)->checkpointer_;
        checkpointer.wal_grew(frames);
        if (frames >= kWalLimitFrames) checkpointer.checkpoint_in_writer(db);
        return SQLITE_OK;
    }

    // Checks that the file is a taskpipe store (or empty, then creates one), sets the pragmas,
    // and writes opened_us, which proves the file writable.
    void configure(const SqliteStoreOptions& options) {
        // Only our own checkpointer's connection shares the file; an operator's sqlite3 shell
        // writing to it would make us wait this long, then fail the group.
        db_.exec("PRAGMA busy_timeout=2000");
        std::int64_t objects = 0, application_id = 0, version = 0;
        try {
            objects = single_int("SELECT count(*) FROM sqlite_schema");
            application_id = single_int("PRAGMA application_id");
            version = single_int("PRAGMA user_version");
        } catch (const sqlite::Error& e) {
            if (e.primary_code() == SQLITE_NOTADB) {
                throw StoreError(path_ + ": not a taskpipe store (not an SQLite database)");
            }
            if (e.primary_code() == SQLITE_BUSY) {
                throw StoreError(path_ + ": in use by another process (" + e.what() + ")");
            }
            throw;
        }
        const bool fresh = objects == 0 && application_id == 0;
        if (!fresh && application_id != kApplicationId) {
            throw StoreError(path_ +
                             ": not a taskpipe store (an SQLite database of something else)");
        }
        if (!fresh && version != kFormatVersion) {
            throw StoreError(path_ + ": a taskpipe store of format version " +
                             std::to_string(version) + "; this program reads version " +
                             std::to_string(kFormatVersion));
        }
        {
            sqlite::Statement wal(db_, "PRAGMA journal_mode=WAL");
            auto q = wal.query();
            if (!q.step() || q.bytes(0) != "wal") {
                throw StoreError(path_ + ": cannot use SQLite's WAL mode here");
            }
        }
        db_.exec(options.fsync_commits ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
        const auto cache_kib = std::to_string(options.cache_kib == 0 ? 1 : options.cache_kib);
        db_.exec(("PRAGMA cache_size=-" + cache_kib).c_str());
        // Statement journals and sorts in memory (bounded by one group), no temporary files.
        db_.exec("PRAGMA temp_store=MEMORY");
        // Once checkpointed, a WAL grown by a large group is cut back to this size.
        db_.exec("PRAGMA journal_size_limit=67108864");
        db_.exec("PRAGMA wal_autocheckpoint=0");  // the WalCheckpointer does them

        db_.exec("BEGIN IMMEDIATE");
        try {
            if (fresh) {
                db_.exec(kSchema);
                db_.exec(("PRAGMA application_id=" + std::to_string(kApplicationId)).c_str());
                db_.exec(("PRAGMA user_version=" + std::to_string(kFormatVersion)).c_str());
                const auto batch = static_cast<std::int64_t>(new_batch_id());
                db_.exec(("INSERT INTO meta VALUES ('batch', " + std::to_string(batch) +
                          "), ('next_id', 1)")
                             .c_str());
            }
            sqlite::Statement opened(db_, "INSERT OR REPLACE INTO meta VALUES ('opened_us', ?1)");
            opened.query().bind(1, unix_micros()).run();
            db_.exec("COMMIT");
        } catch (...) {
            if (db_.in_transaction())
                sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
            throw;
        }
    }

    void prepare() {
        begin_ = sqlite::Statement(db_, "BEGIN IMMEDIATE");
        commit_ = sqlite::Statement(db_, "COMMIT");
        rollback_ = sqlite::Statement(db_, "ROLLBACK");
        set_meta_ = sqlite::Statement(db_, "INSERT OR REPLACE INTO meta VALUES (?1, ?2)");
        insert_ = sqlite::Statement(db_,
                                    "INSERT INTO tasks (id, key, payload, state, submitted_us, "
                                    "not_before_us, attempts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)");
        cancel_ = sqlite::Statement(db_,
                                    "UPDATE tasks SET state = 3, final_us = ?1 "
                                    "WHERE id = ?2 AND state = 0");
        state_ = sqlite::Statement(db_, "SELECT state FROM tasks WHERE id = ?1");
        mark_sent_ = sqlite::Statement(db_,
                                       "UPDATE tasks SET state = 1, attempts = ?1 "
                                       "WHERE id = ?2 AND state = ?3");
        record_ = sqlite::Statement(
            db_,
            "UPDATE tasks SET state = 2, final_us = ?1, finished_us = ?1, status = ?2, "
            "exit_code = ?3, signal = ?4, out = ?5, out_truncated = ?6, err = ?7, worker = ?8, "
            "started_us = ?9, duration_us = ?10 WHERE id = ?11 AND state = ?12");
        expire_ = sqlite::Statement(
            db_,
            "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks INDEXED BY tasks_by_final "
            "WHERE final_us IS NOT NULL AND final_us < ?1 ORDER BY final_us LIMIT ?2)");
        find_ = sqlite::Statement(db_, "SELECT " TASK_COLUMNS " FROM tasks WHERE id = ?1");
        find_key_ = sqlite::Statement(
            db_, "SELECT " TASK_COLUMNS " FROM tasks WHERE key = ?1 AND key IS NOT NULL");
        unfinished_ = sqlite::Statement(db_, "SELECT " TASK_COLUMNS
                                             " FROM tasks INDEXED BY tasks_unfinished "
                                             "WHERE final_us IS NULL ORDER BY id");
    }

    // Reads the batch id, the next id and the counts.
    void load() {
        batch_ =
            static_cast<std::uint64_t>(single_int("SELECT value FROM meta WHERE name='batch'"));
        const auto stored_next = single_int("SELECT value FROM meta WHERE name='next_id'");
        const auto highest = single_int("SELECT coalesce(max(id), 0) FROM tasks");
        next_id_ = static_cast<std::uint64_t>(std::max(stored_next, highest + 1));
        counts_.queued = static_cast<std::size_t>(
            single_int("SELECT count(*) FROM tasks INDEXED BY tasks_unfinished "
                       "WHERE final_us IS NULL AND state = 0"));
        counts_.running = static_cast<std::size_t>(
            single_int("SELECT count(*) FROM tasks INDEXED BY tasks_unfinished "
                       "WHERE final_us IS NULL AND state = 1"));
        counts_.kept = static_cast<std::size_t>(single_int(
            "SELECT count(*) FROM tasks INDEXED BY tasks_by_final WHERE final_us IS NOT NULL"));
        if (batch_ == 0) throw damaged("the batch id is 0");
        committed_ = {next_id_, counts_};
    }

    std::int64_t single_int(const char* sql) {
        sqlite::Statement statement(db_, sql);
        auto q = statement.query();
        if (!q.step()) throw damaged(std::string("no answer to ") + sql);
        return q.int64(0);
    }

    // The task with `key`; throws sqlite::Error.
    std::optional<StoredTask> fetch_key(std::string_view key) const {
        auto q = find_key_.query();
        q.bind_blob(1, key);
        if (!q.step()) return std::nullopt;
        return read_task(q);
    }

    static sqlite::Error damaged(const std::string& what) {
        return sqlite::Error(SQLITE_CORRUPT, "damaged: " + what);
    }

    static TaskState state_from_code(std::int64_t code) {
        switch (code) {
            case 0:
                return TaskState::queued;
            case 1:
                return TaskState::running;
            case 2:
                return TaskState::finished;
            case 3:
                return TaskState::cancelled;
            default:
                throw damaged("task state " + std::to_string(code));
        }
    }

    static StoredTask read_task(const sqlite::Query& q) {
        StoredTask task;
        task.id = q.uint64(0);
        task.key = q.optional_bytes(1);
        task.payload = q.bytes(2);
        task.state = state_from_code(q.int64(3));
        task.submitted_us = q.uint64(4);
        task.not_before_us = q.uint64(5);
        task.attempts = static_cast<std::uint32_t>(q.int64(6));
        task.final_us = q.is_null(7) ? 0 : q.uint64(7);
        if (task.state == TaskState::finished) {
            StoredResult r;
            const auto status = status_from_string(q.bytes(8));
            if (!status) {
                throw damaged("task " + std::to_string(task.id) + " has the status " + q.bytes(8));
            }
            r.status = *status;
            r.exit_code = q.optional_int32(9);
            r.signal = q.optional_int32(10);
            r.out = q.bytes(11);
            r.out_truncated = q.int64(12) != 0;
            r.err = q.bytes(13);
            r.worker = q.bytes(14);
            r.started_us = q.uint64(15);
            r.duration_us = q.uint64(16);
            r.finished_us = q.uint64(17);
            task.result = std::move(r);
        }
        return task;
    }

    // Runs one mutation inside the group's transaction. On an SQLite error the whole group is
    // rolled back and the store refuses mutations until commit() or rollback() ends the group.
    template <typename Mutation>
    auto mutate(Mutation mutation) -> decltype(mutation()) {
        if (failed_) {
            throw StoreError(path_ + ": " + failure_ + " (earlier in this group)");
        }
        try {
            if (!in_group_) {
                // A transaction left open by a failed rollback is ended first.
                if (db_.in_transaction()) rollback_.query().run();
                begin_.query().run();
                in_group_ = true;
            }
            return mutation();
        } catch (const sqlite::Error& e) {
            undo_group();
            failed_ = true;
            failure_ = e.what();
            throw StoreError(path_ + ": " + failure_ + " (the group was rolled back)");
        }
    }

    template <typename Lookup>
    auto lookup(Lookup body) const -> decltype(body()) {
        try {
            return body();
        } catch (const sqlite::Error& e) {
            throw StoreError(path_ + ": " + e.what());
        }
    }

    // Rolls the transaction back (SQLite may have done so already after an I/O error) and
    // the in-memory state with it.
    void undo_group() {
        if (db_.in_transaction()) {
            try {
                rollback_.query().run();
            } catch (const sqlite::Error&) {
                // Still in a transaction: the next group's first mutation tries again.
            }
        }
        in_group_ = false;
        next_id_ = committed_.next_id;
        counts_ = committed_.counts;
    }

    std::string path_;
    FileLock lock_;  // before db_: released after it is closed
    sqlite::Database db_;
    std::uint64_t batch_ = 0;
    std::uint64_t next_id_ = 1;
    StoreCounts counts_;
    Committed committed_;
    bool in_group_ = false;  // a transaction is open for the group
    bool failed_ = false;    // a mutation of the group failed: the group is lost
    std::string failure_;

    // Prepared by prepare(). Lookups are const but step statements: those are mutable.
    sqlite::Statement begin_;
    sqlite::Statement commit_;
    sqlite::Statement rollback_;
    sqlite::Statement set_meta_;
    sqlite::Statement insert_;
    sqlite::Statement cancel_;
    sqlite::Statement mark_sent_;
    sqlite::Statement record_;
    sqlite::Statement expire_;
    mutable sqlite::Statement state_;
    mutable sqlite::Statement find_;
    mutable sqlite::Statement find_key_;
    mutable sqlite::Statement unfinished_;
    std::optional<WalCheckpointer> checkpointer_;  // after the statements: stopped first
};

}  // namespace

std::unique_ptr<TaskStore> open_sqlite_store(const std::string& path,
                                             const SqliteStoreOptions& options) {
    return std::make_unique<SqliteStore>(path, options);
}

}  // namespace taskpipe
