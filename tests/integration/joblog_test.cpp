// The sink's --joblog and the ventilator's --resume / --resume-failed, checked from outside with
// the real programs. From the issue: "sink --joblog FILE: one line per finished task (its first
// result, or a lost record), tab-separated, with a header line written only when the file is
// new or empty"; "--resume skips every task the joblog records (any status); --resume-failed
// skips only those recorded ok and runs the others again"; and the acceptance test: a batch
// whose every process is killed with SIGKILL mid-batch, then resumed, runs each task to an `ok`
// entry exactly once across the two joblogs.
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/binaries.hpp"
#include "support/pipeline.hpp"
#include "support/process.hpp"
#include "support/results.hpp"
#include "support/temp_dir.hpp"

namespace taskpipe::testing {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;

const std::string kHeader = "id\tworker\tstart\truntime\tstatus\texit\tsignal\tattempts\tinput";

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// One joblog line, split into its columns.
struct Entry {
    std::uint64_t id = 0;
    std::vector<std::string> fields;  // all nine, id included
    const std::string& status() const { return fields.at(4); }
};

// The entries of a joblog (complete lines only), header lines left out.
std::vector<Entry> entries(const std::string& path) {
    std::string text = read_file(path);
    text.erase(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
    std::vector<Entry> result;
    for (const std::string& line : split_lines(text)) {
        if (line == kHeader) continue;
        Entry entry;
        std::size_t start = 0;
        for (;;) {
            const auto tab = line.find('\t', start);
            entry.fields.push_back(line.substr(start, tab - start));
            if (tab == std::string::npos) break;
            start = tab + 1;
        }
        entry.id = std::strtoull(entry.fields[0].c_str(), nullptr, 10);
        result.push_back(std::move(entry));
    }
    return result;
}

// The input column's bytes, unescaped (backslash, \t, \n, \r, \xHH).
std::string unescape(const std::string& field) {
    std::string out;
    for (std::size_t i = 0; i < field.size(); ++i) {
        if (field[i] != '\\' || i + 1 == field.size()) {
            out += field[i];
            continue;
        }
        const char c = field[++i];
        if (c == 't') {
            out += '\t';
        } else if (c == 'n') {
            out += '\n';
        } else if (c == 'r') {
            out += '\r';
        } else if (c == 'x' && i + 2 < field.size()) {
            out += static_cast<char>(std::stoi(field.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            out += c;
        }
    }
    return out;
}

std::string numbered_lines(int count) {
    std::string input;
    for (int i = 1; i <= count; ++i) input += std::to_string(i) + "\n";
    return input;
}

std::string worker_name(const Process& worker) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    return std::string(host) + ":" + std::to_string(worker.pid());
}

// "One line per finished task ... Columns, in this order: id, worker, start, runtime, status,
// exit, signal, attempts, input", the input escaped so that tabs and newlines cannot break a line.
TEST(Joblog, RecordsEachTaskOnceWithItsOutcomeAndEscapedInput) {
    TempDir dir;
    const std::string joblog = dir.file("jobs.tsv");
    const std::vector<std::string> payloads = {
        "ok plain", "fail\twith tab", "back\\slash", "new\nline",
        "cr\r",     "ctl\x01\x7f",    "sig",         "caf\xc3\xa9 $(x) \"q\""};
    std::string input;
    for (const auto& p : payloads) input += p + '\0';

    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--joblog", joblog});
    Process& ventilator = pipeline.start_ventilator(Stdin::data(input), {"-0"});
    Process& worker = pipeline.start_worker(
        {"--shell", "case \"$1\" in fail*) exit 3;; sig) kill -KILL $$;; esac; printf %s \"$1\""});
    const auto deadline = deadline_in(60s);
    EXPECT_EQ(sink.wait_for_exit(deadline), 1) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline), 1) << ventilator.describe();

    const std::string text = read_file(joblog);
    ASSERT_EQ(text.substr(0, kHeader.size() + 1), kHeader + "\n") << text;
    const auto found = entries(joblog);
    ASSERT_EQ(found.size(), payloads.size()) << text;
    const double now = static_cast<double>(std::time(nullptr));
    std::set<std::uint64_t> ids;
    for (const Entry& e : found) {
        ASSERT_EQ(e.fields.size(), 9u) << text;
        ASSERT_TRUE(e.id >= 1 && e.id <= payloads.size()) << text;
        EXPECT_TRUE(ids.insert(e.id).second) << "id " << e.id << " twice\n" << text;
        const std::string& payload = payloads[e.id - 1];
        EXPECT_EQ(e.fields[1], worker_name(worker));
        const double start = std::stod(e.fields[2]);
        EXPECT_GT(start, now - 600) << e.fields[2];
        EXPECT_LT(start, now + 60) << e.fields[2];
        EXPECT_EQ(e.fields[2].size() - e.fields[2].find('.'), 4u) << "3 decimals: " << e.fields[2];
        EXPECT_GE(std::stod(e.fields[3]), 0.0);
        EXPECT_EQ(e.fields[7], "1");
        EXPECT_EQ(unescape(e.fields[8]), payload) << e.fields[8];
        if (payload.starts_with("fail")) {
            EXPECT_EQ(e.status(), "failed");
            EXPECT_EQ(e.fields[5], "3");
            EXPECT_EQ(e.fields[6], "-");
        } else if (payload == "sig") {
            EXPECT_EQ(e.status(), "failed");
            EXPECT_EQ(e.fields[5], "-");
            EXPECT_EQ(e.fields[6], std::to_string(SIGKILL));
        } else {
            EXPECT_EQ(e.status(), "ok") << payload;
            EXPECT_EQ(e.fields[5], "0");
            EXPECT_EQ(e.fields[6], "-");
        }
    }
    // The escaped forms, exactly as documented.
    EXPECT_NE(text.find("\tfail\\twith tab\n"), std::string::npos) << text;
    EXPECT_NE(text.find("\tback\\\\slash\n"), std::string::npos) << text;
    EXPECT_NE(text.find("\tnew\\nline\n"), std::string::npos) << text;
    EXPECT_NE(text.find("\tcr\\r\n"), std::string::npos) << text;
    EXPECT_NE(text.find("\tctl\\x01\\x7f\n"), std::string::npos) << text;
}

// Issue acceptance: "kill -9 the sink, the ventilator and every worker mid-batch; re-run the whole
// pipeline with the same input and ventilator --resume JOBLOG: across the two joblogs every task
// id 1..N has exactly one ok entry, none is missing, the second run did not run the tasks the
// first recorded, and the second run exits 0." The second run writes a second joblog.
TEST(Joblog, ABatchKilledMidwayAndResumedRunsEveryTaskOnceToOk) {
    constexpr int kTasks = 400;
    TempDir dir;
    const std::string first = dir.file("run1.tsv");
    const std::string second = dir.file("run2.tsv");
    const std::string input = numbered_lines(kTasks);
    const std::vector<std::string> handler = {"-c", "2", "--shell", "sleep 0.015; echo \"$1\""};

    {
        Pipeline pipeline;
        Process& sink = pipeline.start_sink({"--joblog", first});
        Process& ventilator = pipeline.start_ventilator(Stdin::data(input));
        pipeline.start_worker(handler);
        pipeline.start_worker(handler);
        ASSERT_TRUE(wait_for([&] { return entries(first).size() >= 40; }, deadline_in(60s)))
            << sink.describe();
        sink.signal(SIGKILL);
        ventilator.signal(SIGKILL);
        for (const auto& worker : pipeline.workers()) worker->signal(SIGKILL);
        EXPECT_EQ(sink.wait_for_exit(deadline_in(10s)), 128 + SIGKILL);
        EXPECT_EQ(ventilator.wait_for_exit(deadline_in(10s)), 128 + SIGKILL);
        for (const auto& worker : pipeline.workers()) {
            EXPECT_EQ(worker->wait_for_exit(deadline_in(10s)), 128 + SIGKILL);
        }
    }
    const auto run1 = entries(first);
    ASSERT_LT(run1.size(), static_cast<std::size_t>(kTasks)) << "the batch ended before the kill";

    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--joblog", second});
    Process& ventilator = pipeline.start_ventilator(Stdin::data(input), {"--resume", first});
    pipeline.start_worker(handler);
    pipeline.start_worker(handler);
    const auto deadline = deadline_in(90s);
    ASSERT_EQ(sink.wait_for_exit(deadline), 0) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline), 0) << ventilator.describe();
    EXPECT_TRUE(sink.wait_for_stderr(
        std::to_string(run1.size()) + " skipped (finished in an earlier run)", deadline_in(1s)))
        << sink.describe();
    EXPECT_TRUE(ventilator.wait_for_stderr(", " + std::to_string(run1.size()) + " skipped",
                                           deadline_in(1s)))
        << ventilator.describe();

    const auto run2 = entries(second);
    EXPECT_EQ(run1.size() + run2.size(), static_cast<std::size_t>(kTasks));
    std::map<std::uint64_t, int> ok;
    std::set<std::uint64_t> in_run1;
    for (const Entry& e : run1) {
        in_run1.insert(e.id);
        if (e.status() == "ok") ++ok[e.id];
    }
    for (const Entry& e : run2) {
        EXPECT_FALSE(in_run1.contains(e.id)) << "task " << e.id << " ran again";
        if (e.status() == "ok") ++ok[e.id];
    }
    std::vector<std::uint64_t> wrong;
    for (std::uint64_t id = 1; id <= kTasks; ++id) {
        if (ok[id] != 1) wrong.push_back(id);
    }
    EXPECT_TRUE(wrong.empty()) << wrong.size() << " ids without exactly one ok entry, the first "
                               << wrong.front();
    EXPECT_EQ(ok.size(), static_cast<std::size_t>(kTasks));
    // The sink wrote the output of the tasks it ran, and nothing for the skipped ones.
    EXPECT_EQ(split_lines(sink.stdout_text()).size(), run2.size());
}

