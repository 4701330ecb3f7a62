// The in-process handlers (worker/builtin.hpp).

#include "builtin.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>

namespace taskpipe {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;

BuiltinOutcome run(std::string_view name, std::string_view payload) {
    const auto builtin = find_builtin(name);
    if (!builtin) throw std::logic_error("no builtin " + std::string(name));
    return (*builtin)(payload);
}

TEST(Builtin, EchoOutputIsThePayloadAndANewline) {
    const auto outcome = run("echo", "hello world");
    EXPECT_EQ(outcome.status, Status::ok);
    EXPECT_EQ(outcome.exit_code, 0);
    EXPECT_EQ(outcome.out, "hello world\n");
    EXPECT_EQ(outcome.err, "");
    EXPECT_EQ(outcome.delay, 0ms);
}

TEST(Builtin, EchoKeepsBinaryBytes) {
    EXPECT_EQ(run("echo", "a\0\xff"s).out, "a\0\xff\n"s);
    EXPECT_EQ(run("echo", "").out, "\n");
}

TEST(Builtin, SleepDelaysTheResultWithEmptyOutput) {
    const auto outcome = run("sleep", "25");
    EXPECT_EQ(outcome.status, Status::ok);
    EXPECT_EQ(outcome.exit_code, 0);
    EXPECT_EQ(outcome.delay, 25ms);
    EXPECT_EQ(outcome.out, "");
}

TEST(Builtin, SleepZeroIsNoDelay) { EXPECT_EQ(run("sleep", "0").delay, 0ms); }

TEST(Builtin, SleepWithoutAWholeNumberIsAnError) {
    for (const char* payload : {"abc", "-1", "", "2.5", "25ms", " 25", "99999999999999999999"}) {
        SCOPED_TRACE(payload);
        const auto outcome = run("sleep", payload);
        EXPECT_EQ(outcome.status, Status::error);
        EXPECT_FALSE(outcome.exit_code.has_value());
        EXPECT_FALSE(outcome.err.empty());
        EXPECT_EQ(outcome.delay, 0ms);
    }
}

TEST(Builtin, FailFailsWithExitCodeOne) {
    const auto outcome = run("fail", "why");
    EXPECT_EQ(outcome.status, Status::failed);
    EXPECT_EQ(outcome.exit_code, 1);
    EXPECT_NE(outcome.err.find("why"), std::string::npos) << outcome.err;
}

TEST(Builtin, SpinZeroSucceeds) {
    const auto outcome = run("spin", "0");
    EXPECT_EQ(outcome.status, Status::ok);
    EXPECT_EQ(outcome.exit_code, 0);
}

TEST(Builtin, SpinWithoutANumberIsAnError) { EXPECT_EQ(run("spin", "x").status, Status::error); }

TEST(Builtin, UnknownNameIsNotFound) {
    EXPECT_FALSE(find_builtin("nope").has_value());
    EXPECT_FALSE(find_builtin("").has_value());
    EXPECT_FALSE(find_builtin("ECHO").has_value());
}

TEST(Builtin, NamesListEveryBuiltin) {
    const auto names = builtin_names();
    for (const char* name : {"echo", "sleep", "fail", "spin"}) {
        EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
    }
    for (const auto& name : names) EXPECT_TRUE(find_builtin(name).has_value()) << name;
}

}  // namespace
}  // namespace taskpipe
