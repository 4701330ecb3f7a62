// The joblog's input escaping (common/include/taskpipe/joblog_format.hpp).
//
// "input (the task's payload, escaped: backslash as \\, tab \t, newline \n, carriage return \r,
// other bytes < 0x20 and 0x7f as \xHH; everything else as is)", and unescaping inverts it.
#include "taskpipe/joblog_format.hpp"

#include <gtest/gtest.h>

#include <string>

namespace taskpipe::joblog {
namespace {

using namespace std::string_literals;

TEST(JoblogFormat, EscapesBackslashTabNewlineCarriageReturnAndControlBytes) {
    EXPECT_EQ(escape("a\\b\tc\nd\re"), "a\\\\b\\tc\\nd\\re");
    EXPECT_EQ(escape("\x01\x1f\x7f"), "\\x01\\x1f\\x7f");
    EXPECT_EQ(escape("nul\0end"s), "nul\\x00end");
}

TEST(JoblogFormat, LeavesEveryOtherByteAsItIs) {
    EXPECT_EQ(escape("plain text, \"quotes\" & $(x) ~"), "plain text, \"quotes\" & $(x) ~");
    EXPECT_EQ(escape("caf\xc3\xa9 \xff\x80"), "caf\xc3\xa9 \xff\x80");
    EXPECT_EQ(escape(""), "");
}

TEST(JoblogFormat, UnescapeInvertsEscapeForEveryByte) {
    std::string all;
    for (int byte = 0; byte < 256; ++byte) all += static_cast<char>(byte);
    const std::string escaped = escape(all);
    EXPECT_EQ(escaped.find('\t'), std::string::npos);
    EXPECT_EQ(escaped.find('\n'), std::string::npos);
    EXPECT_EQ(unescape(escaped), all);
    for (const std::string& sample : {"x\\\\t"s, "\\\\\\n"s, "\\x7f\\x00"s, "tab\\tend"s}) {
        const auto bytes = unescape(sample);
        ASSERT_TRUE(bytes) << sample;
        EXPECT_EQ(escape(*bytes), sample);
    }
}

TEST(JoblogFormat, UnescapeRefusesSequencesEscapeNeverWrites) {
    for (const std::string& bad : {"\\"s, "end\\"s, "\\q"s, "\\x4"s, "\\xg0"s, "\\x"s}) {
        EXPECT_FALSE(unescape(bad)) << bad;
    }
    EXPECT_EQ(unescape("\\X41"), std::nullopt);
    EXPECT_EQ(unescape("\\x4A"), "J");  // upper-case hex is read too
}

TEST(JoblogFormat, HeaderNamesTheColumnsInOrder) {
    EXPECT_EQ(header(), "id\tworker\tstart\truntime\tstatus\texit\tsignal\tattempts\tinput\n");
}

}  // namespace
}  // namespace taskpipe::joblog
