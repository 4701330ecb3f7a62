// Floods of idle connections, and the open-file limit that decides how many a server can hold
// (docs/security.md, "Floods of connections"; common/include/taskpipe/open_files.hpp):
//
//   "Every taskpipe program raises its soft limit to the hard limit at start-up." "A limit below
//   1024 ... is logged." "A connection that has not completed its handshake after 5 s is
//   closed." "Accepts that failed for lack of file descriptors are logged."
//
// Programs run under prlimit(1) with a low soft limit, as they would under a default of 1024,
// and a flood far smaller than the one it stands for.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "support/binaries.hpp"
#include "support/connections.hpp"
#include "support/pipeline.hpp"
#include "support/process.hpp"
#include "support/results.hpp"
#include "support/temp_dir.hpp"

namespace taskpipe::testing {
namespace {

using namespace std::chrono_literals;

// `argv` run under `prlimit --nofile=SOFT:HARD`; prlimit execs it, so the pid is the program's.
std::vector<std::string> limited(const std::string& limits, std::vector<std::string> argv) {
    argv.insert(argv.begin(), {TASKPIPE_PRLIMIT_PATH, "--nofile=" + limits});
    return argv;
}

// "Max open files" soft and hard, as /proc/PID/limits shows them.
std::string open_file_limits(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
    for (std::string line; std::getline(in, line);) {
        if (line.starts_with("Max open files")) {
            std::istringstream fields(line.substr(14));
            std::string soft, hard;
            fields >> soft >> hard;
            return soft + ":" + hard;
        }
    }
    return "(none)";
}

// Idle TCP connections to 127.0.0.1:`port` that never say a word, opened without waiting
// (connect may not complete while the server accepts no one).
class Flood {
  public:
    Flood(int port, int count) {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(static_cast<std::uint16_t>(port));
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        for (int i = 0; i < count; ++i) {
            const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
            (void)connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
            fds_.push_back(fd);
        }
    }
    ~Flood() { stop(); }
    Flood(const Flood&) = delete;
    Flood& operator=(const Flood&) = delete;

    // How many of the connections the server has closed.
    int closed_by_server() const {
        int closed = 0;
        for (int fd : fds_) {
            char byte;
            const ssize_t n = recv(fd, &byte, 1, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) ++closed;
        }
        return closed;
    }

    void stop() {
        for (int fd : fds_) close(fd);
        fds_.clear();
    }

