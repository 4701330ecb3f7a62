// Checkpoints an SQLite database's write-ahead log from a thread and a connection of its own,
// so that the writer's commits do not wait while pages are copied into the database file and
// it is fsync'ed (with SQLite's automatic checkpoints, one commit in a few hundred paid that,
// several milliseconds).
//
// The writer turns its automatic checkpoints off (PRAGMA wal_autocheckpoint=0) and calls
// wal_grew() after each commit (from sqlite3_wal_hook). PASSIVE checkpoints never block the
// writer; once one has copied the whole log, the writer's next transaction starts the log again
// from its beginning, so the WAL file stays near `threshold_frames` pages. A checkpoint that
// fails (disk full) is tried again at the next request: the log only grows meanwhile, and what
// it holds is safe.
//
// Lifetime: the destructor stops and joins the thread and closes the connection, quietly; it
// must run before the writer's connection is closed. Thread-safety: wal_grew() may be called
// from any thread; the rest belongs to the owner.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>

#include "sqlite.hpp"

namespace taskpipe {

class WalCheckpointer {
  public:
    // Opens a second connection to the database at `path` (in WAL mode already) and starts the
    // thread. Throws sqlite::Error.
    WalCheckpointer(const std::string& path, int threshold_frames);
    ~WalCheckpointer();
    WalCheckpointer(const WalCheckpointer&) = delete;
    WalCheckpointer& operator=(const WalCheckpointer&) = delete;

    // The log holds `frames` pages: wakes the thread when that reaches the threshold.
    void wal_grew(int frames);
    // Checkpoints on the writer's connection `writer`, in the calling thread, once the thread's
    // checkpoint in progress (if any) is over: the whole log is then copied, and the writer's
    // next transaction starts it again from its beginning. Background checkpoints chasing a
    // writer that never pauses may never achieve that. Returns SQLite's result code.
    int checkpoint_in_writer(sqlite3* writer);

    // Checkpoints completed and failed so far.
    std::size_t completed() const;
    std::size_t failed() const;

  private:
    void run();

    sqlite::Database db_;
    const int threshold_frames_;
    std::mutex checkpoint_mutex_;  // held during each checkpoint: one at a time
    mutable std::mutex mutex_;     // guards what follows
    std::condition_variable wake_;
    bool requested_ = false;
    bool stopping_ = false;
    std::size_t completed_ = 0;
    std::size_t failed_ = 0;
    std::thread thread_;  // last: started once everything above is ready
};

}  // namespace taskpipe
