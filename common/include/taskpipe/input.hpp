// Splits a byte stream (stdin or a file) into task payloads without blocking the event loop.
//
// Records end with a delimiter ('\n', or '\0' for -0); a last record without a delimiter
// still counts, and an empty record is a task like any other. Without a delimiter the whole
// stream is one record (submit --whole), empty or not. Bytes are passed through as they are: no
// trimming, no decoding. The reader owns its file descriptor unless it is stdin.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace taskpipe {

class InputReader {
  public:
    // Reads from `fd`, which the reader sets non-blocking. A record longer than `max_record`
    // bytes is an input error.
    // `delimiter` nullopt: the whole stream is one record.
    InputReader(int fd, std::optional<char> delimiter, std::size_t max_record);
    ~InputReader();
    InputReader(const InputReader&) = delete;
    InputReader& operator=(const InputReader&) = delete;

    // Opens `path` ("-" for stdin).
    static InputReader open(const std::string& path, std::optional<char> delimiter,
                            std::size_t max_record);
    InputReader(InputReader&& other) noexcept;

    int fd() const { return fd_; }

    // The next complete record already buffered, if any. Throws std::runtime_error when that
    // record is longer than the limit.
    std::optional<std::string> next();

    enum class Fill { data, would_block, end };
    // Reads what is available now. Throws std::runtime_error on a read error or an over-long
    // record.
    Fill fill();

    // How many records the input holds from where it stands now, when it is a regular file
    // (counted once, without keeping them); nothing for a pipe or a terminal. A file that
    // changes while it is read makes this an estimate.
    std::optional<std::uint64_t> count_remaining() const;

    // True once the input has ended and every buffered record has been returned.
    bool exhausted() const {
        return eof_ && (delimiter_ ? start_ >= buffer_.size() : whole_taken_);
    }

  private:
    int fd_;
    bool owns_fd_;
    std::optional<char> delimiter_;
    std::size_t max_record_;
    std::string buffer_;
    std::size_t start_ = 0;  // first byte of buffer_ not yet returned
    std::size_t scan_ = 0;   // bytes from start_ already searched for a delimiter
    bool eof_ = false;
    bool whole_taken_ = false;  // no delimiter: the one record has been returned
    int original_flags_ = -1;   // restored on a shared descriptor (stdin) at destruction
};

}  // namespace taskpipe