// "--resume-failed skips only those recorded ok and runs the others again"; runs appended to one
// joblog share its single header; and with plain --resume "a batch whose earlier run had
// failures still exits 1".
TEST(Joblog, ResumeFailedRunsAgainOnlyTheTasksThatFailed) {
    constexpr int kTasks = 20;
    TempDir dir;
    const std::string joblog = dir.file("jobs.tsv");
    const std::string first_copy = dir.file("run1.tsv");
    const std::string marker = dir.file("marker");
    std::ofstream(marker) << "fail\n";
    const std::string input = numbered_lines(kTasks);
    const std::vector<std::string> handler = {
        "--shell",
        "if [ -e '" + marker + "' ] && [ $(( $1 % 4 )) -eq 0 ]; then exit 3; fi; echo \"$1\""};
    const std::set<std::uint64_t> failing = {4, 8, 12, 16, 20};

    {
        Pipeline pipeline;
        Process& sink = pipeline.start_sink({"--joblog", joblog});
        Process& ventilator = pipeline.start_ventilator(Stdin::data(input));
        pipeline.start_worker(handler);
        const auto deadline = deadline_in(60s);
        EXPECT_EQ(sink.wait_for_exit(deadline), 1) << sink.describe();
        EXPECT_EQ(ventilator.wait_for_exit(deadline), 1) << ventilator.describe();
    }
    const auto run1 = entries(joblog);
    ASSERT_EQ(run1.size(), static_cast<std::size_t>(kTasks)) << read_file(joblog);
    for (const Entry& e : run1) {
        EXPECT_EQ(e.status(), failing.contains(e.id) ? "failed" : "ok") << e.id;
    }
    std::filesystem::copy_file(joblog, first_copy);
    std::filesystem::remove(marker);

    {
        Pipeline pipeline;
        Process& sink = pipeline.start_sink({"--joblog", joblog});
        Process& ventilator =
            pipeline.start_ventilator(Stdin::data(input), {"--resume-failed", joblog});
        pipeline.start_worker(handler);
        const auto deadline = deadline_in(60s);
        EXPECT_EQ(sink.wait_for_exit(deadline), 0) << sink.describe();
        EXPECT_EQ(ventilator.wait_for_exit(deadline), 0) << ventilator.describe();
        const Tally tally = tally_lines(sink.stdout_text(), {"4", "8", "12", "16", "20"});
        EXPECT_TRUE(tally.exact()) << tally.describe();
    }
    const std::string text = read_file(joblog);
    EXPECT_EQ(text.find(kHeader), 0u);
    EXPECT_EQ(text.find(kHeader, 1), std::string::npos) << "a second header\n" << text;
    const auto all = entries(joblog);
    ASSERT_EQ(all.size(), static_cast<std::size_t>(kTasks) + failing.size()) << text;
    std::set<std::uint64_t> rerun;
    for (std::size_t i = kTasks; i < all.size(); ++i) {
        EXPECT_EQ(all[i].status(), "ok");
        rerun.insert(all[i].id);
    }
    EXPECT_EQ(rerun, failing);

    // Plain --resume on the first run's joblog runs nothing, but remembers the failures.
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--joblog", first_copy});
    Process& ventilator = pipeline.start_ventilator(Stdin::data(input), {"--resume", first_copy});
    const auto deadline = deadline_in(60s);
    EXPECT_EQ(sink.wait_for_exit(deadline), 1) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline), 1) << ventilator.describe();
    EXPECT_EQ(sink.stdout_text(), "");
    EXPECT_EQ(entries(first_copy).size(), static_cast<std::size_t>(kTasks));
    EXPECT_NE(sink.stderr_text().find("20 tasks, 0 failed, 0 lost"), std::string::npos)
        << sink.stderr_text();
}

