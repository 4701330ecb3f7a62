// The sink's joblog (--joblog FILE): one tab-separated line per finished task, after GNU
// parallel's --joblog, that `ventilator --resume` reads to skip what an earlier run finished.
//
// The file is opened for appending, so that several runs can share it; the header line is
// written only when the file is new or empty. Lines are buffered and written with write(2) in
// flush(): once flush() returns they are in the kernel and survive the death of any process
// (not a power cut: nothing is fsync'ed). Room for every buffered line is reserved on disk
// (fallocate) when the line is appended, so that a full disk is found before the sink writes
// the output the line records, never between the two: output and joblog stay consistent. Quiet
// in the destructor, loud in append() and flush(). Not thread-safe; not copyable.
#pragma once

#include <string>

#include "taskpipe/message.hpp"

namespace taskpipe {

class Joblog {
  public:
    // Opens (creates) `path`; throws StartupError when it cannot, or cannot write the header.
    explicit Joblog(const std::string& path);
    ~Joblog();
    Joblog(const Joblog&) = delete;
    Joblog& operator=(const Joblog&) = delete;

    // Buffers the line for a task's final outcome (its first result, or a lost record), having
    // reserved room for it on disk. Throws std::system_error when there is no room (ENOSPC,
    // EFBIG): then nothing is buffered, and the task's output must not be written either.
    void append(const Result& result);

    // Writes out everything buffered. Throws std::system_error when the write fails.
    void flush();

    // The line for one result, with its newline (columns in joblog::kColumns).
    static std::string joblog_line(const Result& result);

  private:
    // Makes sure the file has room for `bytes` more past what is written and buffered.
    void reserve(std::size_t bytes);

    std::string path_;
    int fd_ = -1;
    std::string buffer_;
    off_t written_ = 0;        // the file's size: what flush() has written
    off_t reserved_ = 0;       // allocated up to here (fallocate, KEEP_SIZE)
    bool can_reserve_ = true;  // false where the file system has no fallocate
};

}  // namespace taskpipe
