// How the sink writes results (sink/output.hpp).
//
// "Raw: each task's stdout bytes, whole, one task after another in completion order. JSON
// lines: one object per result." "Bytes that are not valid UTF-8 appear there with U+FFFD in
// place of each invalid sequence, and the exact bytes are added as FIELD_base64."

#include "output.hpp"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

#include <nlohmann/json.hpp>

namespace taskpipe {
namespace {

using namespace std::string_literals;
using nlohmann::json;

const std::string kReplacement = "\xef\xbf\xbd";  // U+FFFD in UTF-8

// RFC 4648 base64, strict: any other character or a bad length fails the test.
std::string base64_decode(std::string_view text) {
    constexpr std::string_view kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (text.size() % 4 != 0) throw std::invalid_argument("base64 length not a multiple of 4");
    std::string out;
    std::uint32_t bits = 0;
    int nbits = 0;
    std::size_t padding = 0;
    for (char c : text) {
        if (c == '=') {
            ++padding;
            continue;
        }
        if (padding > 0) throw std::invalid_argument("base64 data after padding");
        const auto value = kAlphabet.find(c);
        if (value == std::string_view::npos) throw std::invalid_argument("not base64");
        bits = (bits << 6) | static_cast<std::uint32_t>(value);
        nbits += 6;
        if (nbits >= 8) {
            nbits -= 8;
            out.push_back(static_cast<char>((bits >> nbits) & 0xffu));
        }
    }
    if (padding > 2) throw std::invalid_argument("too much base64 padding");
    if ((bits & ((1u << nbits) - 1u)) != 0) throw std::invalid_argument("base64 stray bits");
    return out;
}

Result sample_result() {
    Result r;
    r.batch = 1;
    r.id = 17;
    r.attempt = 2;
    r.status = Status::failed;
    r.exit_code = 3;
    r.out = "hello\n";
    r.err = "oops\n";
    r.host = "node-1";
    r.pid = 4321;
    r.duration_us = 1'500'000;
    return r;
}

// A pipe the writer writes into; the test reads what arrived.
class Pipe {
  public:
    Pipe() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("pipe2 failed");
        read_ = fds[0];
        write_ = fds[1];
    }
    ~Pipe() {
        if (read_ >= 0) ::close(read_);
        if (write_ >= 0) ::close(write_);
    }
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;

    int write_end() const { return write_; }
    void close_read_end() {
        ::close(read_);
        read_ = -1;
    }
    // Everything written so far (the pipe is non-blocking, so this never waits).
    std::string take() {
        std::string bytes;
        char buffer[4096];
        for (;;) {
            const ssize_t n = ::read(read_, buffer, sizeof buffer);
            if (n <= 0) return bytes;
            bytes.append(buffer, static_cast<std::size_t>(n));
        }
    }