  private:
    std::vector<int> fds_;
};

std::string numbered_input(int count) {
    std::string input;
    for (int i = 1; i <= count; ++i) input += "flood-" + std::to_string(i) + "\n";
    return input;
}

std::string tasks_endpoint(Process& ventilator) {
    const std::string prefix = "ventilator info: tasks on ";
    const auto line = ventilator.wait_for_stderr(prefix, deadline_in(10s));
    if (!line) throw std::runtime_error("no tasks endpoint\n" + ventilator.describe());
    return line->substr(line->find(prefix) + prefix.size());
}

TEST(OpenFileLimit, EveryProgramRaisesItsSoftLimitToTheHardLimit) {
    TempDir dir;
    const std::vector<std::vector<std::string>> programs = {
        {sink_path(), "--bind", dir.ipc_endpoint("results"), "--control",
         dir.ipc_endpoint("control")},
        {ventilator_path(), "-b", dir.ipc_endpoint("tasks"), "-s", dir.ipc_endpoint("control")},
        {worker_path(), "-v", dir.ipc_endpoint("tasks"), "-s", dir.ipc_endpoint("results"),
         "--builtin", "echo"},
    };
    for (auto argv : programs) {
        argv.insert(argv.begin() + 1, {"--log-level", "debug"});
        Process program(limited("64:4096", argv), Stdin::held_open());
        EXPECT_TRUE(program.wait_for_stderr("debug: raised the open-file limit from 64 to 4096",
                                            deadline_in(10s)))
            << program.describe();
        EXPECT_EQ(open_file_limits(program.pid()), "4096:4096") << argv[0];
        EXPECT_TRUE(wait_for([&] { return program.catches_signal(SIGTERM); }, deadline_in(10s)));
        program.signal(SIGTERM);
        EXPECT_TRUE(program.wait_for_exit(deadline_in(10s))) << program.describe();
    }
}

TEST(OpenFileLimit, ALimitThatCannotBeRaisedIsLogged) {
    Process worker(limited("64:64", {worker_path(), "--builtin", "echo"}));
    const auto line = worker.wait_for_stderr("the open-file limit is only 64", deadline_in(10s));
    ASSERT_TRUE(line) << worker.describe();
    EXPECT_TRUE(is_log_line(*line, "worker", "warning")) << *line;
    EXPECT_NE(line->find("(hard limit 64)"), std::string::npos) << *line;
}

// Issue 12: "At the default limit of 1,024 open files, a flood of idle connections starves the
// batch. A worker started during the flood got 0 tasks done." Here the soft limit is 128 and the
// flood 400 connections: raised to the hard limit, the ventilator holds them all and the worker
// that comes during the flood does the batch.
TEST(Flood, IdleConnectionsToTheTasksSocketDoNotStarveAWorker) {
    constexpr int kTasks = 50;
    Pipeline pipeline;
    Process& sink = pipeline.start_sink();
    Process ventilator(limited("128:4096", {ventilator_path(), "-b", "tcp://127.0.0.1:*", "-s",
                                            pipeline.endpoints().control}),
                       Stdin::data(numbered_input(kTasks)));
    const std::string tasks = tasks_endpoint(ventilator);
    const int port = tcp_port(tasks);

    // More than a limit of 128 lets in (the kernel's listen queue holds some of the flood back
    // for a second or so; the handshake timeout closes the first after 5 s).
    Flood flood(port, 400);
    ASSERT_TRUE(wait_for([&] { return accepted_connections(port) >= 200; }, deadline_in(4s)))
        << accepted_connections(port) << " of the flood's 400 connections accepted\n"
        << ventilator.describe();
    Process worker(
        {worker_path(), "-v", tasks, "-s", pipeline.endpoints().results, "--builtin", "echo"});
    const auto deadline = deadline_in(30s);
    ASSERT_EQ(sink.wait_for_exit(deadline), 0) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline), 0) << ventilator.describe();
    EXPECT_EQ(split_lines(sink.stdout_text()).size(), static_cast<std::size_t>(kTasks));
}

// Where the limit cannot be raised (hard limit 64), the flood fills it: the failed accepts are
// logged, the idle connections are closed after the 5 s handshake timeout (libzmq's default is
// 30 s), and once the flood stops a worker does the batch.
TEST(Flood, AtTheLimitFailedAcceptsAreLoggedAndIdleConnectionsTimeOut) {
    constexpr int kTasks = 20;
    Pipeline pipeline;
    Process& sink = pipeline.start_sink();
    Process ventilator(limited("64:64", {ventilator_path(), "-b", "tcp://127.0.0.1:*", "-s",
                                         pipeline.endpoints().control}),
                       Stdin::data(numbered_input(kTasks)));
    const std::string tasks = tasks_endpoint(ventilator);

    Flood flood(tcp_port(tasks), 150);
    const auto logged =
        ventilator.wait_for_stderr("cannot accept a connection on tasks (", deadline_in(10s));
    ASSERT_TRUE(logged) << ventilator.describe();
    EXPECT_TRUE(is_log_line(*logged, "ventilator", "warning")) << *logged;
    EXPECT_NE(logged->find("Too many open files (the open-file limit is 64)"), std::string::npos)
        << *logged;
    EXPECT_TRUE(wait_for([&] { return flood.closed_by_server() > 0; }, deadline_in(12s)))
        << "no idle connection closed by the handshake timeout";
    flood.stop();

    Process worker(
        {worker_path(), "-v", tasks, "-s", pipeline.endpoints().results, "--builtin", "echo"});
    const auto deadline = deadline_in(30s);
    ASSERT_EQ(sink.wait_for_exit(deadline), 0) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline), 0) << ventilator.describe();
    EXPECT_EQ(split_lines(sink.stdout_text()).size(), static_cast<std::size_t>(kTasks));
}

}  // namespace
}  // namespace taskpipe::testing
