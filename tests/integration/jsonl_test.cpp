// `sink --jsonl`: "write one JSON object per result instead of each task's stdout", with the
// fields id, status, exit_code, signal, stdout, stderr, worker, attempt and duration_s; "bytes
// that are not valid UTF-8 appear there with U+FFFD in place of each invalid sequence, and the
// exact bytes are added as FIELD_base64".
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "support/pipeline.hpp"
#include "support/process.hpp"
#include "support/results.hpp"

namespace taskpipe::testing {
namespace {

using namespace std::chrono_literals;

// Each payload picks what the task does.
const std::string kScript = R"(case "$1" in
    fail) echo "it failed" >&2; exit 4 ;;
    kill) kill -KILL $$ ;;
    *) printf '%s' "$1" ;;
esac)";

TEST(Jsonl, EachLineIsAJsonObjectWithTheDocumentedFields) {
    const std::vector<std::string> payloads = {"hello",    "fail",        "kill",
                                               "\xff\xfe", "caf\xc3\xa9", "\xc3"};
    std::string input;
    for (const auto& payload : payloads) input += payload + "\n";

    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl"});
    Process& ventilator = pipeline.start_ventilator(Stdin::data(input));
    Process& worker = pipeline.start_worker({"--shell", kScript});

    const auto deadline = deadline_in(30s);
    ASSERT_EQ(sink.wait_for_exit(deadline), 1) << sink.describe();  // "fail" and "kill"
    EXPECT_EQ(ventilator.wait_for_exit(deadline), 1) << ventilator.describe();

    const std::string output = sink.stdout_text();
    std::vector<nlohmann::json> results;
    ASSERT_NO_THROW(results = parse_json_lines(output)) << output;
    ASSERT_EQ(results.size(), payloads.size()) << output;

    std::map<std::uint64_t, nlohmann::json> by_id;
    for (const auto& result : results) {
        SCOPED_TRACE(result.dump());
        ASSERT_TRUE(result.is_object());
        for (const char* field : {"id", "status", "exit_code", "signal", "stdout", "stderr",
                                  "worker", "attempt", "duration_s", "input"}) {
            EXPECT_TRUE(result.contains(field)) << "no field " << field;
        }
        ASSERT_TRUE(result.at("id").is_number_unsigned());
        EXPECT_TRUE(result.at("status").is_string());
        EXPECT_TRUE(result.at("exit_code").is_number_integer() || result.at("exit_code").is_null());
        EXPECT_TRUE(result.at("signal").is_number_integer() || result.at("signal").is_null());
        EXPECT_TRUE(result.at("stdout").is_string());
        EXPECT_TRUE(result.at("stderr").is_string());
        ASSERT_TRUE(result.at("worker").is_string());
        const auto who = result.at("worker").get<std::string>();
        const std::string pid = ":" + std::to_string(worker.pid());
        EXPECT_TRUE(who.size() > pid.size() && who.ends_with(pid)) << "worker is HOST:PID";
        EXPECT_GE(result.at("attempt").get<std::int64_t>(), 1);
        EXPECT_TRUE(result.at("duration_s").is_number());
        EXPECT_GE(result.at("duration_s").get<double>(), 0.0);
        by_id[result.at("id").get<std::uint64_t>()] = result;
    }
    ASSERT_EQ(by_id.size(), payloads.size());

    const auto& hello = by_id.at(1);
    EXPECT_EQ(hello.at("status"), "ok");
    EXPECT_EQ(hello.at("exit_code"), 0);
    EXPECT_TRUE(hello.at("signal").is_null());
    EXPECT_EQ(hello.at("stdout"), "hello");
    EXPECT_FALSE(hello.contains("stdout_base64"));

    const auto& failed = by_id.at(2);
    EXPECT_EQ(failed.at("status"), "failed");
    EXPECT_EQ(failed.at("exit_code"), 4);
    EXPECT_TRUE(failed.at("signal").is_null());
    EXPECT_EQ(failed.at("stderr"), "it failed\n");

    const auto& killed = by_id.at(3);
    EXPECT_EQ(killed.at("status"), "failed");
    EXPECT_TRUE(killed.at("exit_code").is_null());
    EXPECT_EQ(killed.at("signal"), 9);

    for (std::uint64_t id = 4; id <= 6; ++id) {
        const auto& result = by_id.at(id);
        const std::string& payload = payloads[id - 1];
        EXPECT_EQ(result_bytes(result), payload) << result.dump();
        const bool valid_utf8 = id == 5;
        EXPECT_EQ(result.contains("stdout_base64"), !valid_utf8) << result.dump();
    }
}

}  // namespace
}  // namespace taskpipe::testing
