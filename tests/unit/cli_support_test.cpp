// What `taskpipe` needs from the system (cli/dispatch.hpp, cli/listening_port.hpp): finding
// taskpipe-COMMAND beside itself and then in PATH, and the TCP port a process listens on.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "dispatch.hpp"
#include "listening_port.hpp"

namespace taskpipe {
namespace {

namespace fs = std::filesystem;

class ScratchDir {
  public:
    ScratchDir() {
        std::string pattern = (fs::temp_directory_path() / "taskpipe-cli-XXXXXX").string();
        path_ = mkdtemp(pattern.data());
    }
    ~ScratchDir() { fs::remove_all(path_); }
    std::string make(const std::string& relative, bool executable) const {
        const fs::path file = path_ / relative;
        fs::create_directories(file.parent_path());
        std::ofstream(file) << "#!/bin/sh\n";
        fs::permissions(file, executable ? fs::perms::owner_all : fs::perms::owner_read);
        return file.string();
    }
    std::string dir(const std::string& relative) const { return (path_ / relative).string(); }

  private:
    fs::path path_;
};

// "taskpipe-COMMAND, looked up beside this executable ... and then in PATH".
TEST(FindProgram, BesideTheExecutableFirstThenPath) {
    ScratchDir scratch;
    const std::string own = scratch.make("own/taskpipe-worker", true);
    const std::string in_path = scratch.make("path/taskpipe-worker", true);
    const std::string path = scratch.dir("empty") + ":" + scratch.dir("path");
    EXPECT_EQ(find_program("taskpipe-worker", scratch.dir("own"), path), own);
    EXPECT_EQ(find_program("taskpipe-worker", scratch.dir("none"), path), in_path);
    EXPECT_EQ(find_program("taskpipe-worker", "", path), in_path);
    EXPECT_EQ(find_program("taskpipe-sink", scratch.dir("own"), path), std::nullopt);
}

TEST(FindProgram, ANonExecutableFileIsSkipped) {
    ScratchDir scratch;
    scratch.make("own/taskpipe-sink", false);
    const std::string in_path = scratch.make("path/taskpipe-sink", true);
    EXPECT_EQ(find_program("taskpipe-sink", scratch.dir("own"), scratch.dir("path")), in_path);
}

TEST(Subcommands, EveryOneIsListedInTheHelp) {
    const std::string help = general_help();
    for (const Subcommand& s : subcommands()) {
        EXPECT_NE(help.find("  " + std::string(s.name) + " "), std::string::npos) << s.name;
        EXPECT_EQ(find_subcommand(s.name), &s);
    }
    EXPECT_EQ(find_subcommand("nosuch"), nullptr);
}

TEST(ListeningPort, ParsesTheKernelsTable) {
    // Two sockets of ours (inodes 111 and 222): one listening on 0x1F90 = 8080, one connected.
    std::istringstream table(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
        "timeout inode\n"
        "   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        "
        "0 111 1 0000000000000000 100 0 0 10 0\n"
        "   1: 0100007F:A000 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        "
        "0 222 1 0000000000000000 20 4 30 10 -1\n"
        "   2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        "
        "0 333 1 0000000000000000 100 0 0 10 0\n");
    std::set<std::uint16_t> ports;
    listening_ports_in_table(table, {111, 222}, ports);
    EXPECT_EQ(ports, (std::set<std::uint16_t>{8080}));
}

TEST(ListeningPort, FindsThePortThisProcessListensOn) {
    EXPECT_EQ(listening_tcp_port(getpid()), std::nullopt);
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    EXPECT_EQ(listening_tcp_port(getpid()), std::nullopt) << "bound, not yet listening";
    ASSERT_EQ(listen(fd, 1), 0);
    socklen_t length = sizeof address;
    ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
    EXPECT_EQ(listening_tcp_port(getpid()), ntohs(address.sin_port));
    close(fd);
    EXPECT_EQ(listening_tcp_port(getpid()), std::nullopt);
}

TEST(ListeningPort, NothingForAProcessThatIsGone) {
    // pid_max itself is never a process id.
    std::ifstream pid_max_file("/proc/sys/kernel/pid_max");
    pid_t pid_max = 0;
    ASSERT_TRUE(pid_max_file >> pid_max);
    EXPECT_EQ(listening_tcp_port(pid_max), std::nullopt);
}

}  // namespace
}  // namespace taskpipe
