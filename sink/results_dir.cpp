#include "results_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>

#include "output.hpp"
#include "output_file.hpp"
#include "taskpipe/sockets.hpp"

namespace taskpipe {

namespace {

constexpr const char* kIsALink = " is a symbolic link, which the sink does not follow";

// Opens the directory `name` in `dir_fd` without following a symbolic link. Throws
// std::system_error: ELOOP for a link, with a message that says so.
int open_directory(int dir_fd, const std::string& name, const std::string& shown) {
    const int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) return fd;
    const int error = errno;
    struct stat st {};
    if ((error == ELOOP || error == ENOTDIR) &&
        ::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
        throw std::system_error(ELOOP, std::generic_category(), shown + kIsALink);
    }
    throw std::system_error(error, std::generic_category(), "cannot open " + shown);
}

// Opens the directory `name` in `dir_fd` as open_directory() does, and checks that it is this
// user's and that others cannot write to it: nothing can then be planted inside it.
int open_own_directory(int dir_fd, const std::string& name, const std::string& shown) {
    const int fd = open_directory(dir_fd, name, shown);
    struct stat st {};
    std::string wrong;
    if (::fstat(fd, &st) != 0) {
        wrong = std::string("cannot stat it: ") + std::strerror(errno);
    } else if (st.st_uid != ::geteuid()) {
        wrong = "it belongs to another user (uid " + std::to_string(st.st_uid) + ")";
    } else if ((st.st_mode & S_IWOTH) != 0) {
        wrong = "others may write to it";
    }
    if (!wrong.empty()) {
        ::close(fd);
        throw std::system_error(EPERM, std::generic_category(),
                                "not writing into " + shown + ": " + wrong);
    }
    return fd;
}

void write_file(int dir_fd, const std::string& name, const std::string& shown,
                std::string_view bytes) {
    const int fd = create_fresh_file(dir_fd, name, shown);
    try {
        write_or_throw(fd, bytes, shown);
    } catch (...) {
        ::close(fd);
        throw;
    }
    if (::close(fd) != 0) {
        throw std::system_error(errno, std::generic_category(), "cannot write " + shown);
    }
}

}  // namespace

ResultsDirectory::ResultsDirectory(std::filesystem::path root) : root_(std::move(root)) {
    std::error_code error;
    std::filesystem::create_directories(root_, error);
    if (error) {
        throw StartupError("--results " + root_.string() +
                           ": cannot create the directory: " + error.message());
    }
    try {
        root_fd_ = open_directory(AT_FDCWD, root_.string(), root_.string());
    } catch (const std::system_error& e) {
        throw StartupError("--results: " + std::string(e.what()) +
                           (e.code().value() == ELOOP ? "; give the directory itself" : ""));
    }
}

ResultsDirectory::~ResultsDirectory() {
    if (root_fd_ >= 0) ::close(root_fd_);
}

void ResultsDirectory::write(const Result& result) {
    const std::string id = std::to_string(result.id);
    const std::string shown = (root_ / id).string();
    if (::mkdirat(root_fd_, id.c_str(), 0755) != 0 && errno != EEXIST) {
        throw std::system_error(errno, std::generic_category(), "cannot create " + shown);
    }
    const int dir = open_own_directory(root_fd_, id, shown);
    try {
        write_file(dir, "input", shown + "/input", result.input.value_or(""));
        write_file(dir, "stdout", shown + "/stdout", result.out);
        write_file(dir, "stderr", shown + "/stderr", result.err);
        write_file(dir, "result.json", shown + "/result.json",
                   result_to_json(result, JsonBytes::left_out) + "\n");
    } catch (...) {
        ::close(dir);
        throw;
    }
    ::close(dir);
}

}  // namespace taskpipe
