// Counts messages dropped as malformed and logs them without flooding stderr: the first ten
// one by one, then a single line saying that further ones are only counted. The count goes into
// each program's end summary. Not thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

namespace taskpipe {

class MalformedLog {
  public:
    // `what` names the messages in the line that ends the one-by-one logging.
    explicit MalformedLog(std::string_view what = "malformed messages") : what_(what) {}

    // Counts one dropped message; `what` is the whole warning line, e.g. "dropped a malformed
    // task message: truncated msgpack".
    void count(std::string_view what);
    std::uint64_t total() const { return total_; }

  private:
    std::string_view what_;  // a literal
    std::uint64_t total_ = 0;
};

}  // namespace taskpipe
