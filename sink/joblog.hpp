// The sink's joblog (--joblog FILE): one tab-separated line per finished task, after GNU
// parallel's --joblog, that `ventilator --resume` reads to skip what an earlier run finished.
//
// The file is opened for appending, so that several runs can share it; the header line is
// written only when the file is new or empty. Lines are buffered and written with write(2) in
// flush(): once flush() returns they are in the kernel and survive the death of any process
// (not a power cut: nothing is fsync'ed). Quiet in the destructor, loud in flush(). Not
// thread-safe; move-only.
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

    // Buffers the line for a task's final outcome (its first result, or a lost record).
    void append(const Result& result) { buffer_ += joblog_line(result); }

    // Writes out everything buffered. Throws std::system_error when the write fails.
    void flush();

    // The line for one result, with its newline (columns in joblog::kColumns).
    static std::string joblog_line(const Result& result);

  private:
    std::string path_;
    int fd_ = -1;
    std::string buffer_;
};

}  // namespace taskpipe
