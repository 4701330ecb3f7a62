// Reading the sink's joblog for ventilator --resume (ventilator/joblog_reader.hpp).
//
// "--resume skips every task the joblog records (any status); --resume-failed skips only those
// recorded ok. The same id may appear several times (appended runs): it counts as ok if any
// entry is ok. A malformed line: error naming the line number."
#include "joblog_reader.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <stdexcept>
#include <string>

#include "taskpipe/joblog_format.hpp"
#include "taskpipe/sockets.hpp"

namespace taskpipe {
namespace {

RecordedTasks parse(const std::string& text) {
    std::istringstream in(text);
    return parse_joblog(in, "jobs.tsv");
}

// The error message parse() throws, or "" when it does not throw.
std::string parse_error(const std::string& text) {
    try {
        parse(text);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

std::string entry(const std::string& id, const std::string& status, const std::string& input) {
    return id + "\thost:42\t1700000000.123\t0.015\t" + status + "\t0\t-\t1\t" + input + "\n";
}

TEST(JoblogReader, ReadsEntriesAfterTheHeader) {
    const auto tasks = parse(joblog::header() + entry("1", "ok", "one") +
                             entry("2", "failed", "tab\\there") + entry("7", "timeout", ""));
    ASSERT_EQ(tasks.size(), 3u);
    EXPECT_TRUE(tasks.at(1).ok);
    EXPECT_EQ(tasks.at(1).input, "one");
    EXPECT_FALSE(tasks.at(2).ok);
    EXPECT_EQ(tasks.at(2).input, "tab\there");
    EXPECT_FALSE(tasks.at(7).ok);
    EXPECT_EQ(tasks.at(7).input, "");
}

TEST(JoblogReader, AnEmptyFileOrAHeaderAloneRecordsNothing) {
    EXPECT_TRUE(parse("").empty());
    EXPECT_TRUE(parse(joblog::header()).empty());
}

TEST(JoblogReader, AnIdRecordedSeveralTimesIsOkIfAnyEntryIsOk) {
    const auto tasks = parse(joblog::header() + entry("3", "failed", "x") + entry("4", "ok", "y") +
                             joblog::header() +  // a second file appended by hand
                             entry("3", "ok", "x") + entry("4", "failed", "y") +
                             entry("5", "error", "z") + entry("5", "timeout", "z"));
    EXPECT_TRUE(tasks.at(3).ok);
    EXPECT_TRUE(tasks.at(4).ok);
    EXPECT_FALSE(tasks.at(5).ok);
}

TEST(JoblogReader, ALostEntryRecordsNoInput) {
    const auto tasks = parse("9\t-\t-\t0.000\tlost\t-\t-\t3\t\n");
    ASSERT_EQ(tasks.size(), 1u);
    EXPECT_FALSE(tasks.at(9).ok);
    EXPECT_EQ(tasks.at(9).input, std::nullopt);
}

TEST(JoblogReader, ALastLineWithoutItsNewlineIsIgnored) {
    const auto tasks = parse(joblog::header() + entry("1", "ok", "a") + "2\thost:42\t17000");
    EXPECT_EQ(tasks.size(), 1u);
    EXPECT_TRUE(tasks.contains(1));
}

// A joblog that went through a Windows editor or a CRLF-converting copy: the sink never writes
// a raw carriage return (an input's \r is escaped), so one at the end of a line is the line end.
TEST(JoblogReader, LinesEndingWithCarriageReturnNewlineReadLikePlainOnes) {
    auto crlf = [](std::string text) {
        std::string out;
        for (char c : text) {
            if (c == '\n') out += '\r';
            out += c;
        }
        return out;
    };
    const auto tasks =
        parse(crlf(joblog::header() + entry("1", "ok", "one") + entry("2", "failed", "cr\\r")));
    ASSERT_EQ(tasks.size(), 2u);
    EXPECT_TRUE(tasks.at(1).ok);
    EXPECT_EQ(tasks.at(1).input, "one");
    EXPECT_EQ(tasks.at(2).input, "cr\r");
}

TEST(JoblogReader, AMalformedLineIsAnErrorNamingItsNumber) {
    const std::string good = joblog::header() + entry("1", "ok", "a");
    EXPECT_NE(parse_error(good + "2\tonly\tthree\n").find("jobs.tsv:3:"), std::string::npos);
    EXPECT_NE(parse_error(good + entry("x", "ok", "a")).find("jobs.tsv:3: the id"),
              std::string::npos);
    EXPECT_NE(parse_error(good + entry("0", "ok", "a")).find("jobs.tsv:3:"), std::string::npos);
    EXPECT_NE(parse_error(good + entry("-1", "ok", "a")).find("jobs.tsv:3:"), std::string::npos);
    EXPECT_NE(parse_error(good + entry("2", "fine", "a")).find("jobs.tsv:3: unknown status"),
              std::string::npos);
    EXPECT_NE(parse_error(good + entry("2", "ok", "bad\\q")).find("jobs.tsv:3:"),
              std::string::npos);
    EXPECT_NE(parse_error(good + entry("2", "ok", "a\tb")).find("jobs.tsv:3:"), std::string::npos);
    EXPECT_NE(parse_error("\n" + good).find("jobs.tsv:1:"), std::string::npos);
}

TEST(JoblogReader, AMissingFileIsAStartupError) {
    EXPECT_THROW(read_joblog("/nonexistent/dir/jobs.tsv"), StartupError);
}

}  // namespace
}  // namespace taskpipe
