// --results DIR: each task's output stored as files, DIR/<id>/{input,stdout,stderr,result.json}.
//
// result.json holds the task's --jsonl object without the bulky fields (stdout, stderr, input),
// which are the files beside it. A task written again (a resumed batch) replaces its files.
//
// Nothing is written outside DIR (docs/security.md): DIR is opened once, without following a
// symbolic link, and everything below it is reached from that descriptor (mkdirat, openat). A
// DIR/<id> that is a symbolic link, belongs to another user or is writable by others is refused,
// and each file is removed and created afresh (O_EXCL), so a planted link is replaced, never
// followed. Quiet in the destructor; write() throws std::system_error when a file cannot be
// written. Not thread-safe; neither copyable nor movable.
#pragma once

#include <filesystem>

#include "taskpipe/message.hpp"

namespace taskpipe {

class ResultsDirectory {
  public:
    // Creates `root` (and its parents) when missing and opens it; throws StartupError when it
    // cannot, or when `root` is a symbolic link.
    explicit ResultsDirectory(std::filesystem::path root);
    ~ResultsDirectory();
    ResultsDirectory(const ResultsDirectory&) = delete;
    ResultsDirectory& operator=(const ResultsDirectory&) = delete;

    void write(const Result& result);

  private:
    std::filesystem::path root_;
    int root_fd_ = -1;
};

}  // namespace taskpipe