// README, Joblog and resume: "a last line cut short (no newline) is ignored and its task runs
// again", and the resumed run may append to the same joblog. Its first line must not be glued to
// the fragment: that line would be lost, and the joblog malformed for the next --resume.
TEST(Joblog, ResumingIntoAJoblogWhoseLastLineWasCutShortKeepsItWellFormed) {
    TempDir dir;
    const std::string joblog = dir.file("jobs.tsv");
    std::ofstream(joblog) << kHeader << "\n"
                          << "1\thost:1\t1700000000.000\t0.010\tok\t0\t-\t1\t1\n"
                          << "2\thost:1\t1700000000.0";  // the crash
    const std::string input = numbered_lines(4);
    {
        Pipeline pipeline;
        Process& sink = pipeline.start_sink({"--joblog", joblog});
        Process& ventilator = pipeline.start_ventilator(Stdin::data(input), {"--resume", joblog});
        pipeline.start_worker({"--builtin", "echo"});
        const auto deadline = deadline_in(60s);
        ASSERT_EQ(sink.wait_for_exit(deadline), 0) << sink.describe();
        ASSERT_EQ(ventilator.wait_for_exit(deadline), 0) << ventilator.describe();
        EXPECT_TRUE(tally_lines(sink.stdout_text(), {"2", "3", "4"}).exact()) << sink.describe();
    }
    const auto found = entries(joblog);
    std::map<std::uint64_t, int> ok;
    for (const Entry& e : found) {
        EXPECT_EQ(e.fields.size(), 9u) << read_file(joblog);
        if (e.fields.size() == 9 && e.status() == "ok") ++ok[e.id];
    }
    EXPECT_EQ(ok, (std::map<std::uint64_t, int>{{1, 1}, {2, 1}, {3, 1}, {4, 1}}))
        << read_file(joblog);

    // And the joblog still reads back: resuming again runs nothing.
    Pipeline pipeline;
    Process& sink = pipeline.start_sink();
    Process& ventilator = pipeline.start_ventilator(Stdin::data(input), {"--resume", joblog});
    const auto deadline = deadline_in(60s);
    EXPECT_EQ(ventilator.wait_for_exit(deadline), 0) << ventilator.describe();
    EXPECT_EQ(sink.wait_for_exit(deadline), 0) << sink.describe();
    EXPECT_EQ(sink.stdout_text(), "");
}

