// What `taskpipe submit` prints for a task and the exit status it asks for (submit/report.hpp),
// as the README's table says: "0 done (with --wait: every task ok; --cancel: every task
// cancelled); 1 a task failed, errored, timed out or was lost, the head refused a request, or a
// task could not be cancelled; 4 no result: a waited task was cancelled or is unknown to the
// head, --timeout passed, or the head went away and did not come back."

#include "report.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "taskpipe/program.hpp"

namespace taskpipe {
namespace {

using Ask = Tracker::Ask;

Tracker::Task task(Ask ask, std::uint64_t id, std::string state) {
    Tracker::Task t;
    t.ask = ask;
    t.number = 1;
    t.id = id;
    TaskReport r;
    r.id = id;
    r.state = std::move(state);
    if (is_final_state(r.state) && r.state != "cancelled") r.status = r.state;
    t.report = std::move(r);
    return t;
}

Tracker::Task refused(Ask ask) {
    Tracker::Task t;
    t.ask = ask;
    t.number = 3;
    t.refused = Error{1, "conflict", "task 7 was submitted with this key and another payload", 7};
    return t;
}

Tracker::Task gave_up(Ask ask, std::string state) {
    Tracker::Task t = task(ask, 9, std::move(state));
    t.gave_up = "the --timeout passed";
    return t;
}

TEST(SubmitExitStatus, SubmittingSucceedsOnceAccepted) {
    EXPECT_EQ(exit_status(task(Ask::submit, 5, "queued"), false), kExitOk);
    EXPECT_EQ(exit_status(refused(Ask::submit), false), kExitTasksFailed);
    EXPECT_EQ(exit_status(gave_up(Ask::submit, "queued"), false), kExitGaveUp);
}

TEST(SubmitExitStatus, AWaitedTaskSaysHowItEnded) {
    EXPECT_EQ(exit_status(task(Ask::submit, 5, "ok"), true), kExitOk);
    for (const char* state : {"failed", "error", "timeout", "lost"}) {
        EXPECT_EQ(exit_status(task(Ask::submit, 5, state), true), kExitTasksFailed) << state;
        EXPECT_EQ(exit_status(task(Ask::status, 5, state), true), kExitTasksFailed) << state;
    }
    EXPECT_EQ(exit_status(task(Ask::submit, 5, "cancelled"), true), kExitGaveUp);
    EXPECT_EQ(exit_status(task(Ask::status, 5, "unknown"), true), kExitGaveUp);
    EXPECT_EQ(exit_status(gave_up(Ask::submit, "running"), true), kExitGaveUp);
}

TEST(SubmitExitStatus, AStatusAnsweredIsSuccessWhateverTheState) {
    for (const char* state : {"queued", "running", "failed", "unknown"}) {
        EXPECT_EQ(exit_status(task(Ask::status, 5, state), false), kExitOk) << state;
    }
    EXPECT_EQ(exit_status(refused(Ask::status), false), kExitTasksFailed);
}

TEST(SubmitExitStatus, ACancelSucceedsOnlyIfTheTaskIsCancelled) {
    EXPECT_EQ(exit_status(task(Ask::cancel, 5, "cancelled"), false), kExitOk);
    EXPECT_EQ(exit_status(task(Ask::cancel, 5, "running"), false), kExitTasksFailed);
    EXPECT_EQ(exit_status(task(Ask::cancel, 5, "ok"), false), kExitTasksFailed);
    EXPECT_EQ(exit_status(task(Ask::cancel, 5, "unknown"), false), kExitTasksFailed);
}

TEST(SubmitPrinting, IdsOneLineEachEmptyForARefusal) {
    EXPECT_EQ(plain_text(task(Ask::submit, 42, "queued"), Printing::ids), "42\n");
    EXPECT_EQ(plain_text(refused(Ask::submit), Printing::ids), "\n");
    EXPECT_EQ(plain_text(gave_up(Ask::submit, "queued"), Printing::ids), "\n");
}

TEST(SubmitPrinting, OutputIsTheTasksStdoutByteForByte) {
    Tracker::Task t = task(Ask::submit, 42, "failed");
    t.report->out = std::string("no newline\0\xff", 13);
    EXPECT_EQ(plain_text(t, Printing::output), t.report->out);
    EXPECT_EQ(plain_text(gave_up(Ask::submit, "running"), Printing::output), "");
}

TEST(SubmitPrinting, StatesOneLineEach) {
    EXPECT_EQ(plain_text(task(Ask::status, 42, "running"), Printing::states), "running\n");
    EXPECT_EQ(plain_text(task(Ask::cancel, 42, "cancelled"), Printing::states), "cancelled\n");
    EXPECT_EQ(plain_text(refused(Ask::status), Printing::states), "\n");
}

TEST(SubmitPrinting, JsonCarriesEveryByteEvenWhenNotUtf8) {
    Tracker::Task t = task(Ask::status, 42, "ok");
    t.report->out = "caf\xe9\n";
    t.report->exit_code = 0;
    t.report->worker = "hostb:4242";
    const std::string line = json_line(t, Printing::states);
    ASSERT_TRUE(line.ends_with("\n"));
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["id"], 42);
    EXPECT_EQ(j["state"], "ok");
    EXPECT_EQ(j["exit_code"], 0);
    EXPECT_TRUE(j["signal"].is_null());
    EXPECT_EQ(j["stdout"], "caf\xef\xbf\xbd\n");  // U+FFFD for the byte that is not UTF-8
    EXPECT_EQ(j["stdout_base64"], "Y2Fm6Qo=");
    EXPECT_EQ(j["worker"], "hostb:4242");
}

TEST(SubmitPrinting, JsonOfASubmissionIsTheHeadsAnswer) {
    Tracker::Task t = task(Ask::submit, 42, "queued");
    t.created = true;
    const auto j = nlohmann::json::parse(json_line(t, Printing::ids));
    EXPECT_EQ(j["id"], 42);
    EXPECT_EQ(j["state"], "queued");
    EXPECT_EQ(j["created"], true);
    const auto e = nlohmann::json::parse(json_line(refused(Ask::submit), Printing::ids));
    EXPECT_EQ(e["error"], "conflict");
    EXPECT_EQ(e["id"], 7);
    const auto g =
        nlohmann::json::parse(json_line(gave_up(Ask::submit, "running"), Printing::output));
    EXPECT_EQ(g["gave_up"], "the --timeout passed");
    EXPECT_EQ(g["state"], "running");
}

TEST(SubmitDiagnostics, AFailedWaitedTaskShowsItsExitCodeAndStderr) {
    Tracker::Task t = task(Ask::submit, 42, "failed");
    t.report->exit_code = 3;
    t.report->worker = "hostb:4242";
    t.report->err = "line 1\nline 2\n";
    const auto lines = diagnostics(t, true);
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(lines[0].level, LogLevel::warning);
    EXPECT_EQ(lines[0].text, "task 42 failed (exit code 3) on hostb:4242");
    EXPECT_EQ(lines[1].text, "  stderr: line 1");
    EXPECT_EQ(lines[2].text, "  stderr: line 2");
    EXPECT_TRUE(diagnostics(t, false).empty());  // not waited: a state, not a failure
}

TEST(SubmitDiagnostics, ARefusalNamesThePayloadAndTheReason) {
    const auto lines = diagnostics(refused(Ask::submit), false);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].level, LogLevel::error);
    EXPECT_EQ(lines[0].text,
              "the head refused payload 3: conflict: task 7 was submitted with this key and "
              "another payload");
}

TEST(SubmitDiagnostics, GivingUpSaysTheLastStateHeard) {
    const auto lines = diagnostics(gave_up(Ask::submit, "running"), true);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].text, "task 9 (running): gave up: the --timeout passed");
}

}  // namespace
}  // namespace taskpipe
