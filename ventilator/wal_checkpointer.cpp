#include "wal_checkpointer.hpp"

namespace taskpipe {

WalCheckpointer::WalCheckpointer(const std::string& path, int threshold_frames)
    // NOMUTEX: after the constructor, only the thread uses the connection, until it is joined.
    : db_(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX),
      threshold_frames_(threshold_frames) {
    // The database file must be on disk before the log starts again over what it copied.
    db_.exec("PRAGMA synchronous=FULL");
    thread_ = std::thread([this] { run(); });
}

WalCheckpointer::~WalCheckpointer() {
    {
        const std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
}

void WalCheckpointer::wal_grew(int frames) {
    if (frames < threshold_frames_) return;
    {
        const std::lock_guard lock(mutex_);
        requested_ = true;
    }
    wake_.notify_one();
}

int WalCheckpointer::checkpoint_in_writer(sqlite3* writer) {
    const std::lock_guard checkpoint(checkpoint_mutex_);
    return sqlite3_wal_checkpoint_v2(writer, "main", SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
}

std::size_t WalCheckpointer::completed() const {
    const std::lock_guard lock(mutex_);
    return completed_;
}

std::size_t WalCheckpointer::failed() const {
    const std::lock_guard lock(mutex_);
    return failed_;
}

void WalCheckpointer::run() {
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return requested_ || stopping_; });
        if (stopping_) return;
        requested_ = false;
        lock.unlock();
        int rc = SQLITE_OK;
        {
            const std::lock_guard checkpoint(checkpoint_mutex_);
            rc = sqlite3_wal_checkpoint_v2(db_.get(), "main", SQLITE_CHECKPOINT_PASSIVE, nullptr,
                                           nullptr);
        }
        lock.lock();
        ++(rc == SQLITE_OK ? completed_ : failed_);
    }
}

}  // namespace taskpipe
