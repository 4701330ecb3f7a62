#include "output_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace taskpipe {

namespace {

[[noreturn]] void fail(int error, const std::string& shown) {
    if (error == ELOOP) {
        throw std::system_error(error, std::generic_category(),
                                shown + " is a symbolic link, which the sink does not follow");
    }
    if (error == ENXIO) {  // a FIFO with no reader, opened without blocking (or a device)
        throw std::system_error(error, std::generic_category(), shown + " is not a regular file");
    }
    throw std::system_error(error, std::generic_category(), "cannot open " + shown);
}

// Checks that `fd` is a regular file; closes it and throws otherwise.
void require_regular(int fd, const std::string& shown) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int error = errno;
        ::close(fd);
        fail(error, shown);
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw std::system_error(EINVAL, std::generic_category(), shown + " is not a regular file");
    }
}

}  // namespace

OutputFile open_output_file(int dir_fd, const std::string& name, const std::string& shown,
                            int flags) {
    const int access = (flags & O_RDWR) != 0 ? O_RDWR : O_WRONLY;
    const int common = access | (flags & O_APPEND) | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY;
    int fd = ::openat(dir_fd, name.c_str(), common | O_CREAT | O_EXCL, 0644);
    if (fd >= 0) return {fd, true};
    if (errno != EEXIST) fail(errno, shown);
    fd = ::openat(dir_fd, name.c_str(), common | O_NONBLOCK);
    if (fd < 0) fail(errno, shown);
    require_regular(fd, shown);
    // Back to blocking writes (O_NONBLOCK means nothing for a regular file, but be plain).
    (void)::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return {fd, false};
}

int create_fresh_file(int dir_fd, const std::string& name, const std::string& shown) {
    if (::unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
        throw std::system_error(errno, std::generic_category(), "cannot replace " + shown);
    }
    const int fd = ::openat(dir_fd, name.c_str(),
                            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0644);
    // EEXIST: something was planted again between the unlink and the creation.
    if (fd < 0) fail(errno, shown);
    return fd;
}

void write_or_throw(int fd, std::string_view bytes, const std::string& shown) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::system_error(errno, std::generic_category(), "cannot write " + shown);
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

}  // namespace taskpipe
