// The task store of service mode (ventilator/store.hpp), both implementations.
//
// The StoreTest suite runs every test against the memory store and the SQLite store; the
// SqliteStore suite holds what only a file can show: reopening, refusing files that are not a
// store, a disk that fills, a file made read-only, a process killed mid-way.
#include "store.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sched.h>
#include <sqlite3.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/temp_dir.hpp"
#include "support/wait.hpp"

namespace taskpipe {
namespace {

using Kind = SubmitOutcome::Kind;

Submission submission(std::string payload, std::optional<std::string> key = std::nullopt,
                      std::uint64_t not_before_us = 0, std::uint64_t now_us = 1000) {
    return {std::move(payload), std::move(key), not_before_us, now_us};
}

StoredResult result(Status status, std::uint64_t finished_us, std::string out = "out") {
    StoredResult r;
    r.status = status;
    r.exit_code = status == Status::ok ? 0 : 1;
    r.out = std::move(out);
    r.err = "err";
    r.worker = "host:42";
    r.started_us = finished_us - 5;
    r.duration_us = 4;
    r.finished_us = finished_us;
    return r;
}

// Submits `payload` (with `key`) and returns the new task's id.
std::uint64_t add(TaskStore& store, const std::string& payload,
                  std::optional<std::string> key = std::nullopt) {
    const auto outcome = store.submit(submission(payload, std::move(key)));
    EXPECT_EQ(outcome.kind, Kind::created);
    return outcome.task.id;
}

std::optional<TaskState> state_of(const TaskStore& store, std::uint64_t id) {
    const auto task = store.find(id);
    if (!task) return std::nullopt;
    return task->state;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// ---------------------------------------------------------------------------------------------
// Both implementations.

enum class Backend { memory, sqlite };

void PrintTo(Backend backend, std::ostream* out) {
    *out << (backend == Backend::memory ? "memory" : "sqlite");
}

class StoreTest : public ::testing::TestWithParam<Backend> {
  protected:
    void SetUp() override { store = open(); }

    std::unique_ptr<TaskStore> open() const {
        return GetParam() == Backend::memory ? make_memory_store()
                                             : open_sqlite_store(dir.file("tasks.db"));
    }

    testing::TempDir dir;
    std::unique_ptr<TaskStore> store;
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::Values(Backend::memory, Backend::sqlite),
                         [](const ::testing::TestParamInfo<Backend>& param) {
                             return param.param == Backend::memory ? "Memory" : "Sqlite";
                         });

// "The service's batch id: chosen (random, non-zero)."
TEST_P(StoreTest, HasANonZeroBatch) { EXPECT_NE(store->batch(), 0u); }

// "Ids are 1, 2, 3, ..."
TEST_P(StoreTest, GivesIdsOneTwoThree) {
    for (std::uint64_t expected = 1; expected <= 3; ++expected) {
        const auto outcome = store->submit(submission("task " + std::to_string(expected)));
        EXPECT_EQ(outcome.kind, Kind::created);
        EXPECT_EQ(outcome.task.id, expected);
        EXPECT_EQ(outcome.task.state, TaskState::queued);
        EXPECT_EQ(outcome.task.payload, "task " + std::to_string(expected));
    }
    store->commit();
    EXPECT_EQ(store->find(2)->payload, "task 2");
    EXPECT_EQ(store->counts(), (StoreCounts{3, 0, 0}));
}

TEST_P(StoreTest, KeepsEveryFieldOfATaskAndItsResult) {
    const std::string bytes("a\0b\xff\n", 5);
    const auto outcome = store->submit(submission(bytes, "key\0x", 5000, 1234));
    store->mark_sent(outcome.task.id, 3);
    StoredResult r = result(Status::failed, 9000, bytes);
    r.exit_code = std::nullopt;
    r.signal = 9;
    r.out_truncated = true;
    r.err = "";
    ASSERT_TRUE(store->record(outcome.task.id, r));
    store->commit();

    const auto task = store->find(outcome.task.id);
    ASSERT_TRUE(task);
    EXPECT_EQ(task->key, std::optional<std::string>("key\0x"));
    EXPECT_EQ(task->payload, bytes);
    EXPECT_EQ(task->state, TaskState::finished);
    EXPECT_EQ(task->submitted_us, 1234u);
    EXPECT_EQ(task->not_before_us, 5000u);
    EXPECT_EQ(task->attempts, 3u);
    EXPECT_EQ(task->final_us, 9000u);
    EXPECT_EQ(task->result, r);
    EXPECT_EQ(store->find_key("key\0x"), task);
}

TEST_P(StoreTest, KeepsAnEmptyPayload) {
    const auto id = add(*store, "");
    store->commit();
    ASSERT_TRUE(store->find(id));
    EXPECT_EQ(store->find(id)->payload, "");
}

// "a second submit with the same key while the first task is kept returns the first task (same
// payload) or a conflict error (another payload)"
TEST_P(StoreTest, ASecondSubmitWithTheSameKeyIsADuplicateOrAConflict) {
    const auto id = add(*store, "payload", "k");
    store->commit();

    const auto duplicate = store->submit(submission("payload", "k"));
    EXPECT_EQ(duplicate.kind, Kind::duplicate);
    EXPECT_EQ(duplicate.task.id, id);

    const auto conflict = store->submit(submission("other payload", "k"));
    EXPECT_EQ(conflict.kind, Kind::conflict);
    EXPECT_EQ(conflict.task.id, id);
    EXPECT_EQ(conflict.task.payload, "payload");

    store->commit();
    EXPECT_EQ(store->counts().queued, 1u);  // nothing stored for either
    EXPECT_EQ(add(*store, "next"), id + 1);
}

TEST_P(StoreTest, AKeyIsAKeyAfterItsTaskFinished) {
    const auto id = add(*store, "payload", "k");
    store->mark_sent(id, 1);
    store->record(id, result(Status::ok, 2000));
    store->commit();
    const auto again = store->submit(submission("payload", "k"));
    EXPECT_EQ(again.kind, Kind::duplicate);
    EXPECT_EQ(again.task.state, TaskState::finished);
    ASSERT_TRUE(again.task.result);
    EXPECT_EQ(again.task.result->out, "out");
}

// "Visible to the lookups below at once (read-your-writes)"
TEST_P(StoreTest, LookupsSeeTheGroupBeforeItIsCommitted) {
    const auto id = add(*store, "payload", "k");
    EXPECT_EQ(store->find(id)->payload, "payload");
    EXPECT_EQ(store->find_key("k")->id, id);
    EXPECT_EQ(store->submit(submission("payload", "k")).kind, Kind::duplicate);
    EXPECT_EQ(store->counts(), (StoreCounts{1, 0, 0}));

    EXPECT_TRUE(store->mark_sent(id, 1));
    EXPECT_EQ(state_of(*store, id), TaskState::running);
    EXPECT_TRUE(store->record(id, result(Status::ok, 2000)));
    EXPECT_EQ(state_of(*store, id), TaskState::finished);
    EXPECT_EQ(store->counts(), (StoreCounts{0, 0, 1}));
    EXPECT_EQ(store->expire(3000, 10), 1u);
    EXPECT_FALSE(store->find(id));
    EXPECT_FALSE(store->find_key("k"));
}

// "undone by rollback() or a failed commit()" (here rollback(); the SqliteStore suite fails
// real commits)
TEST_P(StoreTest, RollbackUndoesEveryMutationOfTheGroup) {
    const auto queued = add(*store, "queued", "kq");
    const auto running = add(*store, "running");
    const auto finished = add(*store, "finished", "kf");
    store->mark_sent(running, 1);
    store->mark_sent(finished, 1);
    store->record(finished, result(Status::ok, 100));
    store->commit();
    const auto before =
        std::vector{*store->find(queued), *store->find(running), *store->find(finished)};
    const auto counts = store->counts();

    EXPECT_EQ(add(*store, "new", "kn"), 4u);
    EXPECT_EQ(store->cancel(queued, 5000), TaskState::cancelled);
    EXPECT_TRUE(store->mark_sent(running, 2));
    EXPECT_TRUE(store->record(running, result(Status::failed, 5000)));
    EXPECT_EQ(store->expire(1000, 10), 1u);
    store->rollback();

    EXPECT_EQ(store->find(queued), before[0]);
    EXPECT_EQ(store->find(running), before[1]);
    EXPECT_EQ(store->find(finished), before[2]);
    EXPECT_EQ(store->find_key("kf")->id, finished);
    EXPECT_FALSE(store->find(4));
    EXPECT_FALSE(store->find_key("kn"));
    EXPECT_EQ(store->counts(), counts);
    // "a failed commit may reuse the rolled-back ids: they were never given to anyone"
    EXPECT_EQ(add(*store, "again", "kn"), 4u);
    store->commit();
    EXPECT_EQ(store->find(4)->payload, "again");
}

// "cancelled if it had not been sent yet (or was already cancelled); otherwise its current
// state (a running or finished task is not cancelled); unknown for an id never issued"
TEST_P(StoreTest, CancelsOnlyATaskNotYetSent) {
    const auto queued = add(*store, "queued");
    const auto delayed = store->submit(submission("delayed", std::nullopt, 1'000'000)).task.id;
    const auto running = add(*store, "running");
    const auto finished = add(*store, "finished");
    store->mark_sent(running, 1);
    store->mark_sent(finished, 1);
    store->record(finished, result(Status::error, 100));
    store->commit();

    EXPECT_EQ(store->cancel(queued, 500), TaskState::cancelled);
    EXPECT_EQ(store->cancel(delayed, 500), TaskState::cancelled);
    EXPECT_EQ(store->cancel(queued, 600), TaskState::cancelled);  // already cancelled
    EXPECT_EQ(store->cancel(running, 500), TaskState::running);
    EXPECT_EQ(store->cancel(finished, 500), TaskState::finished);
    EXPECT_EQ(store->cancel(99, 500), std::nullopt);
    store->commit();

    EXPECT_EQ(store->find(queued)->final_us, 500u);  // the first cancel's time
    EXPECT_EQ(store->find(running)->state, TaskState::running);
    EXPECT_EQ(store->find(finished)->result->status, Status::error);
    EXPECT_EQ(store->counts(), (StoreCounts{0, 1, 3}));
    // A cancelled task is neither sent nor recorded.
    EXPECT_FALSE(store->mark_sent(queued, 1));
    EXPECT_FALSE(store->record(queued, result(Status::ok, 700)));
    EXPECT_EQ(state_of(*store, queued), TaskState::cancelled);
}

TEST_P(StoreTest, MarkSentCountsAttempts) {
    const auto id = add(*store, "payload");
    EXPECT_TRUE(store->mark_sent(id, 1));
    EXPECT_EQ(store->find(id)->attempts, 1u);
    EXPECT_TRUE(store->mark_sent(id, 2));  // sent again after a worker died
    EXPECT_EQ(store->find(id)->attempts, 2u);
    EXPECT_EQ(store->counts(), (StoreCounts{0, 1, 0}));
    EXPECT_FALSE(store->mark_sent(99, 1));
    store->record(id, result(Status::ok, 100));
    EXPECT_FALSE(store->mark_sent(id, 3));
    EXPECT_EQ(store->find(id)->attempts, 2u);
}

// "The ventilator records the first result of each running task"
TEST_P(StoreTest, RecordsTheFirstResultOnly) {
    const auto id = add(*store, "payload");
    store->mark_sent(id, 1);
    EXPECT_TRUE(store->record(id, result(Status::ok, 100, "first")));
    EXPECT_FALSE(store->record(id, result(Status::failed, 200, "second")));
    store->commit();
    EXPECT_FALSE(store->record(id, result(Status::failed, 300, "third")));
    EXPECT_EQ(store->find(id)->result->out, "first");
    EXPECT_EQ(store->find(id)->final_us, 100u);
    EXPECT_FALSE(store->record(99, result(Status::ok, 100)));
    EXPECT_EQ(store->counts(), (StoreCounts{0, 0, 1}));
}

TEST_P(StoreTest, RecordsAResultForAQueuedTask) {
    // After a restart (or a rolled-back mark_sent) a task a worker ran may still be queued.
    const auto id = add(*store, "payload");
    EXPECT_TRUE(store->record(id, result(Status::ok, 100)));
    EXPECT_EQ(store->counts(), (StoreCounts{0, 0, 1}));
}

// "Deletes up to `limit` finished or cancelled tasks whose final_us is before `before_us`, the
// oldest first ... Their keys are free again and their ids unknown."
TEST_P(StoreTest, ExpiresTheOldestFinalTasksAFewAtATime) {
    std::vector<std::uint64_t> ids;
    for (int i = 1; i <= 5; ++i) {
        ids.push_back(add(*store, "task", "k" + std::to_string(i)));
        store->mark_sent(ids.back(), 1);
    }
    // Finished in the order 3, 1, 4 (at 10, 20, 30); another task cancelled at 25.
    store->record(ids[2], result(Status::ok, 10));
    store->record(ids[0], result(Status::failed, 20));
    store->record(ids[3], result(Status::ok, 30));
    const auto cancelled = add(*store, "cancelled", "kc");
    store->cancel(cancelled, 25);
    store->commit();
    EXPECT_EQ(store->counts(), (StoreCounts{0, 2, 4}));

    EXPECT_EQ(store->expire(1000, 2), 2u);  // bounded: the two oldest
    EXPECT_FALSE(store->find(ids[2]));
    EXPECT_FALSE(store->find(ids[0]));
    EXPECT_TRUE(store->find(cancelled));
    EXPECT_EQ(store->expire(30, 10), 1u);  // only final_us < 30: the cancelled one
    EXPECT_FALSE(store->find(cancelled));
    EXPECT_TRUE(store->find(ids[3]));
    EXPECT_EQ(store->expire(1000, 0), 0u);
    EXPECT_EQ(store->expire(1000, 10), 1u);
    EXPECT_EQ(store->expire(1000, 10), 0u);  // running tasks never expire
    store->commit();
    EXPECT_EQ(store->counts(), (StoreCounts{0, 2, 0}));

    // The ids are unknown: not cancelled, not recorded.
    EXPECT_EQ(store->cancel(ids[0], 50), std::nullopt);
    EXPECT_FALSE(store->record(ids[0], result(Status::ok, 50)));
    EXPECT_FALSE(store->mark_sent(ids[0], 2));
    // The keys are free: a new task with a new id, even with another payload.
    const auto reused = store->submit(submission("new payload", "k1"));
    EXPECT_EQ(reused.kind, Kind::created);
    EXPECT_EQ(reused.task.id, 7u);  // "ids are not reused"
    // The running tasks' keys still hold.
    EXPECT_EQ(store->submit(submission("x", "k2")).kind, Kind::conflict);
}

// "every delayed, queued and running task, in id order (running ones are to be sent again)"
TEST_P(StoreTest, ListsTheUnfinishedTasksInIdOrder) {
    const auto a = add(*store, "a");
    const auto b = add(*store, "b");
    const auto c = add(*store, "c");
    const auto d = add(*store, "d");
    const auto e = store->submit(submission("e", std::nullopt, 99'000)).task.id;
    store->mark_sent(b, 1);
    store->mark_sent(c, 1);
    store->record(c, result(Status::ok, 100));
    store->cancel(d, 100);
    store->commit();

    const auto tasks = store->unfinished();
    ASSERT_EQ(tasks.size(), 3u);
    EXPECT_EQ(tasks[0].id, a);
    EXPECT_EQ(tasks[0].state, TaskState::queued);
    EXPECT_EQ(tasks[1].id, b);
    EXPECT_EQ(tasks[1].state, TaskState::running);
    EXPECT_EQ(tasks[1].payload, "b");
    EXPECT_EQ(tasks[2].id, e);
    EXPECT_EQ(tasks[2].not_before_us, 99'000u);
}

TEST_P(StoreTest, ACommitWithNothingToCommitIsFine) {
    store->commit();
    store->commit();
    store->rollback();
    EXPECT_EQ(add(*store, "x"), 1u);
}

TEST(StoreStateName, NamesTheProtocolStates) {
    StoredTask task;
    task.not_before_us = 2000;
    EXPECT_STREQ(state_name(task, 1000), "delayed");
    EXPECT_STREQ(state_name(task, 2000), "queued");
    task.state = TaskState::running;
    EXPECT_STREQ(state_name(task, 1000), "running");
    task.state = TaskState::cancelled;
    EXPECT_STREQ(state_name(task, 1000), "cancelled");
    task.state = TaskState::finished;
    task.result = result(Status::timeout, 3000);
    EXPECT_STREQ(state_name(task, 1000), "timeout");
}

// ---------------------------------------------------------------------------------------------
// SQLite only.

class SqliteStore : public ::testing::Test {
  protected:
    std::unique_ptr<TaskStore> open() const { return open_sqlite_store(path); }

    // The message of the StoreError that opening the store throws ("" if it opens).
    std::string open_error(const std::string& at) const {
        try {
            open_sqlite_store(at);
        } catch (const StoreError& e) {
            return e.what();
        }
        return "";
    }

    testing::TempDir dir;
    std::string path = dir.file("tasks.db");
};

// "read back when it is reopened, so that a restarted ventilator keeps its batch"; "Ids ...
// never reused once committed"; running tasks come back to be sent again.
TEST_F(SqliteStore, AReopenedStoreHasItsBatchItsNextIdAndEveryTask) {
    std::uint64_t batch = 0;
    std::vector<StoredTask> tasks;
    StoreCounts counts;
    {
        auto store = open();
        batch = store->batch();
        add(*store, "queued", "kq");
        store->submit(submission("delayed", std::nullopt, 99'000));
        add(*store, "running");
        store->mark_sent(3, 2);
        add(*store, "finished", "kf");
        store->mark_sent(4, 1);
        store->record(4, result(Status::timeout, 500));
        add(*store, "cancelled");
        store->cancel(5, 600);
        add(*store, "expired");
        add(*store, "highest, expired");
        store->record(6, result(Status::ok, 1));
        store->record(7, result(Status::ok, 2));
        store->commit();
        EXPECT_EQ(store->expire(100, 10), 2u);
        store->commit();
        for (std::uint64_t id = 1; id <= 5; ++id) tasks.push_back(*store->find(id));
        counts = store->counts();
        add(*store, "never committed");
    }
    auto store = open();
    EXPECT_EQ(store->batch(), batch);
    for (const auto& task : tasks) EXPECT_EQ(store->find(task.id), task);
    EXPECT_FALSE(store->find(6));
    EXPECT_FALSE(store->find(8));
    EXPECT_EQ(store->counts(), counts);
    EXPECT_EQ(store->find_key("kf")->id, 4u);

    const auto unfinished = store->unfinished();
    ASSERT_EQ(unfinished.size(), 3u);
    EXPECT_EQ(unfinished[0].id, 1u);
    EXPECT_EQ(unfinished[1].id, 2u);
    EXPECT_EQ(unfinished[2].id, 3u);
    EXPECT_EQ(unfinished[2].state, TaskState::running);
    EXPECT_EQ(unfinished[2].attempts, 2u);
    // 7 was the highest id; it expired, and 8 was never committed.
    EXPECT_EQ(add(*store, "next"), 8u);
}

TEST_F(SqliteStore, RefusesAFileThatIsNotAnSqliteDatabase) {
    std::ofstream(path) << "a list of tasks\none per line\n";
    const auto error = open_error(path);
    EXPECT_NE(error.find(path), std::string::npos) << error;
    EXPECT_NE(error.find("not a taskpipe store"), std::string::npos) << error;
    EXPECT_EQ(read_file(path), "a list of tasks\none per line\n");
}

TEST_F(SqliteStore, RefusesAnotherSqliteDatabaseAndLeavesItAlone) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE photos(name TEXT); INSERT INTO photos VALUES ('a')",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
    const auto before = read_file(path);

    const auto error = open_error(path);
    EXPECT_NE(error.find("not a taskpipe store"), std::string::npos) << error;
    EXPECT_EQ(read_file(path), before);
    EXPECT_FALSE(std::filesystem::exists(path + "-wal"));
}

TEST_F(SqliteStore, RefusesAStoreOfAnotherFormatVersion) {
    open();
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=2", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
    const auto error = open_error(path);
    EXPECT_NE(error.find("format version 2"), std::string::npos) << error;
}

TEST_F(SqliteStore, TakesAnEmptyFileAsANewStore) {
    std::ofstream{path};
    auto store = open();
    EXPECT_EQ(add(*store, "x"), 1u);
}

TEST_F(SqliteStore, RefusesASymbolicLink) {
    open();
    const auto link = dir.file("link.db");
    std::filesystem::create_symlink(path, link);
    const auto error = open_error(link);
    EXPECT_NE(error.find("symbolic link"), std::string::npos) << error;
    // A dangling link too: the store is not created at its target.
    const auto dangling = dir.file("dangling.db");
    std::filesystem::create_symlink(dir.file("nowhere.db"), dangling);
    EXPECT_NE(open_error(dangling).find("symbolic link"), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(dir.file("nowhere.db")));
}

TEST_F(SqliteStore, RefusesAMissingDirectory) {
    const auto error = open_error(dir.file("missing/tasks.db"));
    EXPECT_NE(error.find("does not exist"), std::string::npos) << error;
}

TEST_F(SqliteStore, RefusesAStoreInUse) {
    auto store = open();
    const auto error = open_error(path);
    EXPECT_NE(error.find("in use"), std::string::npos) << error;
    add(*store, "still works");
    store->commit();
}

// ---- Memory and the WAL.

// This process's resident set in KiB (VmRSS in /proc/self/status).
std::size_t resident_kib() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6));
    }
    return 0;
}

// Runs `count` tasks through the store the way a busy head does: submitted, sent, recorded
// (1 KiB of stdout), in groups of 500; with `expire`, each expired once 1000 newer ones finished.
void churn(TaskStore& store, std::uint64_t& next, int count, bool expire) {
    StoredResult r = result(Status::ok, 0, std::string(1024, 'o'));
    for (int i = 0; i < count; ++i, ++next) {
        store.submit(submission(std::string(200, 'p'), "key " + std::to_string(next), 0, next));
        store.mark_sent(next, 1);
        r.finished_us = next;
        store.record(next, r);
        if (next % 500 == 0) {
            if (expire) store.expire(next > 1000 ? next - 1000 : 0, 1000);
            store.commit();
        }
    }
    store.commit();
}

// "Keep memory flat in the number of tasks that have passed through": SQLite's page cache is
// bounded and the store keeps no task in memory, however many results it keeps on disk.
TEST_F(SqliteStore, MemoryStaysFlatAsResultsAccumulate) {
#if defined(__SANITIZE_ADDRESS__)
    GTEST_SKIP() << "ASan's shadow memory and quarantine make RSS meaningless";
#endif
    auto store = open();
    std::uint64_t next = 1;
    churn(*store, next, 20'000, false);  // the page cache (8 MiB) fills up
    const auto before = resident_kib();
    churn(*store, next, 60'000, false);  // 70 MiB of tasks and results more
    const auto after = resident_kib();
    EXPECT_LT(after, before + 4 * 1024) << "RSS " << before << " KiB, then " << after << " KiB";
    EXPECT_EQ(store->counts().kept, 80'000u);
    EXPECT_EQ(store->find(1)->result->out.size(), 1024u);
}

// The WAL is copied into the database file by the checkpointer's thread (wal_checkpointer.hpp),
// and it starts again from its beginning instead of growing with every commit, even when the
// writer never pauses (past 32 MiB the writer checkpoints too).
TEST_F(SqliteStore, CheckpointsTheWalInTheBackground) {
    auto store = open();
    std::uint64_t next = 1;
    churn(*store, next, 20'000, true);  // about 30 MiB through the WAL
    ASSERT_TRUE(
        testing::wait_for([&] { return std::filesystem::file_size(path) > 2 * 1024 * 1024; },
                          testing::deadline_in(std::chrono::seconds(20))))
        << "the database file holds " << std::filesystem::file_size(path) << " bytes";
    EXPECT_LT(std::filesystem::file_size(path + "-wal"), 40u * 1024 * 1024);
}

// ---- Read-only files and directories.

// Makes a file or directory read-only for this process, and undoes it when destroyed: chmod for
// an ordinary user; as root, who ignores permission bits, the immutable attribute (chattr +i),
// which root obeys too.
class ReadOnly {
  public:
    // Empty with `why` set when it cannot be done here.
    static std::optional<ReadOnly> make(const std::string& path, std::string& why) {
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) {
            why = "stat " + path + ": " + std::strerror(errno);
            return std::nullopt;
        }
        ReadOnly guard(path, st.st_mode);
        if (::geteuid() != 0) {
            if (::chmod(path.c_str(), S_ISDIR(st.st_mode) ? 0555 : 0444) != 0) {
                why = std::string("chmod: ") + std::strerror(errno);
                return std::nullopt;
            }
        } else if (!set_immutable(path, true)) {
            why = "chattr +i " + path + ": " + std::strerror(errno) +
                  " (root needs CAP_LINUX_IMMUTABLE and a file system that has the attribute)";
            return std::nullopt;
        }
        guard.active_ = true;
        return guard;
    }

    ReadOnly(ReadOnly&& other) noexcept
        : path_(std::move(other.path_)), mode_(other.mode_), active_(other.active_) {
        other.active_ = false;
    }
    ReadOnly& operator=(ReadOnly&&) = delete;
    ~ReadOnly() { undo(); }

    void undo() {
        if (!active_) return;
        active_ = false;
        if (::geteuid() != 0) {
            ::chmod(path_.c_str(), mode_ & 07777);
        } else {
            set_immutable(path_, false);
        }
    }

  private:
    ReadOnly(std::string path, mode_t mode) : path_(std::move(path)), mode_(mode) {}

    static bool set_immutable(const std::string& path, bool on) {
        const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) return false;
        int flags = 0;
        bool ok = ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
        if (ok) {
            flags = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
            ok = ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
        }
        const int saved = errno;
        ::close(fd);
        errno = saved;
        return ok;
    }

    std::string path_;
    mode_t mode_;
    bool active_ = false;
};

// Whether this process can no longer write `file` (the protection is real, not assumed).
bool cannot_write(const std::string& file) {
    const int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd >= 0) ::close(fd);
    return fd < 0;
}

// Whether this process can no longer create a file in `directory`.
bool cannot_create_in(const std::string& directory) {
    const auto probe = directory + "/probe";
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return true;
    ::close(fd);
    ::unlink(probe.c_str());
    return false;
}

TEST_F(SqliteStore, RefusesAReadOnlyFile) {
    {
        auto store = open();
        add(*store, "x");
        store->commit();
    }
    std::string why;
    auto read_only = ReadOnly::make(path, why);
    if (!read_only) GTEST_SKIP() << why;
    if (!cannot_write(path)) GTEST_SKIP() << "the file stays writable for this process";

    const auto error = open_error(path);
    EXPECT_NE(error.find(path), std::string::npos) << error;
    EXPECT_NE(error.find("cannot be written"), std::string::npos) << error;

    read_only->undo();
    EXPECT_EQ(open()->find(1)->payload, "x");
}

TEST_F(SqliteStore, RefusesAStoreInAReadOnlyDirectory) {
    const auto sub = dir.file("ro");
    std::filesystem::create_directory(sub);
    const auto file = sub + "/tasks.db";
    {
        auto store = open_sqlite_store(file);
        add(*store, "x");
        store->commit();
    }
    ASSERT_FALSE(std::filesystem::exists(file + "-wal")) << "a clean close removes the WAL";
    std::string why;
    auto read_only = ReadOnly::make(sub, why);
    if (!read_only) GTEST_SKIP() << why;
    if (!cannot_create_in(sub)) GTEST_SKIP() << "the directory stays writable for this process";
    // The WAL cannot be created: a new store cannot be created either.
    const auto error = open_error(file);
    EXPECT_NE(error.find(file), std::string::npos) << error;
    EXPECT_NE(error.find("not writable"), std::string::npos) << error;
    EXPECT_NE(open_error(sub + "/new.db").find("not writable"), std::string::npos);

    read_only->undo();
    EXPECT_EQ(open_sqlite_store(file)->find(1)->payload, "x");
}

// ---- A store that cannot be written while it runs.

// What a group of the failure tests submits: `count` tasks of `size` bytes.
void submit_group(TaskStore& store, int count, std::size_t size) {
    for (int i = 0; i < count; ++i) store.submit(submission(std::string(size, 'p')));
}

// Commits groups until one fails; returns the error and leaves `committed` the number of tasks
// committed. Fails the test when `max_groups` groups all commit.
std::string fill_until_failure(TaskStore& store, std::uint64_t& committed, int max_groups) {
    for (int group = 0; group < max_groups; ++group) {
        try {
            submit_group(store, 20, 4096);
            store.commit();
            committed += 20;
        } catch (const StoreError& e) {
            return e.what();
        }
    }
    ADD_FAILURE() << "no commit failed in " << max_groups << " groups";
    return "";
}

// The committed tasks are all there, nothing of the failed group is, and the store takes new
// groups once there is room (ids continuing after the committed ones).
void expect_recovered(TaskStore& store, std::uint64_t committed) {
    EXPECT_EQ(store.counts(), (StoreCounts{committed, 0, 0}));
    ASSERT_TRUE(store.find(committed));
    EXPECT_EQ(store.find(committed)->payload, std::string(4096, 'p'));
    EXPECT_FALSE(store.find(committed + 1));
    EXPECT_EQ(store.unfinished().size(), committed);
    const auto next = add(store, "after the failure");
    EXPECT_EQ(next, committed + 1);
    EXPECT_NO_THROW(store.commit());
}

// Limits the size of the files this process writes (RLIMIT_FSIZE) while it lives: past the
// limit the kernel refuses writes with EFBIG, as a full disk refuses them with ENOSPC. SIGXFSZ
// is ignored meanwhile.
class FileSizeLimit {
  public:
    explicit FileSizeLimit(rlim_t bytes) {
        if (::getrlimit(RLIMIT_FSIZE, &original_) != 0) throw std::runtime_error("getrlimit");
        previous_handler_ = std::signal(SIGXFSZ, SIG_IGN);
        struct rlimit limited = original_;
        limited.rlim_cur = bytes;
        if (::setrlimit(RLIMIT_FSIZE, &limited) != 0) throw std::runtime_error("setrlimit");
    }
    FileSizeLimit(const FileSizeLimit&) = delete;
    FileSizeLimit& operator=(const FileSizeLimit&) = delete;
    ~FileSizeLimit() { lift(); }

    void lift() {
        if (lifted_) return;
        lifted_ = true;
        ::setrlimit(RLIMIT_FSIZE, &original_);
        std::signal(SIGXFSZ, previous_handler_);
    }

  private:
    struct rlimit original_ {};
    void (*previous_handler_)(int) = SIG_DFL;
    bool lifted_ = false;
};

// "If commit() throws, everything since the last commit is rolled back (in memory too) ...
// later commits are tried again (the disk may have room again)."
TEST_F(SqliteStore, ACommitPastTheFileSizeLimitFailsWholeAndLaterOnesSucceed) {
    auto store = open();
    FileSizeLimit limit(256 * 1024);

    std::uint64_t committed = 0;
    const auto error = fill_until_failure(*store, committed, 50);
    // Lookups still work while the disk is full.
    const auto find_while_full = store->find(committed);
    const auto counts_while_full = store->counts();

    limit.lift();
    EXPECT_NE(error.find(path), std::string::npos) << error;
    EXPECT_NE(error.find("rolled back"), std::string::npos) << error;
    EXPECT_GT(committed, 0u);
    EXPECT_EQ(counts_while_full, (StoreCounts{committed, 0, 0}));
    ASSERT_TRUE(find_while_full);
    EXPECT_EQ(find_while_full->payload, std::string(4096, 'p'));
    expect_recovered(*store, committed);

    store.reset();
    auto reopened = open();
    EXPECT_EQ(reopened->counts().queued, committed + 1);
    EXPECT_FALSE(reopened->find(committed + 2));
}

// A failed mutation (not only a failed commit) loses the group: the rest of the group is
// refused and commit() reports it.
TEST_F(SqliteStore, AfterAFailedMutationTheGroupIsRefusedUntilCommit) {
    auto store = open();
    add(*store, "committed");
    store->commit();
    FileSizeLimit limit(1024 * 1024);

    // A group larger than the page cache (8 MiB) spills to the WAL before the commit.
    bool failed_early = false;
    for (int i = 0; i < 20000 && !failed_early; ++i) {
        try {
            store->submit(submission(std::string(4096, 'p')));
        } catch (const StoreError&) {
            failed_early = true;
        }
    }
    ASSERT_TRUE(failed_early) << "no mutation failed before the commit";
    EXPECT_EQ(store->counts(), (StoreCounts{1, 0, 0}));
    EXPECT_FALSE(store->find(2));
    EXPECT_THROW(store->submit(submission("refused")), StoreError);
    EXPECT_THROW(store->cancel(1, 100), StoreError);
    EXPECT_EQ(store->find(1)->state, TaskState::queued);
    EXPECT_THROW(store->commit(), StoreError);

    limit.lift();
    EXPECT_EQ(add(*store, "next group"), 2u);
    EXPECT_NO_THROW(store->commit());
}

// Mounts a tmpfs of `size` bytes at a directory, in a mount namespace of this process's own so
// that nothing outside sees it (and the kernel removes it if the test dies). Needs root.
class Tmpfs {
  public:
    static std::optional<Tmpfs> mount(const std::string& at, std::size_t size, std::string& why) {
        if (::geteuid() != 0) {
            why = "mounting a tmpfs needs root";
            return std::nullopt;
        }
        static const bool private_namespace =
            ::unshare(CLONE_NEWNS) == 0 &&
            ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
        if (!private_namespace) {
            why = std::string("no private mount namespace: ") + std::strerror(errno);
            return std::nullopt;
        }
        const auto options = "size=" + std::to_string(size);
        if (::mount("tmpfs", at.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
            why = std::string("mount -t tmpfs: ") + std::strerror(errno);
            return std::nullopt;
        }
        return Tmpfs(at);
    }
    Tmpfs(Tmpfs&& other) noexcept : at_(std::move(other.at_)) { other.at_.clear(); }
    Tmpfs& operator=(Tmpfs&&) = delete;
    ~Tmpfs() {
        if (!at_.empty()) ::umount2(at_.c_str(), MNT_DETACH);
    }

  private:
    explicit Tmpfs(std::string at) : at_(std::move(at)) {}
    std::string at_;
};

// The same with a real full file system: a small tmpfs, mostly taken by a ballast file that is
// deleted to make room.
TEST_F(SqliteStore, ACommitOnAFullDiskFailsWholeAndLaterOnesSucceed) {
    const auto mount_point = dir.file("small");
    std::filesystem::create_directory(mount_point);
    std::string why;
    auto tmpfs = Tmpfs::mount(mount_point, 2 * 1024 * 1024, why);
    if (!tmpfs) GTEST_SKIP() << why;
    const auto file = mount_point + "/tasks.db";
    const auto ballast = mount_point + "/ballast";
    {
        std::ofstream out(ballast, std::ios::binary);
        out << std::string(1536 * 1024, 'b');
        ASSERT_TRUE(out.flush());
    }
    auto store = open_sqlite_store(file);

    std::uint64_t committed = 0;
    const auto error = fill_until_failure(*store, committed, 50);
    EXPECT_NE(error.find("full"), std::string::npos) << error;
    EXPECT_GT(committed, 0u);
    // A mutation of the next group can fail already (SQLite writes pages it cannot cache).
    EXPECT_EQ(store->find(committed)->payload, std::string(4096, 'p'));

    std::filesystem::remove(ballast);
    expect_recovered(*store, committed);
    store.reset();
    EXPECT_EQ(open_sqlite_store(file)->counts().queued, committed + 1);
}

// Made read-only while it runs: the WAL file made immutable (root; chattr +i).
TEST_F(SqliteStore, ACommitToAFileMadeReadOnlyFailsAndSucceedsOnceWritableAgain) {
    if (::geteuid() != 0) GTEST_SKIP() << "chmod does not affect a file already open";
    auto store = open();
    add(*store, "committed");
    store->commit();
    std::string why;
    auto read_only = ReadOnly::make(path + "-wal", why);
    if (!read_only) GTEST_SKIP() << why;

    add(*store, "lost");
    try {
        store->commit();
        ADD_FAILURE() << "the commit succeeded";
    } catch (const StoreError& e) {
        EXPECT_NE(std::string(e.what()).find("disk I/O error while writing"), std::string::npos)
            << e.what();
    }
    EXPECT_EQ(store->find(1)->payload, "committed");
    EXPECT_FALSE(store->find(2));
    EXPECT_EQ(store->counts(), (StoreCounts{1, 0, 0}));

    read_only->undo();
    EXPECT_EQ(add(*store, "after"), 2u);
    EXPECT_NO_THROW(store->commit());
    store.reset();
    EXPECT_EQ(open()->find(2)->payload, "after");
}

// ---- A process killed mid-way.

// "a kill -9 of the ventilator loses nothing it accepted": a child commits, then dies during
// the next group; the parent finds exactly the committed tasks.
TEST_F(SqliteStore, AProcessThatExitsMidGroupLeavesExactlyTheCommittedTasks) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        try {
            auto store = open();
            for (int i = 1; i <= 100; ++i) store->submit(submission("task " + std::to_string(i)));
            store->commit();
            for (int i = 101; i <= 150; ++i) store->submit(submission("task " + std::to_string(i)));
            store->mark_sent(1, 1);
            store->record(2, result(Status::ok, 100));
        } catch (...) {
            ::_exit(10);
        }
        ::_exit(0);  // no destructor, no commit: as a crash
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

    auto store = open();
    EXPECT_EQ(store->counts(), (StoreCounts{100, 0, 0}));
    EXPECT_EQ(store->find(100)->payload, "task 100");
    EXPECT_FALSE(store->find(101));
    EXPECT_EQ(store->find(2)->state, TaskState::queued);
    EXPECT_EQ(add(*store, "next"), 101u);
}

TEST_F(SqliteStore, AProcessKilledWhileCommittingLeavesWholeGroupsOnly) {
    constexpr int kGroup = 50;
    int pipe_fds[2];
    ASSERT_EQ(::pipe(pipe_fds), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::close(pipe_fds[0]);
        try {
            auto store = open();
            for (std::uint64_t id = 1;; ++id) {
                store->submit(submission("task " + std::to_string(id)));
                if (id % kGroup == 0) {
                    store->commit();
                    if (::write(pipe_fds[1], &id, sizeof id) != sizeof id) ::_exit(11);
                }
            }
        } catch (...) {
            ::_exit(10);
        }
    }
    ::close(pipe_fds[1]);
    // Kill it after it reported 20 commits: it is in the middle of a group or of a commit.
    std::uint64_t reported = 0;
    for (int commits = 0; commits < 20; ++commits) {
        ASSERT_EQ(::read(pipe_fds[0], &reported, sizeof reported),
                  static_cast<ssize_t>(sizeof reported));
    }
    ::kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ::close(pipe_fds[0]);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;

    auto store = open();
    const auto kept = store->counts().queued;
    EXPECT_GE(kept, reported);
    EXPECT_EQ(kept % kGroup, 0u) << "a group half there";
    for (std::uint64_t id = 1; id <= kept; ++id) {
        ASSERT_EQ(store->find(id)->payload, "task " + std::to_string(id));
    }
    EXPECT_FALSE(store->find(kept + 1));
}

}  // namespace
}  // namespace taskpipe
