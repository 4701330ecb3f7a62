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
    EXPECT_EQ(build_argv(CommandHandler{{"echo", "{}"}}, "x", 1), (Argv{"echo", "x"}));
}

TEST(BuildArgv, EveryPlaceholderInEveryArgumentIsReplaced) {
    EXPECT_EQ(build_argv(CommandHandler{{"cp", "{}", "{}.bak"}}, "a.txt", 1),
              (Argv{"cp", "a.txt", "a.txt.bak"}));
    EXPECT_EQ(build_argv(CommandHandler{{"printf", "%s\\n", "[{}|{}]{}"}}, "p", 1),
              (Argv{"printf", "%s\\n", "[p|p]p"}));
}

TEST(BuildArgv, PayloadIsNotAppendedWhenAPlaceholderWasUsed) {
    EXPECT_EQ(build_argv(CommandHandler{{"touch", "--", "{}"}}, "f", 1).size(), 3u);
}

TEST(BuildArgv, WithoutPlaceholderThePayloadIsAppended) {
    EXPECT_EQ(build_argv(CommandHandler{{"wc", "-c"}}, "payload", 1),
              (Argv{"wc", "-c", "payload"}));
    EXPECT_EQ(build_argv(CommandHandler{{"cat"}}, "p", 1), (Argv{"cat", "p"}));
}

TEST(BuildArgv, BracesApartAreNotAPlaceholder) {
    EXPECT_EQ(build_argv(CommandHandler{{"echo", "{ }", "}{"}}, "p", 1),
              (Argv{"echo", "{ }", "}{", "p"}));
}

TEST(BuildArgv, PlaceholderInsideThePayloadIsNotReplacedAgain) {
    EXPECT_EQ(build_argv(CommandHandler{{"echo", "{}-{}"}}, "{}", 1), (Argv{"echo", "{}-{}"}));
    EXPECT_EQ(build_argv(CommandHandler{{"echo", "<{}>"}}, "{", 1), (Argv{"echo", "<{>"}));
}

TEST(BuildArgv, ShellMetacharactersArePassedByteForByte) {
    const std::string payload =
        "a b  'single' \"double\" $(rm -rf /) `id` ; ls | cat & \\back\\slash * ? ~ $HOME "
        "\t\xff\xfe\x80\xc3(";
    EXPECT_EQ(build_argv(CommandHandler{{"echo", "{}"}}, payload, 1), (Argv{"echo", payload}));
    EXPECT_EQ(build_argv(CommandHandler{{"echo"}}, payload, 1), (Argv{"echo", payload}));
    EXPECT_EQ(build_argv(CommandHandler{{"echo", "x{}y"}}, payload, 1),
              (Argv{"echo", "x" + payload + "y"}));
}

TEST(BuildArgv, PayloadThatLooksLikeAnOptionIsStillOneArgument) {
    EXPECT_EQ(build_argv(CommandHandler{{"ls"}}, "-la --all", 1), (Argv{"ls", "-la --all"}));
}

TEST(BuildArgv, EmptyPayloadIsAnEmptyArgument) {
    EXPECT_EQ(build_argv(CommandHandler{{"touch", "{}"}}, "", 1), (Argv{"touch", ""}));
    EXPECT_EQ(build_argv(CommandHandler{{"echo"}}, "", 1), (Argv{"echo", ""}));
    EXPECT_EQ(build_argv(CommandHandler{{"echo", "a{}b"}}, "", 1), (Argv{"echo", "ab"}));
}

TEST(BuildArgv, PayloadWithNulThrows) {
    EXPECT_THROW(build_argv(CommandHandler{{"echo", "{}"}}, "a\0b"s, 1), std::invalid_argument);
    EXPECT_THROW(build_argv(CommandHandler{{"echo"}}, "\0"s, 1), std::invalid_argument);
    EXPECT_THROW(build_argv(ShellHandler{"echo \"$1\""}, "a\0"s, 1), std::invalid_argument);
}

TEST(BuildArgv, ShellHandlerPassesThePayloadAsDollarOne) {
    const std::string script = "echo \"$1\" {}";
    const std::string payload = "$(whoami); {} 'x'";
    EXPECT_EQ(build_argv(ShellHandler{script}, payload, 1),
              (Argv{"/bin/sh", "-c", script, "sh", payload}));
}

TEST(BuildArgv, ShellHandlerWithEmptyPayload) {
    EXPECT_EQ(build_argv(ShellHandler{"true"}, "", 1), (Argv{"/bin/sh", "-c", "true", "sh", ""}));
}

