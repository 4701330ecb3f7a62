#include "support/temp_dir.hpp"

#include <stdlib.h>

#include <cerrno>
#include <system_error>
#include <vector>

namespace taskpipe::testing {

TempDir::TempDir() {
    // Short, so that ipc:// paths inside stay well below the 107-byte socket path limit.
    std::string pattern = (std::filesystem::temp_directory_path() / "taskpipe-XXXXXX").string();
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (::mkdtemp(buffer.data()) == nullptr) {
        throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
    }
    path_ = buffer.data();
}

TempDir::~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::file(std::string_view name) const { return (path_ / name).string(); }

}  // namespace taskpipe::testing
