// Payloads are bytes: "Bytes are passed through as they are: no trimming, no decoding", and a
// command gets the payload as one argument ("{} in args replaced by payload, else payload
// appended"; --shell runs /bin/sh -c SCRIPT sh PAYLOAD), never through a shell's parsing.
//
// Each command here writes the bytes of its argument as hex (od), so the check does not depend
// on how the sink encodes output.
#include <gtest/gtest.h>

#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "support/pipeline.hpp"
#include "support/process.hpp"
#include "support/results.hpp"
#include "support/temp_dir.hpp"

namespace taskpipe::testing {
namespace {

using namespace std::chrono_literals;

const std::string kHexDump = R"(printf '%s' "$1" | od -An -tx1)";

std::string without_whitespace(const std::string& text) {
    std::string out;
    for (const char c : text) {
        if (c != ' ' && c != '\n' && c != '\t') out.push_back(c);
    }
    return out;
}

// Files that a payload would create if any shell evaluated it.
std::vector<std::string> canaries(const TempDir& dir) {
    return {dir.file("dollar"), dir.file("backtick"), dir.file("semicolon"), dir.file("pipe")};
}

// Payloads that break naive quoting; none contains a newline, so they fit one per line.
std::vector<std::string> hostile_payloads(const TempDir& dir) {
    const auto canary = canaries(dir);
    return {
        "plain",
        "two words",
        "  leading and trailing spaces  ",
        "tab\there",
        "it's",
        R"(say "hi")",
        "$(touch " + canary[0] + ")",
        "`touch " + canary[1] + "`",
        "x; touch " + canary[2],
        "x | touch " + canary[3],
        R"(back\slash\n\\)",
        "\xff\xfe",
        "-n",
        "--help",
        "",
        "*",
        "$HOME ${PATH}",
        "%s %d %%",
        "{}",
        "#not a comment",
    };
}

// Runs `payloads` (joined by `separator`, each one terminated by it) through one worker
// started with `handler` and checks that each task's output is the hex of its payload.
void expect_payloads_arrive_unchanged(const std::vector<std::string>& payloads, char separator,
                                      const std::vector<std::string>& handler) {
    std::string input;
    for (const auto& payload : payloads) input += payload + separator;
    std::vector<std::string> ventilator_options;
    if (separator == '\0') ventilator_options.push_back("-0");

    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl"});
    Process& ventilator = pipeline.start_ventilator(Stdin::data(input), ventilator_options);
    pipeline.start_worker(handler);

    const auto deadline = deadline_in(30s);
    ASSERT_EQ(sink.wait_for_exit(deadline), 0) << sink.describe() << sink.stdout_text();
    EXPECT_EQ(ventilator.wait_for_exit(deadline), 0) << ventilator.describe();

    const auto results = parse_json_lines(sink.stdout_text());
    ASSERT_EQ(results.size(), payloads.size()) << sink.stdout_text();
    std::vector<bool> seen(payloads.size());
    for (const auto& result : results) {
        const auto id = result.at("id").get<std::size_t>();
        ASSERT_GE(id, 1u);
        ASSERT_LE(id, payloads.size());
        EXPECT_FALSE(seen[id - 1]) << "task " << id << " twice";
        seen[id - 1] = true;
        EXPECT_EQ(result.at("status"), "ok") << result.dump();
        EXPECT_EQ(without_whitespace(result.at("stdout").get<std::string>()),
                  to_hex(payloads[id - 1]))
            << "task " << id << ": payload hex " << to_hex(payloads[id - 1]);
    }
}

struct Handler {
    std::string name;
    std::vector<std::string> args;
};

void PrintTo(const Handler& handler, std::ostream* out) { *out << handler.name; }

class PayloadTest : public ::testing::TestWithParam<Handler> {};

// Issue acceptance: spaces, quotes, $(...), backticks, ;, |, backslashes, non-UTF-8 bytes,
// leading dashes and an empty line reach the command unchanged, and nothing in them runs.
TEST_P(PayloadTest, ReachesTheCommandUnchanged) {
    TempDir dir;
    expect_payloads_arrive_unchanged(hostile_payloads(dir), '\n', GetParam().args);
    for (const auto& canary : canaries(dir)) {
        EXPECT_FALSE(std::filesystem::exists(canary)) << "a payload ran: " << canary;
    }
}

INSTANTIATE_TEST_SUITE_P(Payload, PayloadTest,
                         ::testing::Values(Handler{"CommandWithPayloadAppended",
                                                   {"--", "/bin/sh", "-c", kHexDump, "sh"}},
                                           Handler{"CommandWithPlaceholder",
                                                   {"--", "/bin/sh", "-c", kHexDump, "sh", "{}"}},
                                           Handler{"Shell", {"--shell", kHexDump}}),
                         [](const auto& test) { return test.param.name; });

// "tasks are separated by NUL bytes, not newlines (like xargs -0)": a payload may then hold
// newlines.
TEST(Payload, NulSeparatedInputKeepsEmbeddedNewlines) {
    const std::vector<std::string> payloads = {
        "one line", "two\nlines", "\n", "", "trailing newline\n", "\nleading", "tab\t\xff\n",
    };
    expect_payloads_arrive_unchanged(payloads, '\0', {"--shell", kHexDump});
}

}  // namespace
}  // namespace taskpipe::testing
