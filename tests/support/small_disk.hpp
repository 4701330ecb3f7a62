// A tmpfs of a given size mounted on a directory while this lives: a disk that fills up. Needs
// root (CI runs as root); mounted() says whether it could.
#pragma once

#include <string>

namespace taskpipe::testing {

class SmallDisk {
  public:
    SmallDisk(const std::string& path, const std::string& size);
    ~SmallDisk();
    SmallDisk(const SmallDisk&) = delete;
    SmallDisk& operator=(const SmallDisk&) = delete;

    bool mounted() const { return mounted_; }
    const std::string& error() const { return error_; }  // why it is not mounted
    bool resize(const std::string& size);

  private:
    std::string path_;
    bool mounted_ = false;
    std::string error_;
};

}  // namespace taskpipe::testing
