// The sink's joblog writer (sink/joblog.hpp).
//
// "One line per finished task, tab-separated, with a header line written only when the file is
// new or empty; the file is opened in append mode, so several runs can share one file."
#include "joblog.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
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

std::string startup_error(const std::string& path) {
    try {
        Joblog log(path);
    } catch (const StartupError& e) {
        return e.what();
    }
    return "(no error)";
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
}

// docs/security.md: "--joblog ... never follows a symbolic link". In a directory others may write
// to, a link planted where the joblog will be must not make the sink append to (and cut the
// last line of) the file it points to.
TEST(Joblog, ASymbolicLinkIsRefusedAndItsTargetLeftAlone) {
    TempPath dir;
    const std::string target = dir.file("precious");
    write_file(target, "line one\nlast line without newline");
    const std::string path = dir.file("jobs.tsv");
    ASSERT_EQ(::symlink(target.c_str(), path.c_str()), 0);
    EXPECT_EQ(startup_error(path),
              "the joblog " + path +
                  " is a symbolic link, which the sink does not follow: Too many levels of "
                  "symbolic links");
    EXPECT_EQ(contents(target), "line one\nlast line without newline");

    // Even a link to a real joblog: the rule is simple, and says so.
    write_file(target, joblog::header());
    EXPECT_NE(startup_error(path).find("is a symbolic link"), std::string::npos);
    EXPECT_EQ(contents(target), joblog::header());
}

// "A joblog that exists must start with the joblog header or be empty."
TEST(Joblog, AFileThatIsNotAJoblogIsRefusedUntouched) {
    TempPath dir;
    const std::string path = dir.file("notes.txt");
    write_file(path, "my notes\nthe last line");
    EXPECT_EQ(startup_error(path), "the joblog " + path +
                                       " exists and is not a joblog (its first line is not the "
                                       "header: id, worker, start, ...); not writing to it");
    EXPECT_EQ(contents(path), "my notes\nthe last line");
    write_file(path, "1\thostb:1\t-\t0.000\tok\t0\t-\t1\tx\n");  // no header: not ours
    EXPECT_NE(startup_error(path).find("is not a joblog"), std::string::npos);
}

TEST(Joblog, AFifoIsRefusedWithoutBlocking) {
    TempPath dir;
    const std::string path = dir.file("jobs.tsv");
    ASSERT_EQ(::mkfifo(path.c_str(), 0644), 0);
    EXPECT_EQ(startup_error(path),
              "the joblog " + path + " is not a regular file: Invalid argument");
}

// A header with a CRLF line end (a copy through Windows), and a header cut short by a crash on
// the very first write, are still the joblog's own.
TEST(Joblog, AHeaderWithCrlfOrCutShortIsAJoblog) {
    TempPath dir;
    const std::string crlf = dir.file("crlf.tsv");
    std::string header = joblog::header();
    header.insert(header.size() - 1, "\r");
    write_file(crlf, header);
    {
        Joblog log(crlf);
        log.append(finished(1, Status::ok, "a"));
        log.flush();
    }
    EXPECT_EQ(contents(crlf), header + Joblog::joblog_line(finished(1, Status::ok, "a")));

    const std::string cut = dir.file("cut.tsv");
    write_file(cut, joblog::header().substr(0, 10));
    { Joblog log(cut); }
    EXPECT_EQ(contents(cut), joblog::header());
}

}  // namespace
}  // namespace taskpipe
