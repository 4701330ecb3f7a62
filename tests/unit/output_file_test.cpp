// The files the sink writes, in a directory others may write to (sink/output_file.hpp,
// sink/results_dir.hpp, --stats in sink/summary.hpp).
//
// "The last component of a path is never followed if it is a symbolic link; a file that does
// not exist is created with O_EXCL ...; a file that exists must be a regular file; it is opened
// with O_NONBLOCK, so that opening a FIFO returns at once and is then refused." "Nothing is
// written outside DIR."
#include "output_file.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

#include <nlohmann/json.hpp>

#include "results_dir.hpp"
#include "summary.hpp"
#include "taskpipe/sockets.hpp"

namespace taskpipe {
namespace {

namespace fs = std::filesystem;

class TempPath {
  public:
    TempPath() {
        char pattern[] = "/tmp/output_file_test_XXXXXX";
        dir_ = ::mkdtemp(pattern);
    }
    ~TempPath() { fs::remove_all(dir_); }
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

void write_file(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
}

template <typename F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "(no error)";
}

Result result(std::uint64_t id, std::string out) {
    Result r;
    r.id = id;
    r.status = Status::ok;
    r.exit_code = 0;
    r.out = std::move(out);
    r.input = "in-" + std::to_string(id);
    return r;
}

TEST(OutputFile, CreatesANewFileAndOpensAnExistingOneWithoutTruncating) {
    TempPath dir;
    const std::string path = dir.file("out");
    OutputFile created = open_output_file(AT_FDCWD, path, path);
    EXPECT_TRUE(created.created);
    write_or_throw(created.fd, "abc", path);
    ::close(created.fd);
    OutputFile again = open_output_file(AT_FDCWD, path, path, O_APPEND);
    EXPECT_FALSE(again.created);
    write_or_throw(again.fd, "def", path);
    ::close(again.fd);
    EXPECT_EQ(contents(path), "abcdef");
}

TEST(OutputFile, RefusesASymbolicLinkAndAFifo) {
    TempPath dir;
    write_file(dir.file("target"), "precious");
    ASSERT_EQ(::symlink(dir.file("target").c_str(), dir.file("link").c_str()), 0);
    EXPECT_EQ(error_of([&] { open_output_file(AT_FDCWD, dir.file("link"), "LINK"); }),
              "LINK is a symbolic link, which the sink does not follow: Too many levels of "
              "symbolic links");
    // A dangling link too: O_CREAT alone would create its target.
    ASSERT_EQ(::symlink(dir.file("nothing").c_str(), dir.file("dangling").c_str()), 0);
    EXPECT_NE(error_of([&] {
                  open_output_file(AT_FDCWD, dir.file("dangling"), "D");
              }).find("is a symbolic link"),
              std::string::npos);
    EXPECT_FALSE(fs::exists(dir.file("nothing")));
    ASSERT_EQ(::mkfifo(dir.file("fifo").c_str(), 0644), 0);
    EXPECT_EQ(error_of([&] { open_output_file(AT_FDCWD, dir.file("fifo"), "FIFO"); }),
              "FIFO is not a regular file: No such device or address");
    const int reader = ::open(dir.file("fifo").c_str(), O_RDONLY | O_NONBLOCK);
    ASSERT_GE(reader, 0);  // with a reader the open succeeds; the file type check refuses it
    EXPECT_EQ(error_of([&] { open_output_file(AT_FDCWD, dir.file("fifo"), "FIFO"); }),
              "FIFO is not a regular file: Invalid argument");
    ::close(reader);
    EXPECT_EQ(contents(dir.file("target")), "precious");
}

TEST(OutputFile, AFreshFileReplacesALinkNotItsTarget) {
    TempPath dir;
    write_file(dir.file("target"), "precious");
    ASSERT_EQ(::symlink(dir.file("target").c_str(), dir.file("out").c_str()), 0);
    const int fd = create_fresh_file(AT_FDCWD, dir.file("out"), "out");
    write_or_throw(fd, "new", "out");
    ::close(fd);
    EXPECT_EQ(contents(dir.file("out")), "new");
    EXPECT_FALSE(fs::is_symlink(dir.file("out")));
    EXPECT_EQ(contents(dir.file("target")), "precious");
}

// --stats FILE where FILE is a link planted by another user: refused at start-up and at the end,
// and the file it points to is not overwritten.
TEST(StatsFile, ASymbolicLinkIsRefusedAndItsTargetLeftAlone) {
    TempPath dir;
    write_file(dir.file("target"), "precious");
    const std::string path = dir.file("stats.json");
    ASSERT_EQ(::symlink(dir.file("target").c_str(), path.c_str()), 0);
    EXPECT_THROW(check_writable_file(path), StartupError);
    EXPECT_THROW(write_json_file(path, nlohmann::json{{"complete", true}}), std::system_error);
    EXPECT_EQ(contents(dir.file("target")), "precious");
}

TEST(StatsFile, ReplacesTheContentsOfAnExistingFile) {
    TempPath dir;
    const std::string path = dir.file("stats.json");
    check_writable_file(path);
    EXPECT_FALSE(fs::exists(path)) << "the file made to check is removed again";
    write_file(path, std::string(1000, 'x'));
    write_json_file(path, nlohmann::json{{"complete", true}});
    EXPECT_EQ(nlohmann::json::parse(contents(path)), (nlohmann::json{{"complete", true}}));
}

TEST(ResultsDir, WritesEachTasksFiles) {
    TempPath dir;
    ResultsDirectory results(dir.file("out"));
    results.write(result(1, "one\n"));
    results.write(result(1, "one again\n"));  // a resumed batch replaces the files
    EXPECT_EQ(contents(dir.file("out/1/stdout")), "one again\n");
    EXPECT_EQ(contents(dir.file("out/1/input")), "in-1");
    EXPECT_EQ(contents(dir.file("out/1/stderr")), "");
    EXPECT_TRUE(fs::exists(dir.file("out/1/result.json")));
}

// "DIR/1 -> elsewhere": a task directory planted as a link to a directory outside DIR.
TEST(ResultsDir, ATaskDirectoryThatIsALinkIsRefused) {
    TempPath dir;
    fs::create_directory(dir.file("elsewhere"));
    fs::create_directory(dir.file("out"));
    ASSERT_EQ(::symlink(dir.file("elsewhere").c_str(), dir.file("out/1").c_str()), 0);
    ResultsDirectory results(dir.file("out"));
    EXPECT_EQ(error_of([&] { results.write(result(1, "x")); }),
              dir.file("out/1") +
                  " is a symbolic link, which the sink does not follow: Too many levels of "
                  "symbolic links");
    EXPECT_TRUE(fs::is_empty(dir.file("elsewhere")));
}

// "DIR/2/stdout -> file": a link planted inside a task's directory is replaced, not followed.
TEST(ResultsDir, AFileThatIsALinkIsReplacedNotFollowed) {
    TempPath dir;
    write_file(dir.file("target"), "precious");
    fs::create_directories(dir.file("out/2"));
    ASSERT_EQ(::symlink(dir.file("target").c_str(), dir.file("out/2/stdout").c_str()), 0);
    ResultsDirectory results(dir.file("out"));
    results.write(result(2, "two\n"));
    EXPECT_EQ(contents(dir.file("target")), "precious");
    EXPECT_FALSE(fs::is_symlink(dir.file("out/2/stdout")));
    EXPECT_EQ(contents(dir.file("out/2/stdout")), "two\n");
}

// A task directory others may write to could have links planted in it between two writes.
TEST(ResultsDir, ATaskDirectoryOthersMayWriteToIsRefused) {
    TempPath dir;
    fs::create_directories(dir.file("out/3"));
    ASSERT_EQ(::chmod(dir.file("out/3").c_str(), 0777), 0);
    ResultsDirectory results(dir.file("out"));
    EXPECT_EQ(error_of([&] { results.write(result(3, "x")); }),
              "not writing into " + dir.file("out/3") +
                  ": others may write to it: Operation not permitted");
}

TEST(ResultsDir, DirItselfMayNotBeALink) {
    TempPath dir;
    fs::create_directory(dir.file("real"));
    ASSERT_EQ(::symlink(dir.file("real").c_str(), dir.file("out").c_str()), 0);
    EXPECT_EQ(error_of([&] { ResultsDirectory results(dir.file("out")); }),
              "--results: " + dir.file("out") +
                  " is a symbolic link, which the sink does not follow: Too many levels of "
                  "symbolic links; give the directory itself");
}

}  // namespace
}  // namespace taskpipe