// "When the input record for a skipped id differs from the joblog's input ... log an error naming
// the id and both values, stop reading further input, let the tasks already read complete, and
// exit 2."
TEST(Joblog, ResumeWithAnotherInputStopsAtTheFirstDifferenceAndExits2) {
    TempDir dir;
    const std::string joblog = dir.file("jobs.tsv");
    std::ofstream(joblog) << kHeader << "\n"
                          << "1\thost:1\t1700000000.000\t0.010\tok\t0\t-\t1\ttask-1\n"
                          << "2\thost:1\t1700000000.000\t0.010\tok\t0\t-\t1\ttask-2\n"
                          << "3\thost:1\t1700000000.000\t0.010\tfailed\t1\t-\t1\ttask-3\n"
                          << "8\thost:1\t1700000000.000\t0.010\tok\t0\t-\t1\told\\t8\n";
    std::string input;
    for (int i = 1; i <= 12; ++i) input += "task-" + std::to_string(i) + "\n";

    Pipeline pipeline;
    Process& sink = pipeline.start_sink();
    Process& ventilator = pipeline.start_ventilator(Stdin::data(input), {"--resume", joblog});
    pipeline.start_worker({"--builtin", "echo"});
    const auto deadline = deadline_in(60s);
    EXPECT_EQ(ventilator.wait_for_exit(deadline), 2) << ventilator.describe();
    EXPECT_NE(ventilator.stderr_text().find(
                  "task 8: the input \"task-8\" differs from the joblog's \"old\\t8\""),
              std::string::npos)
        << ventilator.stderr_text();
    // Tasks 4 to 7 were read before the difference and still complete; 3 failed in the earlier run.
    EXPECT_EQ(sink.wait_for_exit(deadline), 1) << sink.describe();
    const Tally tally = tally_lines(sink.stdout_text(), {"task-4", "task-5", "task-6", "task-7"});
    EXPECT_TRUE(tally.exact()) << tally.describe();
    EXPECT_NE(sink.stderr_text().find("7 tasks, 0 failed, 0 lost"), std::string::npos)
        << sink.stderr_text();
    EXPECT_NE(sink.stderr_text().find("3 skipped (finished in an earlier run)"), std::string::npos)
        << sink.stderr_text();
}

