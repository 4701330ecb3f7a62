#include "taskpipe/input.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace taskpipe {

InputReader::InputReader(int fd, std::optional<char> delimiter, std::size_t max_record)
    : fd_(fd), owns_fd_(fd != STDIN_FILENO), delimiter_(delimiter), max_record_(max_record) {
    original_flags_ = fcntl(fd_, F_GETFL);
    if (original_flags_ >= 0) fcntl(fd_, F_SETFL, original_flags_ | O_NONBLOCK);
}

InputReader::InputReader(InputReader&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      owns_fd_(std::exchange(other.owns_fd_, false)),
      delimiter_(other.delimiter_),
      max_record_(other.max_record_),
      buffer_(std::move(other.buffer_)),
      start_(other.start_),
      scan_(other.scan_),
      eof_(other.eof_),
      whole_taken_(other.whole_taken_),
      original_flags_(std::exchange(other.original_flags_, -1)) {}

InputReader::~InputReader() {
    if (fd_ < 0) return;
    if (owns_fd_)
        ::close(fd_);
    else if (original_flags_ >= 0)
        fcntl(fd_, F_SETFL, original_flags_);  // stdin is shared
}

std::optional<std::uint64_t> InputReader::count_remaining() const {
    struct stat info {};
    if (fstat(fd_, &info) != 0 || !S_ISREG(info.st_mode)) return std::nullopt;
    if (!delimiter_) return whole_taken_ ? 0 : 1;
    off_t offset = lseek(fd_, 0, SEEK_CUR);
    if (offset < 0) return std::nullopt;
    offset -= static_cast<off_t>(buffer_.size() - start_);  // read ahead but not yet returned
    std::string chunk(1 << 20, '\0');
    std::uint64_t records = 0;
    const char delimiter = *delimiter_;
    char last = delimiter;
    for (;;) {
        const ssize_t n = pread(fd_, chunk.data(), chunk.size(), offset);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::nullopt;
        if (n == 0) break;
        const auto end = chunk.begin() + n;
        records += static_cast<std::uint64_t>(std::count(chunk.begin(), end, delimiter));
        last = chunk[static_cast<std::size_t>(n) - 1];
        offset += n;
    }
    return records + (last != delimiter ? 1 : 0);  // a last record without its delimiter
}

InputReader InputReader::open(const std::string& path, std::optional<char> delimiter,
                              std::size_t max_record) {
    if (path == "-") return InputReader(STDIN_FILENO, delimiter, max_record);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
    return InputReader(fd, delimiter, max_record);
}

std::optional<std::string> InputReader::next() {
    const std::size_t available = buffer_.size() - start_;
    if (!delimiter_) {
        if (!eof_ || whole_taken_) return std::nullopt;
        whole_taken_ = true;
        std::string whole = buffer_.substr(start_);
        start_ = buffer_.size();
        return whole;
    }
    if (available == 0) return std::nullopt;
    const void* found =
        std::memchr(buffer_.data() + start_ + scan_, *delimiter_, available - scan_);
    if (found == nullptr) {
        scan_ = available;
        if (!eof_) return std::nullopt;
        if (available > max_record_) {
            throw std::runtime_error("an input record is longer than " +
                                     std::to_string(max_record_) + " bytes");
        }
        std::string last = buffer_.substr(start_);  // final record without a delimiter
        start_ = buffer_.size();
        scan_ = 0;
        return last;
    }
    const auto end = static_cast<std::size_t>(static_cast<const char*>(found) - buffer_.data());
    if (end - start_ > max_record_) {
        throw std::runtime_error("an input record is longer than " + std::to_string(max_record_) +
                                 " bytes");
    }
    std::string record = buffer_.substr(start_, end - start_);
    start_ = end + 1;
    scan_ = 0;
    return record;
}

InputReader::Fill InputReader::fill() {
    if (eof_) return Fill::end;
    if (start_ > 0 && start_ * 2 >= buffer_.size()) {
        buffer_.erase(0, start_);
        start_ = 0;
    }
    if (buffer_.size() - start_ > max_record_) {
        throw std::runtime_error("an input record is longer than " + std::to_string(max_record_) +
                                 " bytes");
    }
    constexpr std::size_t kChunk = 64 * 1024;
    const std::size_t old_size = buffer_.size();
    buffer_.resize(old_size + kChunk);
    const ssize_t n = ::read(fd_, buffer_.data() + old_size, kChunk);
    if (n > 0) {
        buffer_.resize(old_size + static_cast<std::size_t>(n));
        return Fill::data;
    }
    buffer_.resize(old_size);
    if (n == 0) {
        eof_ = true;
        return Fill::end;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return Fill::would_block;
    throw std::runtime_error(std::string("cannot read input: ") + std::strerror(errno));
}

}  // namespace taskpipe
