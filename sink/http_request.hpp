// Reads the head of an HTTP/1.x request (RFC 9112) from bytes a client sends, for the --metrics
// server: the request line and the header lines up to the empty line that ends them. Only the
// method and the target are kept; header values and any body are ignored (every response closes
// the connection).
//
// The bytes come from anyone who can reach the port, so the head is bounded (kMaxHeadBytes,
// kMaxHeaderLines) and anything malformed ends in a status to answer with, never in an
// exception. Sans-I/O: the server feeds what it reads, in pieces of any size; the whole work is
// linear in the bytes fed. Not thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace taskpipe {

class HttpRequestReader {
  public:
    static constexpr std::size_t kMaxHeadBytes = 8192;
    static constexpr std::size_t kMaxHeaderLines = 64;

    enum class State {
        incomplete,  // feed more bytes
        complete,    // method() and target() are set; bytes after the head are ignored
        bad,         // answer error_status() and close
    };

    // Takes the next bytes the client sent. Once the state is complete or bad, it stays so and
    // further bytes are ignored.
    State feed(std::string_view bytes);

    State state() const { return state_; }
    const std::string& method() const { return method_; }
    // The request target as sent ("/metrics", "/metrics?x=1").
    const std::string& target() const { return target_; }
    // For a bad request: 400 (malformed), 431 (head too large) or 505 (not HTTP/1.x).
    int error_status() const { return error_status_; }

  private:
    State fail(int status);
    // Looks at one line (without its line end); returns the new state.
    State take_line(std::string_view line);
    State take_request_line(std::string_view line);

    State state_ = State::incomplete;
    std::string head_;            // bytes fed so far, at most kMaxHeadBytes
    std::size_t line_start_ = 0;  // where the line being read starts in head_
    std::size_t lines_ = 0;       // header lines taken, the request line included
    bool have_request_line_ = false;
    std::string method_;
    std::string target_;
    int error_status_ = 0;
};

}  // namespace taskpipe
