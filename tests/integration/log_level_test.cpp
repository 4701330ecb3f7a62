// "Logs on stderr have a consistent form (time, program, level, message) and --log-level."
#include <gtest/gtest.h>

#include <csignal>
#include <string>

#include "support/binaries.hpp"
#include "support/pipeline.hpp"
#include "support/process.hpp"
#include "support/results.hpp"
#include "support/temp_dir.hpp"

namespace taskpipe::testing {
namespace {

using namespace std::chrono_literals;

TEST(LogLevel, EveryLineOfEveryProgramHasTheOneForm) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink();
    Process& ventilator = pipeline.start_ventilator(Stdin::data("1\n2\nfail\n"));
    Process& worker = pipeline.start_worker(
        {"--log-level", "debug", "--shell", R"([ "$1" != fail ] || { echo no >&2; exit 1; })"});

    ASSERT_EQ(sink.wait_for_exit(deadline_in(30s)), 1) << sink.describe();
    ASSERT_EQ(ventilator.wait_for_exit(deadline_in(10s)), 1) << ventilator.describe();
    ASSERT_TRUE(worker.wait_for_stderr("task 3 failed after", deadline_in(10s)))
        << worker.describe();
    worker.signal(SIGTERM);
    ASSERT_EQ(worker.wait_for_exit(deadline_in(10s)), 0) << worker.describe();

    for (auto [process, name] : {std::pair<Process*, const char*>{&sink, "sink"},
                                 {&ventilator, "ventilator"},
                                 {&worker, "worker"}}) {
        for (const auto& line : split_lines(process->stderr_text())) {
            EXPECT_TRUE(is_log_line(line, name, "info") || is_log_line(line, name, "warning") ||
                        is_log_line(line, name, "debug"))
                << line;
        }
    }
    // Debug lines appear only where asked for.
    EXPECT_NE(worker.stderr_text().find(" worker debug: task 1 started (attempt 1)"),
              std::string::npos)
        << worker.describe();
    EXPECT_EQ(sink.stderr_text().find(" debug: "), std::string::npos) << sink.describe();
}

TEST(LogLevel, WarningHidesTheInformationLines) {
    // Known ipc endpoints: the sink does not log where it bound (an info line).
    TempDir dir;
    Pipeline pipeline(Endpoints::ipc(dir));
    Process& sink = pipeline.start_sink({"--log-level", "warning"});
    Process& ventilator = pipeline.start_ventilator(Stdin::data("ok\nfail\n"));
    pipeline.start_worker({"--shell", R"([ "$1" != fail ] || exit 7)"});

    ASSERT_EQ(sink.wait_for_exit(deadline_in(30s)), 1) << sink.describe();
    ASSERT_EQ(ventilator.wait_for_exit(deadline_in(10s)), 1) << ventilator.describe();
    const auto lines = split_lines(sink.stderr_text());
    ASSERT_EQ(lines.size(), 1u) << sink.stderr_text();
    EXPECT_TRUE(is_log_line(lines[0], "sink", "warning")) << lines[0];
    EXPECT_NE(lines[0].find("task 2 failed (exit code 7)"), std::string::npos) << lines[0];
}

TEST(LogLevel, AnUnknownLevelIsAUsageError) {
    for (const std::string& program : {sink_path(), ventilator_path(), worker_path()}) {
        Process process({program, "--log-level", "chatty"});
        ASSERT_EQ(process.wait_for_exit(deadline_in(10s)), 2) << process.describe();
        const auto lines = split_lines(process.stderr_text());
        ASSERT_EQ(lines.size(), 1u) << process.describe();
        EXPECT_NE(lines[0].find("--log-level must be error, warning, info or debug"),
                  std::string::npos)
            << lines[0];
    }
}

}  // namespace
}  // namespace taskpipe::testing
