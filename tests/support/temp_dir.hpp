// A fresh directory under the system's temporary directory, removed with everything in it
// when the TempDir is destroyed. Not thread-safe; move-only.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace taskpipe::testing {

class TempDir {
  public:
    // Creates the directory with mkdtemp; throws std::system_error when it cannot.
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    // The path of `name` inside the directory (the file need not exist).
    std::string file(std::string_view name) const;
    // An ipc:// endpoint whose socket file lives inside the directory.
    std::string ipc_endpoint(std::string_view name) const { return "ipc://" + file(name); }

  private:
    std::filesystem::path path_;
};

}  // namespace taskpipe::testing
