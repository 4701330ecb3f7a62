// How the sink writes results to stdout.
//
// Raw: each task's stdout bytes, whole, one task after another (GNU parallel's grouping); with
// tagging, each line of it prefixed with the task's input and a tab (parallel --tag). JSON
// lines: one object per result (see README.md for the fields).
// Output is buffered and written with write(2) when flush() is called or the buffer is large,
// so that a burst of results costs one system call, not one per task.
#pragma once

#include <memory>
#include <string>

#include "taskpipe/message.hpp"

namespace taskpipe {

class ResultWriter {
  public:
    virtual ~ResultWriter() = default;
    // Appends one result (a Result with status lost for a task that never produced one).
    virtual void write(const Result& result) = 0;
    // Writes out everything buffered. Throws std::system_error when stdout fails (EPIPE...).
    void flush();

    enum class Format { raw, tagged, jsonl };
    static std::unique_ptr<ResultWriter> make(Format format, int fd);

  protected:
    explicit ResultWriter(int fd) : fd_(fd) {}
    void append(std::string_view bytes);

  private:
    int fd_;
    std::string buffer_;
};

// The JSON line for one result, without the newline. Without the bytes, the line leaves out
// the task's stdout, stderr and input (for --results, which stores them as files beside it).
enum class JsonBytes { included, left_out };
std::string result_to_json(const Result& result, JsonBytes bytes = JsonBytes::included);

}  // namespace taskpipe
