// --results DIR: each task's output stored as files, DIR/<id>/{input,stdout,stderr,result.json}.
//
// result.json holds the task's --jsonl object without the bulky fields (stdout, stderr, input),
// which are the files beside it. A task written again (a resumed batch) replaces its files.
// Quiet in the destructor; write() throws std::system_error when a file cannot be written.
// Not thread-safe.
#pragma once

#include <filesystem>

#include "taskpipe/message.hpp"

namespace taskpipe {

class ResultsDirectory {
  public:
    // Creates `root` (and its parents) when missing; throws StartupError when it cannot.
    explicit ResultsDirectory(std::filesystem::path root);

    void write(const Result& result);

  private:
    std::filesystem::path root_;
};

}  // namespace taskpipe
