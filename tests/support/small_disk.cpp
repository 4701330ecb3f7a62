#include "small_disk.hpp"

#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace taskpipe::testing {

SmallDisk::SmallDisk(const std::string& path, const std::string& size) : path_(path) {
    std::filesystem::create_directory(path);
    mounted_ = ::mount("tmpfs", path.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
    if (!mounted_) error_ = std::strerror(errno);
}

SmallDisk::~SmallDisk() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
}

bool SmallDisk::resize(const std::string& size) {
    return ::mount("tmpfs", path_.c_str(), "tmpfs", MS_REMOUNT, ("size=" + size).c_str()) == 0;
}

}  // namespace taskpipe::testing
