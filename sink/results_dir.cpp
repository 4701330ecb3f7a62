#include "results_dir.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>
#include <system_error>

#include "output.hpp"
#include "taskpipe/sockets.hpp"

namespace taskpipe {

namespace {

void write_file(const std::filesystem::path& path, std::string_view bytes) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        throw std::system_error(errno, std::generic_category(), "cannot create " + path.string());
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            const int error = errno;
            ::close(fd);
            throw std::system_error(error, std::generic_category(),
                                    "cannot write " + path.string());
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    if (::close(fd) != 0) {
        throw std::system_error(errno, std::generic_category(), "cannot write " + path.string());
    }
}

}  // namespace

ResultsDirectory::ResultsDirectory(std::filesystem::path root) : root_(std::move(root)) {
    std::error_code error;
    std::filesystem::create_directories(root_, error);
    if (error || !std::filesystem::is_directory(root_)) {
        throw StartupError("--results " + root_.string() + ": cannot create the directory" +
                           (error ? ": " + error.message() : ""));
    }
}

void ResultsDirectory::write(const Result& result) {
    const std::filesystem::path dir = root_ / std::to_string(result.id);
    std::error_code error;
    std::filesystem::create_directory(dir, error);
    if (error) throw std::system_error(error, "cannot create " + dir.string());
    write_file(dir / "input", result.input.value_or(""));
    write_file(dir / "stdout", result.out);
    write_file(dir / "stderr", result.err);
    write_file(dir / "result.json", result_to_json(result, JsonBytes::left_out) + "\n");
}

}  // namespace taskpipe
