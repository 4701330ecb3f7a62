// The sink's joblog writer (sink/joblog.hpp).
//
// "One line per finished task, tab-separated, with a header line written only when the file is
// new or empty; the file is opened in append mode, so several runs can share one file."
#include "joblog.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "taskpipe/joblog_format.hpp"
#include "taskpipe/sockets.hpp"

namespace taskpipe {
namespace {

// A temporary file name, removed at the end of the test.
class TempPath {
  public:
    TempPath() {
        char pattern[] = "/tmp/joblog_test_XXXXXX";
        dir_ = ::mkdtemp(pattern);
    }
    ~TempPath() { std::filesystem::remove_all(dir_); }
    std::string file(const std::string& name) const { return dir_ + "/" + name; }

  private:
    std::string dir_;
};

std::string contents(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

Result finished(std::uint64_t id, Status status, std::string input) {
    Result r;
    r.id = id;
    r.status = status;
    r.host = "hostb";
    r.pid = 4242;
    r.started_us = 1'700'000'000'123'456;
    r.duration_us = 15'678;
    r.attempt = 2;
    r.input = std::move(input);
    return r;
}

TEST(Joblog, ALineHoldsTheColumnsInOrder) {
    Result ok = finished(3, Status::ok, "in\tput\\");
    ok.exit_code = 0;
    EXPECT_EQ(Joblog::joblog_line(ok),
              "3\thostb:4242\t1700000000.123\t0.015\tok\t0\t-\t2\tin\\tput\\\\\n");
    Result killed = finished(4, Status::failed, "x");
    killed.signal = 9;
    EXPECT_EQ(Joblog::joblog_line(killed),
              "4\thostb:4242\t1700000000.123\t0.015\tfailed\t-\t9\t2\tx\n");
}

TEST(Joblog, ALostTaskHasNoWorkerStartExitOrInput) {
    Result lost;
    lost.id = 7;
    lost.attempt = 3;
    lost.status = Status::lost;
    EXPECT_EQ(Joblog::joblog_line(lost), "7\t-\t-\t0.000\tlost\t-\t-\t3\t\n");
}

TEST(Joblog, TheHeaderIsWrittenOnlyToANewOrEmptyFile) {
    TempPath dir;
    const std::string path = dir.file("jobs.tsv");
    {
        Joblog log(path);
        log.append(finished(1, Status::ok, "a"));
        EXPECT_EQ(contents(path), joblog::header()) << "nothing written before flush()";
        log.flush();
    }
    {
        Joblog log(path);  // a second run appends
        log.append(finished(2, Status::ok, "b"));
        log.flush();
    }
    EXPECT_EQ(contents(path), joblog::header() + Joblog::joblog_line(finished(1, Status::ok, "a")) +
                                  Joblog::joblog_line(finished(2, Status::ok, "b")));
}

TEST(Joblog, AFileThatCannotBeOpenedIsAStartupError) {
    EXPECT_THROW(Joblog("/nonexistent/dir/jobs.tsv"), StartupError);
}

}  // namespace
}  // namespace taskpipe
