// Splitting the input into task payloads (taskpipe/input.hpp).
//
// "Records end with a delimiter ('\n', or '\0' for -0); a last record without a delimiter
// still counts, and an empty record is a task like any other. Bytes are passed through as they
// are: no trimming, no decoding."

#include "taskpipe/input.hpp"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace taskpipe {
namespace {

using namespace std::string_literals;
using Records = std::vector<std::string>;

constexpr std::size_t kMaxRecord = 1u << 20;

// A pipe whose read end goes to an InputReader (which then owns it) and whose write end the
// test keeps.
class Pipe {
  public:
    Pipe() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
        read_ = fds[0];
        write_ = fds[1];
    }
    ~Pipe() {
        if (write_ >= 0) ::close(write_);
        if (read_ >= 0) ::close(read_);
    }
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;

    int release_read_end() {
        const int fd = read_;
        read_ = -1;
        return fd;
    }
    void write(std::string_view bytes) {
        while (!bytes.empty()) {
            const ssize_t n = ::write(write_, bytes.data(), bytes.size());
            if (n < 0) throw std::runtime_error("write to pipe failed");
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
    }
    void close_write_end() {
        ::close(write_);
        write_ = -1;
    }

  private:
    int read_ = -1;
    int write_ = -1;
};

// A file in the test's temporary directory, removed at the end of the test.
class TempFile {
  public:
    explicit TempFile(std::string_view content) {
        std::string pattern = testing::TempDir() + "taskpipe-input-XXXXXX";
        const int fd = ::mkstemp(pattern.data());
        if (fd < 0) throw std::runtime_error("mkstemp failed");
        path_ = pattern;
        while (!content.empty()) {
            const ssize_t n = ::write(fd, content.data(), content.size());
            if (n < 0) throw std::runtime_error("write to temporary file failed");
            content.remove_prefix(static_cast<std::size_t>(n));
        }
        ::close(fd);
    }
    ~TempFile() { ::unlink(path_.c_str()); }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

// Waits until `fd` is readable; false after 10 seconds.
bool wait_readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    for (;;) {
        const int n = ::poll(&p, 1, 10'000);
        if (n < 0 && errno == EINTR) continue;
        return n > 0;
    }
}

// Reads every record until the reader is exhausted, the way the event loop does.
Records read_all(InputReader& reader) {
    Records records;
    for (;;) {
        while (auto record = reader.next()) records.push_back(std::move(*record));
        if (reader.exhausted()) return records;
        if (reader.fill() == InputReader::Fill::would_block && !wait_readable(reader.fd())) {
            ADD_FAILURE() << "input never became readable";
            return records;
        }
    }
}

Records split(std::string_view input, std::optional<char> delimiter = '\n',
              std::size_t max_record = kMaxRecord) {
    Pipe pipe;
    pipe.write(input);
    pipe.close_write_end();
    InputReader reader(pipe.release_read_end(), delimiter, max_record);
    return read_all(reader);
}

TEST(InputReader, SplitsLinesOnNewline) {
    EXPECT_EQ(split("a\nbb\nccc\n"), (Records{"a", "bb", "ccc"}));
}

TEST(InputReader, EmptyLineIsAnEmptyRecord) {
    EXPECT_EQ(split("a\n\nb\n"), (Records{"a", "", "b"}));
    EXPECT_EQ(split("\n"), (Records{""}));
    EXPECT_EQ(split("\n\n"), (Records{"", ""}));
}

// "Without a delimiter the whole stream is one record (submit --whole), empty or not."
TEST(InputReader, WithoutADelimiterTheWholeStreamIsOneRecord) {
    EXPECT_EQ(split("a\nb\0c\n"s, std::nullopt), (Records{"a\nb\0c\n"s}));
    EXPECT_EQ(split("", std::nullopt), (Records{""}));
}

TEST(InputReader, WithoutADelimiterAStreamOfSeveralReadsIsOneRecordUpToTheLimit) {
    const std::string big(200 * 1024, 'x');  // more than a pipe holds: a file
    const TempFile file(big);
    InputReader whole = InputReader::open(file.path(), std::nullopt, kMaxRecord);
    EXPECT_EQ(read_all(whole), (Records{big}));
    InputReader limited = InputReader::open(file.path(), std::nullopt, 100 * 1024);
    EXPECT_THROW(read_all(limited), std::runtime_error);
}

TEST(InputReader, LastRecordWithoutDelimiterCounts) {
    EXPECT_EQ(split("a\nlast"), (Records{"a", "last"}));
    EXPECT_EQ(split("only"), (Records{"only"}));
}

TEST(InputReader, FinalNewlineAddsNoEmptyRecord) {
    EXPECT_EQ(split("a\nb\n"), (Records{"a", "b"}));
}

TEST(InputReader, EmptyInputHasNoRecords) { EXPECT_EQ(split(""), Records{}); }

TEST(InputReader, CarriageReturnIsKept) { EXPECT_EQ(split("a\r\nb\r\n"), (Records{"a\r", "b\r"})); }

TEST(InputReader, BytesArePassedThroughUntouched) {
    const std::string odd = "  spaced\t \xff\xfe\x80 \"quoted\" $(x) ;";
    EXPECT_EQ(split(odd + "\n" + odd), (Records{odd, odd}));
}

TEST(InputReader, NulDelimiterKeepsNewlinesInsideRecords) {
    EXPECT_EQ(split("line1\nline2\0second\0"s, '\0'), (Records{"line1\nline2", "second"}));
    EXPECT_EQ(split("a\0\0b"s, '\0'), (Records{"a", "", "b"}));
}

TEST(InputReader, RecordOfExactlyMaxRecordIsAccepted) {
    EXPECT_EQ(split("12345678\n12345678", '\n', 8), (Records{"12345678", "12345678"}));
}

TEST(InputReader, RecordLongerThanMaxRecordThrows) {
    Pipe pipe;
    pipe.write("short\nthis-is-too-long\nafter\n");
    pipe.close_write_end();
    InputReader reader(pipe.release_read_end(), '\n', 8);
    Records records;
    EXPECT_THROW(
        {
            for (;;) {
                while (auto record = reader.next()) records.push_back(*record);
                if (reader.exhausted()) break;
                reader.fill();
            }
        },
        std::runtime_error);
    EXPECT_EQ(records, Records{"short"});
}

TEST(InputReader, LastRecordLongerThanMaxRecordThrows) {
    EXPECT_THROW(split("ok\n123456789", '\n', 8), std::runtime_error);
}

TEST(InputReader, EndlessRecordThrowsBeforeBufferingItAll) {
    // A record with no delimiter in sight must fail once it passes the limit, not when the
    // input ends: the writer keeps its end open.
    Pipe pipe;
    InputReader reader(pipe.release_read_end(), '\n', 1000);
    const std::string chunk(4096, 'x');
    EXPECT_THROW(
        {
            for (int i = 0; i < 100; ++i) {
                pipe.write(chunk);
                while (reader.fill() == InputReader::Fill::data) {
                }
                (void)reader.next();
            }
        },
        std::runtime_error);
}

TEST(InputReader, RecordsArrivingInPiecesAreJoined) {
    Pipe pipe;
    InputReader reader(pipe.release_read_end(), '\n', kMaxRecord);
    EXPECT_EQ(reader.fill(), InputReader::Fill::would_block);
    EXPECT_EQ(reader.next(), std::nullopt);

    pipe.write("ab");
    EXPECT_EQ(reader.fill(), InputReader::Fill::data);
    EXPECT_EQ(reader.next(), std::nullopt);

    pipe.write("c\nde");
    EXPECT_EQ(reader.fill(), InputReader::Fill::data);
    EXPECT_EQ(reader.next(), "abc");
    EXPECT_EQ(reader.next(), std::nullopt);

    pipe.write("f\ng");
    EXPECT_EQ(reader.fill(), InputReader::Fill::data);
    EXPECT_EQ(reader.next(), "def");
    EXPECT_EQ(reader.next(), std::nullopt);
    EXPECT_FALSE(reader.exhausted());

    pipe.close_write_end();
    EXPECT_EQ(reader.fill(), InputReader::Fill::end);
    EXPECT_EQ(reader.next(), "g");
    EXPECT_EQ(reader.next(), std::nullopt);
    EXPECT_TRUE(reader.exhausted());
}

TEST(InputReader, ReadsAFileByPath) {
    const TempFile file("one\ntwo\n");
    InputReader reader = InputReader::open(file.path(), '\n', kMaxRecord);
    EXPECT_EQ(read_all(reader), (Records{"one", "two"}));
}

TEST(InputReader, ManyRecordsAcrossReadChunksComeBackInOrder) {
    // Far more than one read's worth, so records straddle reads and the buffer is compacted.
    std::string input;
    Records expected;
    for (int i = 1; i <= 100'000; ++i) {
        expected.push_back("record-" + std::to_string(i) +
                           std::string(static_cast<std::size_t>(i % 17), '.'));
        input += expected.back() + "\n";
    }
    const TempFile file(input);
    InputReader reader = InputReader::open(file.path(), '\n', 64);
    EXPECT_EQ(read_all(reader), expected);
}

TEST(InputReader, MissingFileThrows) {
    EXPECT_THROW(InputReader::open("/nonexistent/taskpipe/input", '\n', kMaxRecord),
                 std::runtime_error);
}

}  // namespace
}  // namespace taskpipe
