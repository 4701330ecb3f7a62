// submit's command line (submit/options.hpp): "Each PAYLOAD is one task; with none (or '-') the
// tasks are read from stdin, one per line (-0: NUL-separated; --whole: all of stdin is one)";
// --status and --cancel take ids; --head defaults to $TASKPIPE_HEAD. Throws UsageError for an
// unusable command line.

#include "options.hpp"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

namespace taskpipe {
namespace {

using namespace std::chrono_literals;

Parsed<SubmitOptions> parse(std::initializer_list<const char*> args,
                            const char* environment = nullptr) {
    std::vector<const char*> argv{"submit"};
    argv.insert(argv.end(), args);
    return parse_submit_options(static_cast<int>(argv.size()), argv.data(), environment);
}

void expect_usage_error(std::initializer_list<const char*> args, const std::string& message) {
    try {
        parse(args);
        ADD_FAILURE() << "no UsageError; expected one saying: " << message;
    } catch (const UsageError& e) {
        EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
}

TEST(SubmitOptions, NoArgumentsReadsLinesFromStdinAtTheDefaultHead) {
    const SubmitOptions o = parse({}).options;
    EXPECT_EQ(o.mode, SubmitMode::submit);
    EXPECT_TRUE(o.from_stdin);
    EXPECT_EQ(o.split, StdinSplit::lines);
    EXPECT_EQ(o.head, "tcp://localhost:5560");
    EXPECT_FALSE(o.wait);
    EXPECT_FALSE(o.timeout);
    EXPECT_EQ(o.connect_timeout, 1000ms);
}

TEST(SubmitOptions, EachArgumentIsOnePayloadByteForByte) {
    const SubmitOptions o = parse({"a b", "", "--", "-x", "$(rm -rf /)"}).options;
    EXPECT_FALSE(o.from_stdin);
    EXPECT_EQ(o.payloads, (std::vector<std::string>{"a b", "", "-x", "$(rm -rf /)"}));
}

TEST(SubmitOptions, ADashAloneIsStdinAndCannotBeMixedWithPayloads) {
    EXPECT_TRUE(parse({"-"}).options.from_stdin);
    EXPECT_EQ(parse({"-0", "-"}).options.split, StdinSplit::nul);
    EXPECT_EQ(parse({"--whole"}).options.split, StdinSplit::whole);
    expect_usage_error({"a", "-"}, "'-' (stdin) cannot be mixed");
    expect_usage_error({"-0", "a"}, "-0 and --whole say how to read stdin");
    expect_usage_error({"-0", "--whole"}, "give -0 or --whole, not both");
}

TEST(SubmitOptions, TheHeadComesFromTheEnvironmentUnlessGiven) {
    EXPECT_EQ(parse({"x"}, "ipc:///run/head").options.head, "ipc:///run/head");
    EXPECT_EQ(parse({"x"}, "").options.head, "tcp://localhost:5560");
    EXPECT_EQ(parse({"--head", "tcp://h:1", "x"}, "ipc:///run/head").options.head, "tcp://h:1");
    expect_usage_error({"--head", "tcp://nohost", "x"}, "--head");
}

TEST(SubmitOptions, AKeyNamesOneTask) {
    EXPECT_EQ(parse({"--key", "photo-42", "x"}).options.key, "photo-42");
    expect_usage_error({"--key", "k", "a", "b"}, "--key names one task; 2 payloads given");
    expect_usage_error({"--key", "", "a"}, "--key must be 1 to 256 bytes");
    const std::string long_key(257, 'k');
    expect_usage_error({"--key", long_key.c_str(), "a"}, "--key must be 1 to 256 bytes");
}

TEST(SubmitOptions, DelayAndAtScheduleTheTasks) {
    EXPECT_EQ(parse({"--delay", "1.5", "x"}).options.delay, 1500ms);
    EXPECT_EQ(parse({"--at", "@1795515300", "x"}).options.not_before_us, 1795515300000000u);
    expect_usage_error({"--delay", "-1", "x"}, "--delay must be between 0 and");
    expect_usage_error({"--delay", "nan", "x"}, "--delay must be between 0 and");
    expect_usage_error({"--at", "tomorrow", "x"}, "--at 'tomorrow' is not a time");
    expect_usage_error({"--status", "--delay", "1", "3"}, "are for submitting tasks");
}

TEST(SubmitOptions, TimeoutZeroIsNoLimit) {
    EXPECT_FALSE(parse({"-t", "0", "x"}).options.timeout);
    EXPECT_EQ(parse({"--timeout", "2.5", "x"}).options.timeout, 2500ms);
    expect_usage_error({"--timeout", "-3", "x"}, "--timeout must be between 0 and 31536000");
    expect_usage_error({"--connect-timeout", "0", "x"}, "--connect-timeout must be between");
}

TEST(SubmitOptions, StatusTakesIdsOrAKey) {
    const SubmitOptions by_id = parse({"--status", "12", "7"}).options;
    EXPECT_EQ(by_id.mode, SubmitMode::status);
    EXPECT_EQ(by_id.ids, (std::vector<std::uint64_t>{12, 7}));
    const SubmitOptions by_key = parse({"--status", "--key", "photo-42", "--wait"}).options;
    EXPECT_EQ(by_key.key, "photo-42");
    EXPECT_TRUE(by_key.ids.empty());
    EXPECT_TRUE(by_key.wait);
    expect_usage_error({"--status"}, "--status needs the ids of the tasks (or --key KEY)");
    expect_usage_error({"--status", "--key", "k", "3"}, "give task ids or --key, not both");
    expect_usage_error({"--status", "abc"}, "'abc' is not a task id");
    expect_usage_error({"--status", "0"}, "'0' is not a task id");
    expect_usage_error({"--status", "-3"}, "");  // an unknown option to the parser
    expect_usage_error({"--status", "18446744073709551616"}, "is not a task id");
}

TEST(SubmitOptions, CancelTakesIdsAndAnswersAtOnce) {
    const SubmitOptions o = parse({"--cancel", "5"}).options;
    EXPECT_EQ(o.mode, SubmitMode::cancel);
    EXPECT_EQ(o.ids, (std::vector<std::uint64_t>{5}));
    expect_usage_error({"--cancel"}, "--cancel needs the ids of the tasks");
    expect_usage_error({"--cancel", "--wait", "5"}, "no --wait");
    expect_usage_error({"--cancel", "--key", "k"}, "--cancel takes task ids");
    expect_usage_error({"--cancel", "--status", "5"}, "give --status or --cancel, not both");
}

TEST(SubmitOptions, CurveNeedsTheServersKey) {
    expect_usage_error({"--curve-key", "p.key", "x"}, "--curve-server");
    expect_usage_error({"--curve-server", "s.pub", "x"}, "need --curve-key");
}

TEST(SubmitOptions, HelpAndVersionAreEarlyOutput) {
    EXPECT_TRUE(parse({"--help"}).early_output.starts_with("Usage: taskpipe submit "));
    EXPECT_NE(parse({"--version"}).early_output.find("(taskpipe)"), std::string::npos);
}

// --at: "@SECONDS (since 1970, fractions allowed) or ISO 8601 with a zone".
TEST(ParseTime, EpochSecondsWithAnAt) {
    EXPECT_EQ(parse_time("@0"), 0u);
    EXPECT_EQ(parse_time("@1795515300"), 1795515300000000u);
    EXPECT_EQ(parse_time("@1795515300.25"), 1795515300250000u);
    EXPECT_EQ(parse_time("@1.0000019"), 1000001u);  // microseconds; finer digits dropped
    EXPECT_FALSE(parse_time("@"));
    EXPECT_FALSE(parse_time("@1."));
    EXPECT_FALSE(parse_time("@-5"));
    EXPECT_FALSE(parse_time("@12abc"));
    EXPECT_FALSE(parse_time("1795515300"));  // a bare number is not taken for a time
}

TEST(ParseTime, IsoWithAZone) {
    EXPECT_EQ(parse_time("2026-11-24T10:15:00Z"), 1795515300000000u);
    EXPECT_EQ(parse_time("2026-11-24t10:15z"), 1795515300000000u);
    EXPECT_EQ(parse_time("2026-11-24 10:15:00.5Z"), 1795515300500000u);
    EXPECT_EQ(parse_time("2026-11-24T11:15:00+01:00"), 1795515300000000u);
    EXPECT_EQ(parse_time("2026-11-24T05:45-0430"), 1795515300000000u);
    EXPECT_EQ(parse_time("2026-11-24T12:15+02"), 1795515300000000u);
    EXPECT_EQ(parse_time("2024-02-29T23:59:59Z"), 1709251199000000u);
    EXPECT_EQ(parse_time("1969-12-31T23:00Z"), std::nullopt);
    EXPECT_EQ(parse_time("1970-01-01T00:30+01:00"), 0u);  // before 1970 UTC: in the past
}

TEST(ParseTime, RefusesWhatIsNotATime) {
    for (const char* text :
         {"2026-11-24T10:15:00", "2026-11-24", "2026-02-30T00:00Z", "2026-13-01T00:00Z",
          "2026-11-24T24:00Z", "2026-11-24T10:60Z", "2026-11-24T10:15:61Z", "2026-11-24T10:15Zjunk",
          "26-11-24T10:15Z", "2026-11-24T10:15+25:00", "tomorrow", ""}) {
        EXPECT_FALSE(parse_time(text)) << text;
    }
}

}  // namespace
}  // namespace taskpipe
