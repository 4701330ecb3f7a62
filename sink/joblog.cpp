#include "joblog.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <system_error>

#include "output_file.hpp"
#include "stats.hpp"
#include "taskpipe/joblog_format.hpp"
#include "taskpipe/log.hpp"
#include "taskpipe/sockets.hpp"

namespace taskpipe {

namespace {

// Seconds with 3 decimals, from microseconds.
std::string seconds(std::uint64_t micros) {
    char text[32];
    std::snprintf(text, sizeof text, "%llu.%03llu",
                  static_cast<unsigned long long>(micros / 1'000'000),
                  static_cast<unsigned long long>(micros % 1'000'000 / 1000));
    return text;
}

// Writes all of `bytes`; returns errno on failure, 0 on success.
int write_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return 0;
}

// The size of the file without a last line cut short (no newline: a crash mid-write), or -1
// with errno set.
off_t complete_size(int fd, off_t size) {
    constexpr off_t kChunk = 4096;
    char chunk[kChunk];
    for (off_t end = size; end > 0;) {
        const off_t start = end > kChunk ? end - kChunk : 0;
        const ssize_t n = ::pread(fd, chunk, static_cast<std::size_t>(end - start), start);
        if (n < 0 && errno == EINTR) continue;
        if (n != end - start) return -1;
        for (ssize_t i = n; i > 0; --i) {
            if (chunk[i - 1] == '\n') return start + i;
        }
        end = start;
    }
    return 0;
}

// Whether the file starts as a joblog: with the header line (LF or CRLF), or, when it is shorter
// than that, with a part of it (a first write cut short).
bool starts_as_joblog(int fd, off_t size) {
    const std::string header = joblog::header();
    std::string start(std::min<std::size_t>(header.size() + 1, static_cast<std::size_t>(size)),
                      '\0');
    std::size_t done = 0;
    while (done < start.size()) {
        const ssize_t n =
            ::pread(fd, start.data() + done, start.size() - done, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += static_cast<std::size_t>(n);
    }
    const std::string_view line(header.data(), header.size() - 1);  // without its newline
    if (start.size() <= line.size()) return line.starts_with(start);
    return start.starts_with(line) &&
           (start[line.size()] == '\n' || start.substr(line.size()) == "\r" ||
            start.substr(line.size()) == "\r\n");
}

}  // namespace

Joblog::Joblog(const std::string& path) : path_(path) {
    OutputFile file;
    try {
        file = open_output_file(AT_FDCWD, path, "the joblog " + path, O_RDWR | O_APPEND);
    } catch (const std::system_error& e) {
        throw StartupError(e.what());
    }
    fd_ = file.fd;
    struct stat st {};
    int error = ::fstat(fd_, &st) == 0 ? 0 : errno;
    // Appending to a file that is not a joblog would damage it (its last line would be cut as a
    // line cut short, below), and --resume could not read it anyway.
    if (error == 0 && st.st_size > 0 && !starts_as_joblog(fd_, st.st_size)) {
        ::close(fd_);
        throw StartupError("the joblog " + path +
                           " exists and is not a joblog (its first line is not the header: id, "
                           "worker, start, ...); not writing to it");
    }
    // A last line cut short is ignored by --resume (its task runs again); appending after it
    // would glue this run's first line to it. It is removed.
    if (error == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        errno = 0;
        const off_t complete = complete_size(fd_, st.st_size);
        if (complete < 0 || (complete < st.st_size && ::ftruncate(fd_, complete) != 0)) {
            error = errno != 0 ? errno : EIO;
        } else if (complete < st.st_size) {
            log_warning("the joblog " + path + " ended with a line cut short (" +
                        std::to_string(st.st_size - complete) +
                        " bytes without a newline, as --resume ignores it); it is removed");
            st.st_size = complete;
        }
    }
    written_ = st.st_size;
    if (error == 0 && st.st_size == 0) {
        const std::string header = joblog::header();
        error = write_all(fd_, header);
        written_ = static_cast<off_t>(header.size());
    }
    if (error != 0) {
        ::close(fd_);
        throw StartupError("cannot write the joblog " + path + ": " + std::strerror(error));
    }
    reserved_ = written_;
}

Joblog::~Joblog() {
    if (fd_ < 0) return;
    // Gives back the room reserved and not used (blocks past the end of the file).
    if (reserved_ > written_) (void)::ftruncate(fd_, written_);
    ::close(fd_);
}

void Joblog::reserve(std::size_t bytes) {
    const off_t needed = written_ + static_cast<off_t>(buffer_.size() + bytes);
    if (!can_reserve_ || needed <= reserved_) return;
    // In steps of at least 64 KiB, so that a busy joblog costs one fallocate per few hundred
    // lines, not one per line.
    const off_t step = std::max<off_t>(needed - reserved_, 64 * 1024);
    if (::fallocate(fd_, FALLOC_FL_KEEP_SIZE, reserved_, step) == 0) {
        reserved_ += step;
        return;
    }
    const int error = errno;
    if (error == EOPNOTSUPP || error == ENOSYS) {
        can_reserve_ = false;  // written as before: a full disk may cut the joblog short
        log_debug("the joblog's file system cannot reserve room (fallocate): " +
                  std::string(std::strerror(error)));
        return;
    }
    // The last step may be too large for what is left: try exactly what is needed.
    if (step > needed - reserved_ &&
        ::fallocate(fd_, FALLOC_FL_KEEP_SIZE, reserved_, needed - reserved_) == 0) {
        reserved_ = needed;
        return;
    }
    throw std::system_error(error, std::generic_category(), "cannot write the joblog " + path_);
}

void Joblog::append(const Result& result) {
    std::string line = joblog_line(result);
    reserve(line.size());
    buffer_ += line;
}

void Joblog::flush() {
    if (buffer_.empty()) return;
    const int error = write_all(fd_, buffer_);
    written_ += static_cast<off_t>(buffer_.size());
    buffer_.clear();
    if (error != 0) {
        throw std::system_error(error, std::generic_category(), "cannot write the joblog " + path_);
    }
}

std::string Joblog::joblog_line(const Result& r) {
    std::string line = std::to_string(r.id);
    auto field = [&line](std::string_view text) {
        line += '\t';
        line += text;
    };
    field(r.host.empty() ? "-" : worker_name(r.host, r.pid));
    field(r.started_us == 0 ? "-" : seconds(r.started_us));
    field(seconds(r.duration_us));
    field(to_string(r.status));
    field(r.exit_code ? std::to_string(*r.exit_code) : "-");
    field(r.signal ? std::to_string(*r.signal) : "-");
    field(std::to_string(r.attempt));
    field(r.input ? joblog::escape(*r.input) : "");
    line += '\n';
    return line;
}

}  // namespace taskpipe