// "A missing file: start-up error, exit 2 with a clear message"; the two options exclude each
// other.
TEST(Joblog, AMissingJoblogOrBothResumeOptionsAreStartupErrors) {
    TempDir dir;
    const std::string missing = dir.file("missing.tsv");
    Process absent({ventilator_path(), "-b", "tcp://127.0.0.1:*", "-s", "tcp://127.0.0.1:1",
                    "--resume", missing});
    EXPECT_EQ(absent.wait_for_exit(deadline_in(10s)), 2) << absent.describe();
    EXPECT_NE(absent.stderr_text().find("cannot read the joblog " + missing), std::string::npos)
        << absent.describe();

    std::ofstream(dir.file("bad.tsv")) << kHeader << "\n1\tonly three\tfields\n";
    Process malformed({ventilator_path(), "-b", "tcp://127.0.0.1:*", "-s", "tcp://127.0.0.1:1",
                       "--resume-failed", dir.file("bad.tsv")});
    EXPECT_EQ(malformed.wait_for_exit(deadline_in(10s)), 2) << malformed.describe();
    EXPECT_NE(malformed.stderr_text().find(dir.file("bad.tsv") + ":2:"), std::string::npos)
        << malformed.describe();

    Process both({ventilator_path(), "--resume", missing, "--resume-failed", missing});
    EXPECT_EQ(both.wait_for_exit(deadline_in(10s)), 2) << both.describe();
    EXPECT_NE(both.stderr_text().find("mutually exclusive"), std::string::npos) << both.describe();

    Process sink({sink_path(), "--bind", "tcp://127.0.0.1:*", "--control", "tcp://127.0.0.1:*",
                  "--joblog", dir.file("no/such/dir/jobs.tsv")});
    EXPECT_EQ(sink.wait_for_exit(deadline_in(10s)), 2) << sink.describe();
    EXPECT_NE(sink.stderr_text().find("cannot open the joblog"), std::string::npos)
        << sink.describe();
}

}  // namespace
}  // namespace taskpipe::testing