// GNU parallel's replacement strings (man parallel, "{.}": "foo.jpg becomes foo,
// subdir/foo.jpg becomes subdir/foo, sub.dir/foo.jpg becomes sub.dir/foo, sub.dir/bar remains
// sub.dir/bar"; "{/}": "the input with the directory part removed"; "{//}": "the dir of the input
// line. See dirname(1)"; "{/.}": "a combination of {/} and {.}"; "{#}": "the sequence number of
// the job").
TEST(ReplacementStrings, ParallelsDocumentedExamples) {
    EXPECT_EQ(without_extension("foo.jpg"), "foo");
    EXPECT_EQ(without_extension("subdir/foo.jpg"), "subdir/foo");
    EXPECT_EQ(without_extension("sub.dir/foo.jpg"), "sub.dir/foo");
    EXPECT_EQ(without_extension("sub.dir/bar"), "sub.dir/bar");
    EXPECT_EQ(base_name("dir/sub/foo.jpg"), "foo.jpg");
    EXPECT_EQ(dir_name("dir/sub/foo.jpg"), "dir/sub");
    EXPECT_EQ(without_extension(base_name("dir/sub/foo.jpg")), "foo");
}

// Each row as GNU parallel 20221122 (Debian 12) prints it, for
//   parallel -0 -k printf '[%s] .[%s] /[%s] //[%s] /.[%s]\n' {} {.} {/} {//} {/.}
struct Expected {
    std::string payload, dot, slash, dir, slash_dot;
};

TEST(ReplacementStrings, EdgeCasesAsGnuParallelHasThem) {
    const std::vector<Expected> rows = {
        {"noext", "noext", "noext", ".", "noext"},      // no extension, no directory
        {".bashrc", "", ".bashrc", ".", ""},            // a dot-file is all extension
        {"dir/.bashrc", "dir/", ".bashrc", "dir", ""},  //
        {".hidden.txt", ".hidden", ".hidden.txt", ".", ".hidden"},
        {"foo.", "foo", "foo.", ".", "foo"},                      // a trailing dot is an extension
        {"foo.tar.gz", "foo.tar", "foo.tar.gz", ".", "foo.tar"},  // only the last one goes
        {"dir/sub/", "dir/sub/", "", "dir", ""},                  // a trailing slash: no base name
        {"foo.jpg/", "foo.jpg/", "", ".", ""},                    //
        {"/foo.jpg", "/foo", "foo.jpg", "/", "foo"},              // the root directory
        {"/", "/", "", "/", ""},                                  //
        {"//foo", "//foo", "foo", "/", "foo"},                    //
        {"//", "//", "", "/", ""},                                //
        {"a//", "a//", "", ".", ""},                              //
        {"dir//foo.jpg", "dir//foo", "foo.jpg", "dir", "foo"},    // doubled slashes
        {"a/b.c/d", "a/b.c/d", "d", "a/b.c", "d"},                // a dot in a directory
        {"./x.y", "./x", "x.y", ".", "x"},                        //
        {"..", ".", "..", ".", "."},                              //
        {".", "", ".", ".", ""},                                  //
        {"", "", "", ".", ""},                                    // empty input
    };
    for (const Expected& row : rows) {
        SCOPED_TRACE("payload '" + row.payload + "'");
        EXPECT_EQ(
            build_argv(CommandHandler{{"p", "{}", "{.}", "{/}", "{//}", "{/.}"}}, row.payload, 1),
            (Argv{"p", row.payload, row.dot, row.slash, row.dir, row.slash_dot}));
    }
}

TEST(ReplacementStrings, HashIsTheTaskId) {
    EXPECT_EQ(build_argv(CommandHandler{{"echo", "{#}", "out-{#}.txt"}}, "x", 42),
              (Argv{"echo", "42", "out-42.txt"}));
}

TEST(ReplacementStrings, SeveralInOneArgumentAndTheReadmeThumbnail) {
    EXPECT_EQ(build_argv(CommandHandler{{"convert", "{}", "-resize", "50%", "{.}.thumb.jpg"}},
                         "photos/photo.jpg", 3),
              (Argv{"convert", "photos/photo.jpg", "-resize", "50%", "photos/photo.thumb.jpg"}));
    EXPECT_EQ(build_argv(CommandHandler{{"mv", "{}", "{//}/{#}-{/.}.bak"}}, "a/b.txt", 7),
              (Argv{"mv", "a/b.txt", "a/7-b.bak"}));
}

