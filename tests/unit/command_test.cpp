// Turning a payload into a command's argv (worker/command.hpp).
//
// "Every "{}" inside an argument is replaced by the payload; when no argument contains "{}" the
// payload is appended as the last argument." And: "with no shell unless the user asked for
// one", so the payload reaches the command byte for byte.

#include "command.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace taskpipe {
namespace {

using namespace std::string_literals;
using Argv = std::vector<std::string>;

TEST(BuildArgv, PlaceholderIsReplacedByThePayload) {
    EXPECT_EQ(build_argv(CommandHandler{{"echo", "{}"}}, "x"), (Argv{"echo", "x"}));
}

TEST(BuildArgv, EveryPlaceholderInEveryArgumentIsReplaced) {
    EXPECT_EQ(build_argv(CommandHandler{{"cp", "{}", "{}.bak"}}, "a.txt"),
              (Argv{"cp", "a.txt", "a.txt.bak"}));
    EXPECT_EQ(build_argv(CommandHandler{{"printf", "%s\\n", "[{}|{}]{}"}}, "p"),
              (Argv{"printf", "%s\\n", "[p|p]p"}));
}

TEST(BuildArgv, PayloadIsNotAppendedWhenAPlaceholderWasUsed) {
    EXPECT_EQ(build_argv(CommandHandler{{"touch", "--", "{}"}}, "f").size(), 3u);
}

TEST(BuildArgv, WithoutPlaceholderThePayloadIsAppended) {
    EXPECT_EQ(build_argv(CommandHandler{{"wc", "-c"}}, "payload"), (Argv{"wc", "-c", "payload"}));
    EXPECT_EQ(build_argv(CommandHandler{{"cat"}}, "p"), (Argv{"cat", "p"}));
}

TEST(BuildArgv, BracesApartAreNotAPlaceholder) {
    EXPECT_EQ(build_argv(CommandHandler{{"echo", "{ }", "}{"}}, "p"),
              (Argv{"echo", "{ }", "}{", "p"}));
}

TEST(BuildArgv, PlaceholderInsideThePayloadIsNotReplacedAgain) {
    EXPECT_EQ(build_argv(CommandHandler{{"echo", "{}-{}"}}, "{}"), (Argv{"echo", "{}-{}"}));
    EXPECT_EQ(build_argv(CommandHandler{{"echo", "<{}>"}}, "{"), (Argv{"echo", "<{>"}));
}

TEST(BuildArgv, ShellMetacharactersArePassedByteForByte) {
    const std::string payload =
        "a b  'single' \"double\" $(rm -rf /) `id` ; ls | cat & \\back\\slash * ? ~ $HOME "
        "\t\xff\xfe\x80\xc3(";
    EXPECT_EQ(build_argv(CommandHandler{{"echo", "{}"}}, payload), (Argv{"echo", payload}));
    EXPECT_EQ(build_argv(CommandHandler{{"echo"}}, payload), (Argv{"echo", payload}));
    EXPECT_EQ(build_argv(CommandHandler{{"echo", "x{}y"}}, payload),
              (Argv{"echo", "x" + payload + "y"}));
}

TEST(BuildArgv, PayloadThatLooksLikeAnOptionIsStillOneArgument) {
    EXPECT_EQ(build_argv(CommandHandler{{"ls"}}, "-la --all"), (Argv{"ls", "-la --all"}));
}

TEST(BuildArgv, EmptyPayloadIsAnEmptyArgument) {
    EXPECT_EQ(build_argv(CommandHandler{{"touch", "{}"}}, ""), (Argv{"touch", ""}));
    EXPECT_EQ(build_argv(CommandHandler{{"echo"}}, ""), (Argv{"echo", ""}));
    EXPECT_EQ(build_argv(CommandHandler{{"echo", "a{}b"}}, ""), (Argv{"echo", "ab"}));
}

TEST(BuildArgv, PayloadWithNulThrows) {
    EXPECT_THROW(build_argv(CommandHandler{{"echo", "{}"}}, "a\0b"s), std::invalid_argument);
    EXPECT_THROW(build_argv(CommandHandler{{"echo"}}, "\0"s), std::invalid_argument);
    EXPECT_THROW(build_argv(ShellHandler{"echo \"$1\""}, "a\0"s), std::invalid_argument);
}

TEST(BuildArgv, ShellHandlerPassesThePayloadAsDollarOne) {
    const std::string script = "echo \"$1\" {}";
    const std::string payload = "$(whoami); {} 'x'";
    EXPECT_EQ(build_argv(ShellHandler{script}, payload),
              (Argv{"/bin/sh", "-c", script, "sh", payload}));
}

TEST(BuildArgv, ShellHandlerWithEmptyPayload) {
    EXPECT_EQ(build_argv(ShellHandler{"true"}, ""), (Argv{"/bin/sh", "-c", "true", "sh", ""}));
}

}  // namespace
}  // namespace taskpipe