  private:
    int read_ = -1;
    int write_ = -1;
};

TEST(ResultToJson, HasEveryField) {
    const json j = json::parse(result_to_json(sample_result()));
    EXPECT_EQ(j.at("id"), 17);
    EXPECT_EQ(j.at("status"), "failed");
    EXPECT_EQ(j.at("exit_code"), 3);
    EXPECT_TRUE(j.at("signal").is_null());
    EXPECT_EQ(j.at("stdout"), "hello\n");
    EXPECT_EQ(j.at("stderr"), "oops\n");
    EXPECT_EQ(j.at("worker"), "node-1:4321");
    EXPECT_EQ(j.at("attempt"), 2);
    EXPECT_DOUBLE_EQ(j.at("duration_s").get<double>(), 1.5);
}

TEST(ResultToJson, IsOneLine) {
    Result r = sample_result();
    r.out = "line1\nline2\n";
    const std::string line = result_to_json(r);
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
}

TEST(ResultToJson, ExitCodeIsNullWhenAbsent) {
    Result r = sample_result();
    r.exit_code.reset();
    r.signal = 9;
    const json j = json::parse(result_to_json(r));
    EXPECT_TRUE(j.at("exit_code").is_null());
    EXPECT_EQ(j.at("signal"), 9);
}

TEST(ResultToJson, StatusNames) {
    for (Status s : {Status::ok, Status::failed, Status::error, Status::timeout, Status::lost}) {
        Result r = sample_result();
        r.status = s;
        EXPECT_EQ(json::parse(result_to_json(r)).at("status"), to_string(s));
    }
}

TEST(ResultToJson, ValidUtf8HasNoBase64Field) {
    Result r = sample_result();
    r.out = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\n";
    const json j = json::parse(result_to_json(r));
    EXPECT_EQ(j.at("stdout"), r.out);
    EXPECT_FALSE(j.contains("stdout_base64"));
    EXPECT_FALSE(j.contains("stderr_base64"));
}

TEST(ResultToJson, NulAndControlBytesAreValidUtf8) {
    Result r = sample_result();
    r.out = "a\0b\x01\x1f\"\\"s;
    const json j = json::parse(result_to_json(r));
    EXPECT_EQ(j.at("stdout"), r.out);
    EXPECT_FALSE(j.contains("stdout_base64"));
}

TEST(ResultToJson, NonUtf8StdoutIsReplacedAndGivenExactlyInBase64) {
    Result r = sample_result();
    r.out = "ok \xff\xfe end\0\x80"s;
    const json j = json::parse(result_to_json(r));
    const std::string text = j.at("stdout");
    EXPECT_TRUE(text.starts_with("ok ")) << text;
    EXPECT_NE(text.find(kReplacement), std::string::npos) << text;
    EXPECT_NE(text.find(" end"), std::string::npos) << text;
    ASSERT_TRUE(j.contains("stdout_base64"));
    EXPECT_EQ(base64_decode(j.at("stdout_base64").get<std::string>()), r.out);
    EXPECT_FALSE(j.contains("stderr_base64"));
}

TEST(ResultToJson, NonUtf8StderrGetsItsOwnBase64Field) {
    Result r = sample_result();
    r.err = "\xc3(";
    const json j = json::parse(result_to_json(r));
    ASSERT_TRUE(j.contains("stderr_base64"));
    EXPECT_EQ(base64_decode(j.at("stderr_base64").get<std::string>()), r.err);
    EXPECT_FALSE(j.contains("stdout_base64"));
}

TEST(ResultToJson, Base64IsExactForEveryLengthModuloThree) {
    // Lengths 1 to 9 cover both padding cases and none, with and without a full last group.
    const std::string bytes = "\xff\x00\xfe\x80\x01\xc0\xfa\x7f\xf8"s;
    for (std::size_t n = 1; n <= bytes.size(); ++n) {
        SCOPED_TRACE("length " + std::to_string(n));
        Result r = sample_result();
        r.out = "\xff" + bytes.substr(0, n - 1);  // always starts invalid
        const json j = json::parse(result_to_json(r));
        ASSERT_TRUE(j.contains("stdout_base64"));
        const std::string encoded = j.at("stdout_base64");
        EXPECT_EQ(encoded.size(), (n + 2) / 3 * 4) << encoded;
        EXPECT_EQ(base64_decode(encoded), r.out) << encoded;
    }
}

TEST(ResultToJson, TruncatedStdoutIsFlagged) {
    Result r = sample_result();
    r.out_truncated = true;
    EXPECT_EQ(json::parse(result_to_json(r)).at("stdout_truncated"), true);
}

TEST(RawWriter, WritesExactlyTheStdoutBytesInOrderAfterFlush) {
    Pipe pipe;
    auto writer = ResultWriter::make(ResultWriter::Format::raw, pipe.write_end());
    Result r = sample_result();
    const std::string parts[] = {"first\n", "no newline", "\0\xff\xfe bin\n"s, "", "last\n"};
    std::string expected;
    for (const std::string& part : parts) {
        r.out = part;
        writer->write(r);
        expected += part;
    }
    writer->flush();
    EXPECT_EQ(pipe.take(), expected);
}

// "--tag: each output line prefixed with the task's input and a tab, as parallel --tag does."
TEST(TaggedWriter, PrefixesEveryLineWithTheInputAndATab) {
    Pipe pipe;
    auto writer = ResultWriter::make(ResultWriter::Format::tagged, pipe.write_end());
    Result r = sample_result();
    r.input = "in put";
    r.out = "one\ntwo\n\nlast without newline";
    writer->write(r);
    r.input = "silent";
    r.out = "";  // no output, no line
    writer->write(r);
    r.input.reset();  // a worker that does not echo the input: an empty tag
    r.out = "x\n";
    writer->write(r);
    writer->flush();
    EXPECT_EQ(pipe.take(),
              "in put\tone\nin put\ttwo\nin put\t\nin put\tlast without newline\n\tx\n");
}

TEST(ResultToJson, CarriesTheInputWhenTheWorkerEchoedIt) {
    Result r = sample_result();
    EXPECT_FALSE(json::parse(result_to_json(r)).contains("input"));
    r.input = "photo 1.jpg";
    EXPECT_EQ(json::parse(result_to_json(r)).at("input"), "photo 1.jpg");
}

TEST(RawWriter, WritesNothingBeforeFlush) {
    Pipe pipe;
    auto writer = ResultWriter::make(ResultWriter::Format::raw, pipe.write_end());
    Result r = sample_result();
    writer->write(r);
    EXPECT_EQ(pipe.take(), "");
    writer->flush();
    EXPECT_EQ(pipe.take(), "hello\n");
    writer->flush();  // nothing left to write
    EXPECT_EQ(pipe.take(), "");
}

TEST(RawWriter, LargeOutputIsWrittenBeforeFlushAndWholeAfterIt) {
    // "written with write(2) when flush() is called or the buffer is large": a burst of big
    // results does not pile up in memory until the next flush.
    std::string path = testing::TempDir() + "taskpipe-output-XXXXXX";
    const int fd = ::mkstemp(path.data());
    ASSERT_GE(fd, 0);
    auto writer = ResultWriter::make(ResultWriter::Format::raw, fd);
    Result r = sample_result();
    std::string expected;
    for (int i = 0; i < 16; ++i) {
        r.out = std::string(64 * 1024, static_cast<char>('a' + i));
        writer->write(r);
        expected += r.out;
    }
    const off_t before_flush = ::lseek(fd, 0, SEEK_CUR);
    writer->flush();
    const off_t after_flush = ::lseek(fd, 0, SEEK_CUR);
    std::string written(expected.size() + 1, '\0');
    const ssize_t n = ::pread(fd, written.data(), written.size(), 0);
    ::close(fd);
    ::unlink(path.c_str());
    EXPECT_GT(before_flush, 0);
    EXPECT_EQ(after_flush, static_cast<off_t>(expected.size()));
    ASSERT_EQ(n, static_cast<ssize_t>(expected.size()));
    written.resize(static_cast<std::size_t>(n));
    EXPECT_TRUE(written == expected);
}

TEST(JsonLinesWriter, WritesOneParsableLinePerResult) {
    Pipe pipe;
    auto writer = ResultWriter::make(ResultWriter::Format::jsonl, pipe.write_end());
    Result r = sample_result();
    for (std::uint64_t id = 1; id <= 3; ++id) {
        r.id = id;
        r.out = "out" + std::to_string(id) + "\n\xff";
        writer->write(r);
    }
    writer->flush();
    const std::string text = pipe.take();
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(text.back(), '\n');
    std::size_t start = 0;
    std::uint64_t expected_id = 1;
    while (start < text.size()) {
        const std::size_t end = text.find('\n', start);
        ASSERT_NE(end, std::string::npos);
        const json j = json::parse(text.substr(start, end - start));
        EXPECT_EQ(j.at("id"), expected_id);
        EXPECT_EQ(base64_decode(j.at("stdout_base64").get<std::string>()),
                  "out" + std::to_string(expected_id) + "\n\xff");
        ++expected_id;
        start = end + 1;
    }
    EXPECT_EQ(expected_id, 4u);
}

TEST(ResultWriter, FlushToAClosedPipeThrowsSystemError) {
    struct sigaction ignore {};
    struct sigaction previous {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, &previous);
    Pipe pipe;
    auto writer = ResultWriter::make(ResultWriter::Format::raw, pipe.write_end());
    writer->write(sample_result());
    pipe.close_read_end();
    EXPECT_THROW(writer->flush(), std::system_error);
    ::sigaction(SIGPIPE, &previous, nullptr);
}

}  // namespace
}  // namespace taskpipe