TEST(ReplacementStrings, AnyOfThemKeepsThePayloadFromBeingAppended) {
    // "If the command line contains no replacement strings then {} will be appended."
    for (const char* arg : {"{.}", "{/}", "{//}", "{/.}", "{#}"}) {
        SCOPED_TRACE(arg);
        EXPECT_EQ(build_argv(CommandHandler{{"echo", arg}}, "d/f.x", 1).size(), 2u);
    }
}

TEST(ReplacementStrings, LookalikesAreLeftAlone) {
    EXPECT_EQ(build_argv(CommandHandler{{"echo", "{..}", "{///}", "{#", "{/", "{x}"}}, "p", 1),
              (Argv{"echo", "{..}", "{///}", "{#", "{/", "{x}", "p"}));
    EXPECT_EQ(build_argv(CommandHandler{{"echo", "{{}}"}}, "p", 1), (Argv{"echo", "{p}"}));
}

TEST(ReplacementStrings, AValueIsNeverScannedAgain) {
    EXPECT_EQ(build_argv(CommandHandler{{"echo", "{/}"}}, "d/{.}", 1), (Argv{"echo", "{.}"}));
}

// Issue 12, item 7: "A payload -o/tmp/victim with worker -- sort {} truncates a file." With
// --file-names an argument that a payload would start with '-' gets "./" in front.
TEST(FileNames, ADashPayloadBecomesARelativePath) {
    const CommandHandler sort{{"sort", "{}"}, true};
    EXPECT_EQ(build_argv(sort, "-o/tmp/victim", 1), (Argv{"sort", "./-o/tmp/victim"}));
    EXPECT_EQ(build_argv(CommandHandler{{"rm"}, true}, "-rf", 1), (Argv{"rm", "./-rf"}));
}

TEST(FileNames, EveryReplacementThatStartsAnArgumentIsGuarded) {
    const CommandHandler handler{{"cp", "{/}", "{//}", "{.}.bak", "{/.}"}, true};
    EXPECT_EQ(build_argv(handler, "-d/-f.x", 1),
              (Argv{"cp", "./-f.x", "./-d", "./-d/-f.bak", "./-f"}));
}

TEST(FileNames, OnlyTheStartOfAnArgumentIsGuarded) {
    const CommandHandler handler{{"echo", "x{}", "--input={}", "-{}"}, true};
    EXPECT_EQ(build_argv(handler, "-p", 1), (Argv{"echo", "x-p", "--input=-p", "--p"}));
}

TEST(FileNames, OtherPayloadsAreUnchanged) {
    const CommandHandler handler{{"cat", "{}"}, true};
    EXPECT_EQ(build_argv(handler, "a-b", 1), (Argv{"cat", "a-b"}));
    EXPECT_EQ(build_argv(handler, "/abs/-x", 1), (Argv{"cat", "/abs/-x"}));
    EXPECT_EQ(build_argv(handler, "", 1), (Argv{"cat", ""}));
}

TEST(FileNames, OffByDefault) {
    EXPECT_EQ(build_argv(CommandHandler{{"sort", "{}"}}, "-o/tmp/victim", 1),
              (Argv{"sort", "-o/tmp/victim"}));
}

// Issue 12, item 7: "worker -- sh -c 'echo {}' runs a payload's ; touch F."
TEST(PayloadAsCode, ShellProgramTextWithAReplacementStringIsWarnedAbout) {
    for (const Argv& argv : std::vector<Argv>{{"sh", "-c", "echo {}"},
                                              {"/bin/bash", "-ec", "gzip {.}"},
                                              {"bash", "--norc", "-c", "x {#}"},
                                              {"env", "A=1", "sh", "-c", "echo {}"},
                                              {"python3", "-c", "print('{}')"},
                                              {"perl", "-ne", "print '{/}'"}}) {
        SCOPED_TRACE(argv.front() + " " + argv[1]);
        const auto warning = payload_as_code_warning(CommandHandler{argv});
        ASSERT_TRUE(warning.has_value());
        EXPECT_NE(warning->find("--shell"), std::string::npos) << *warning;
    }
}

TEST(PayloadAsCode, ThePayloadAsAnArgumentIsFine) {
    for (const Argv& argv : std::vector<Argv>{{"sh", "-c", "echo \"$1\"", "sh", "{}"},
                                              {"sh", "script.sh", "{}"},
                                              {"echo", "-c", "{}"},
                                              {"python3", "-m", "tool", "{}"},
                                              {"convert", "{}", "{.}.png"}}) {
        SCOPED_TRACE(argv.front() + " " + argv[1]);
        EXPECT_FALSE(payload_as_code_warning(CommandHandler{argv}).has_value());
    }
}

}  // namespace
}  // namespace taskpipe
