// Service mode (docs/protocol.md, "Service mode"; issue 13) with the real programs: a head
// (`ventilator --serve`), a `sink --serve` writing --jsonl and workers, on ipc:// endpoints in a
// TempDir, and producers speaking the protocol with its own codec (support/producer.hpp).
//
// "Exactly one recorded result" is checked three ways: each id appears once in the sink's
// --jsonl output (the sink writes only what the head recorded), the producer's done and state
// for an id agree, and the head's SQLite store, opened read-only once the head has stopped,
// holds one result per task.
#include <fcntl.h>
#include <linux/fs.h>
#include <sqlite3.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "support/binaries.hpp"
#include "support/census.hpp"
#include "support/crowd.hpp"
#include "support/process.hpp"
#include "support/producer.hpp"
#include "support/results.hpp"
#include "support/small_disk.hpp"
#include "support/temp_dir.hpp"

namespace taskpipe::testing {
namespace {

using namespace std::chrono_literals;

// A service on ipc:// endpoints inside a TempDir: heads, sinks and workers started as the test
// likes (a restarted head or sink uses the same endpoints), a store in the directory.
class Service {
  public:
    std::string listen() const { return dir_.ipc_endpoint("head"); }
    std::string store() const { return dir_.file("tasks.db"); }
    const TempDir& dir() const { return dir_; }

    // `sink --serve --jsonl`, on the service's results and control endpoints.
    Process& start_sink(const std::vector<std::string>& extra = {}) {
        std::vector<std::string> argv = {sink_path(),         "--serve",   "--bind",
                                         endpoint("results"), "--control", endpoint("control"),
                                         "--jsonl",           "--quiet"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        sinks_.push_back(std::make_unique<Process>(std::move(argv)));
        return *sinks_.back();
    }

    // `ventilator --serve` with --store (unless `store` is false) and a 1 s liveness timeout
    // (unless `liveness` says otherwise), so that faults are recovered from quickly.
    Process& start_head(const std::vector<std::string>& extra = {}, bool store = true,
                        const std::string& liveness = "1") {
        std::vector<std::string> argv = {ventilator_path(),
                                         "--serve",
                                         "--listen",
                                         listen(),
                                         "--bind",
                                         endpoint("tasks"),
                                         "--sink",
                                         endpoint("control"),
                                         "--liveness-timeout",
                                         liveness};
        if (store) argv.insert(argv.end(), {"--store", this->store()});
        argv.insert(argv.end(), extra.begin(), extra.end());
        heads_.push_back(std::make_unique<Process>(std::move(argv)));
        return *heads_.back();
    }

    // A worker with `concurrency` slots running `handler` (e.g. {"--builtin", "echo"}).
    Process& start_worker(const std::vector<std::string>& handler, int concurrency = 2) {
        std::vector<std::string> argv = {worker_path(),
                                         "-v",
                                         endpoint("tasks"),
                                         "-s",
                                         endpoint("results"),
                                         "--heartbeat",
                                         "0.2",
                                         "-c",
                                         std::to_string(concurrency)};
        argv.insert(argv.end(), handler.begin(), handler.end());
        workers_.push_back(std::make_unique<Process>(std::move(argv)));
        return *workers_.back();
    }

    // A sink, a head and one worker; returns once the sink has taken the head's batch.
    void start(const std::vector<std::string>& handler = {"--builtin", "echo"},
               const std::vector<std::string>& head_options = {}, int concurrency = 2) {
        start_sink();
        start_head(head_options);
        start_worker(handler, concurrency);
        ASSERT_TRUE(served(head())) << logs();
    }

    // Whether the sink took `head`'s batch within 20 s.
    bool served(Process& head) {
        return head.wait_for_stderr("the sink took the service's batch", deadline_in(20s))
            .has_value();
    }

    Process& head() { return *heads_.back(); }
    Process& sink() { return *sinks_.back(); }

    // Every sink's output, in the order they ran.
    std::string sink_output() const {
        std::string out;
        for (const auto& sink : sinks_) out += sink->stdout_text();
        return out;
    }

    // The stderr of every program, for failure messages.
    std::string logs() const {
        std::string text;
        for (const auto& list : {&heads_, &sinks_, &workers_}) {
            for (const auto& p : *list) text += p->describe() + "\n";
        }
        return text;
    }

  private:
    std::string endpoint(const char* name) const { return dir_.ipc_endpoint(name); }

    TempDir dir_;
    // Declared so that workers die first.
    std::vector<std::unique_ptr<Process>> sinks_;
    std::vector<std::unique_ptr<Process>> heads_;
    std::vector<std::unique_ptr<Process>> workers_;
};

bool is_final(const std::string& state) {
    return state != "delayed" && state != "queued" && state != "running" && state != "unknown";
}

// The answer's id if it is an `accepted`, else 0.
std::uint64_t accepted_id(const std::optional<ToProducer>& answer) {
    const auto* a = as<Accepted>(answer);
    return a != nullptr ? a->id : 0;
}

// Whether the programs' RSS says anything: not under AddressSanitizer, whose shadow memory and
// quarantine make it meaningless (.ci/run leaves the other peak-RSS tests out of that run).
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kRssMeaningful = false;
#else
constexpr bool kRssMeaningful = true;
#endif

// `kib` as a bound on a peak RSS, or no bound where RSS means nothing.
long rss_bound(long kib) { return kRssMeaningful ? kib : std::numeric_limits<long>::max(); }

// The head's peak resident set size (VmHWM) in KiB; 0 once it has exited.
long peak_rss(const Process& process) {
    std::ifstream status("/proc/" + std::to_string(process.pid()) + "/status");
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    }
    return 0;
}

// Submits tasks with `payload(i)` for i in [0, count), keeping at most `outstanding`
// unanswered; returns the ids accepted, in order (0 for one that was not).
template <typename Payload>
std::vector<std::uint64_t> submit_all(Producer& producer, std::size_t count, Payload payload,
                                      Deadline deadline, std::size_t outstanding = 2000) {
    std::vector<std::uint64_t> reqs;
    std::vector<std::uint64_t> ids(count, 0);
    std::size_t answered = 0;
    for (std::size_t i = 0; i < count || answered < count;) {
        while (i < count && i - answered < outstanding) {
            reqs.push_back(producer.submit(Submit{.payload = payload(i)}));
            ++i;
        }
        const auto answer = producer.answer(reqs[answered], deadline);
        if (!answer) break;
        ids[answered++] = accepted_id(answer);
    }
    return ids;
}

// ---- Submitting and asking.

// "Answered with accepted ... A producer ... receives the done messages of the tasks it
// submitted." The state asked for later is the same report.
TEST(ServiceMode, ASubmittedTaskIsAcceptedRunAndAnswered) {
    Service service;
    service.start();
    Producer producer(service.listen());

    const auto answer = producer.ask(Submit{.payload = "hello"}, deadline_in(20s));
    const auto* accepted = as<Accepted>(answer);
    ASSERT_NE(accepted, nullptr) << describe(answer) << service.logs();
    EXPECT_TRUE(accepted->created);
    EXPECT_EQ(accepted->id, 1u) << "ids are 1, 2, 3... in the order the head accepts them";
    EXPECT_NE(accepted->head, 0u);
    EXPECT_FALSE(is_final(accepted->state)) << accepted->state;

    const auto done = producer.done(accepted->id, deadline_in(20s));
    ASSERT_TRUE(done) << service.logs();
    EXPECT_EQ(done->state, "ok");
    EXPECT_EQ(done->status, "ok");
    EXPECT_EQ(done->out, "hello\n");
    EXPECT_EQ(done->exit_code, 0);
    EXPECT_EQ(done->attempts, 1u);
    EXPECT_TRUE(done->worker && !done->worker->empty());
    EXPECT_EQ(done->head, accepted->head);
    EXPECT_GE(done->finished_us, done->submitted_us);

    const auto asked = producer.ask(Query{.id = accepted->id}, deadline_in(10s));
    const auto* state = as<State>(asked);
    ASSERT_NE(state, nullptr) << describe(asked);
    EXPECT_EQ(static_cast<const TaskReport&>(*state), static_cast<const TaskReport&>(*done))
        << describe(asked) << "\n"
        << describe(ToProducer(*done));

    ASSERT_TRUE(wait_for([&] { return results_written(service.sink()) >= 1; }, deadline_in(10s)));
    const Census census = take_census(service.sink().stdout_text(), 1);
    EXPECT_TRUE(census.exact()) << census.describe();
    EXPECT_EQ(result_bytes(census.results.at(1)), "hello\n");
}

// "key: while a task submitted with this key is kept, the same key again returns that task
// (same payload) or an error conflict (another payload), and nothing runs twice."
TEST(ServiceMode, ASubmissionWithAKnownKeyReturnsThatTaskAndAnotherPayloadConflicts) {
    Service service;
    service.start({"--builtin", "sleep"});
    Producer first(service.listen());
    Producer second(service.listen());

    const auto a = first.ask(Submit{.payload = "300", .key = "order-17"}, deadline_in(20s));
    const auto b = second.ask(Submit{.payload = "300", .key = "order-17"}, deadline_in(20s));
    ASSERT_NE(as<Accepted>(a), nullptr) << describe(a) << service.logs();
    ASSERT_NE(as<Accepted>(b), nullptr) << describe(b);
    const std::uint64_t id = as<Accepted>(a)->id;
    EXPECT_TRUE(as<Accepted>(a)->created);
    EXPECT_FALSE(as<Accepted>(b)->created) << describe(b);
    EXPECT_EQ(as<Accepted>(b)->id, id);

    const auto conflict = second.ask(Submit{.payload = "301", .key = "order-17"}, deadline_in(10s));
    const auto* error = as<Error>(conflict);
    ASSERT_NE(error, nullptr) << describe(conflict);
    EXPECT_EQ(error->code, "conflict");
    EXPECT_EQ(error->id, id);
    EXPECT_FALSE(error->message.empty());

    // Both producers hear of the one task; the duplicate created nothing.
    const auto done_first = first.done(id, deadline_in(20s));
    const auto done_second = second.done(id, deadline_in(20s));
    ASSERT_TRUE(done_first && done_second) << service.logs();
    EXPECT_EQ(done_first->state, "ok");
    EXPECT_EQ(done_first->key, "order-17");
    EXPECT_EQ(static_cast<const TaskReport&>(*done_first),
              static_cast<const TaskReport&>(*done_second));
    const auto next = first.ask(Query{.id = id + 1}, deadline_in(10s));
    ASSERT_NE(as<State>(next), nullptr) << describe(next);
    EXPECT_EQ(as<State>(next)->state, "unknown") << "the duplicate or the conflict made a task";

    // Once finished, the key still names it; asked by key, the state is the task's.
    const auto again = first.ask(Submit{.payload = "300", .key = "order-17"}, deadline_in(10s));
    ASSERT_NE(as<Accepted>(again), nullptr) << describe(again);
    EXPECT_EQ(as<Accepted>(again)->id, id);
    EXPECT_FALSE(as<Accepted>(again)->created);
    EXPECT_EQ(as<Accepted>(again)->state, "ok");
    const auto by_key = first.ask(Query{.key = "order-17"}, deadline_in(10s));
    ASSERT_NE(as<State>(by_key), nullptr) << describe(by_key);
    EXPECT_EQ(as<State>(by_key)->id, id);
    EXPECT_EQ(as<State>(by_key)->state, "ok");

    ASSERT_TRUE(wait_for([&] { return results_written(service.sink()) >= 1; }, deadline_in(10s)));
    const Census census = take_census(service.sink().stdout_text(), id);
    EXPECT_TRUE(census.exact()) << census.describe();
}

// "delay_ms: run no earlier than this many milliseconds after acceptance"; until then the task
// is `delayed`.
TEST(ServiceMode, ADelayedTaskRunsNoEarlierThanItsDelay) {
    Service service;
    service.start();
    Producer producer(service.listen());
    constexpr std::uint64_t kDelayMs = 1500;

    const auto answer =
        producer.ask(Submit{.payload = "later", .delay_ms = kDelayMs}, deadline_in(20s));
    const std::uint64_t id = accepted_id(answer);
    ASSERT_NE(id, 0u) << describe(answer) << service.logs();
    EXPECT_EQ(as<Accepted>(answer)->state, "delayed");
    const auto asked = producer.ask(Query{.id = id}, deadline_in(10s));
    ASSERT_NE(as<State>(asked), nullptr) << describe(asked);
    EXPECT_EQ(as<State>(asked)->state, "delayed");

    const auto done = producer.done(id, deadline_in(20s));
    ASSERT_TRUE(done) << service.logs();
    EXPECT_EQ(done->state, "ok");
    EXPECT_GE(done->started_us, done->submitted_us + kDelayMs * 1000)
        << "started " << (done->started_us - done->submitted_us) / 1000 << " ms after acceptance";
}

// "cancel: cancelled if the task had not been sent to a worker (or was cancelled already), its
// current state otherwise (a running or finished task is not cancelled), unknown for an id the
// head does not know. The producers with notify get a done for a cancelled task."
TEST(ServiceMode, CancelStopsQueuedAndDelayedTasksButNotARunningOne) {
    Service service;
    service.start({"--builtin", "sleep"}, {}, /*concurrency=*/1);
    Producer producer(service.listen());

    const std::uint64_t running =
        accepted_id(producer.ask(Submit{.payload = "2000"}, deadline_in(20s)));
    ASSERT_NE(running, 0u) << service.logs();
    ASSERT_TRUE(wait_for(
        [&] {
            const auto s = producer.ask(Query{.id = running}, deadline_in(5s));
            return as<State>(s) != nullptr && as<State>(s)->state == "running";
        },
        deadline_in(20s)))
        << service.logs();
    // The one slot is busy: these wait. The worker may hold a few beside its slot (they are
    // sent: running); the last of 20 is still at the head.
    const std::vector<std::uint64_t> ahead = submit_all(
        producer, 19, [](std::size_t) { return "10"; }, deadline_in(10s));
    for (const std::uint64_t id : ahead) ASSERT_NE(id, 0u);
    const auto queued_answer = producer.ask(Submit{.payload = "10"}, deadline_in(10s));
    const auto delayed_answer =
        producer.ask(Submit{.payload = "10", .delay_ms = 60'000}, deadline_in(10s));
    const std::uint64_t queued = accepted_id(queued_answer);
    const std::uint64_t delayed = accepted_id(delayed_answer);
    ASSERT_NE(queued, 0u) << describe(queued_answer);
    ASSERT_NE(delayed, 0u) << describe(delayed_answer);
    EXPECT_EQ(as<Accepted>(queued_answer)->state, "queued");
    EXPECT_EQ(as<Accepted>(delayed_answer)->state, "delayed");

    auto cancel = [&](std::uint64_t id) {
        const auto answer = producer.ask_cancel(id, deadline_in(10s));
        const auto* state = as<State>(answer);
        return state != nullptr ? state->state : describe(answer);
    };
    EXPECT_EQ(cancel(queued), "cancelled");
    EXPECT_EQ(cancel(delayed), "cancelled");
    EXPECT_EQ(cancel(queued), "cancelled") << "cancelled already";
    EXPECT_EQ(cancel(running), "running") << "a running task is not cancelled";
    EXPECT_EQ(cancel(delayed + 1000), "unknown");

    for (const std::uint64_t id : {queued, delayed}) {
        const auto done = producer.done(id, deadline_in(10s));
        ASSERT_TRUE(done) << id;
        EXPECT_EQ(done->state, "cancelled");
        EXPECT_EQ(done->attempts, 0u);
        EXPECT_NE(done->finished_us, 0u);
    }
    const auto done = producer.done(running, deadline_in(20s));
    ASSERT_TRUE(done) << service.logs();
    EXPECT_EQ(done->state, "ok");

    // Only the tasks that ran are written; the cancelled ones stay cancelled.
    for (const std::uint64_t id : ahead) ASSERT_TRUE(producer.done(id, deadline_in(20s))) << id;
    ASSERT_TRUE(wait_for([&] { return results_written(service.sink()) >= 20; }, deadline_in(10s)));
    const auto after = producer.ask(Query{.id = queued}, deadline_in(10s));
    ASSERT_NE(as<State>(after), nullptr) << describe(after);
    EXPECT_EQ(as<State>(after)->state, "cancelled");
    const Census census = take_census(service.sink().stdout_text(), delayed);
    EXPECT_EQ(census.results.size(), 20u) << census.describe();
    EXPECT_TRUE(census.results.contains(running)) << census.describe();
    EXPECT_FALSE(census.results.contains(queued)) << census.describe();
    EXPECT_FALSE(census.results.contains(delayed)) << census.describe();
}

// The same while no worker is connected: every task is queued, none was sent, so each can be
// cancelled, and none runs once a worker comes.
TEST(ServiceMode, TasksQueuedWhileNoWorkerIsConnectedCanBeCancelled) {
    Service service;
    service.start_sink();
    service.start_head();
    ASSERT_TRUE(service.served(service.head())) << service.logs();
    Producer producer(service.listen());

    std::vector<std::uint64_t> ids;
    for (int i = 0; i < 3; ++i) {
        const auto answer = producer.ask(Submit{.payload = "never"}, deadline_in(10s));
        ids.push_back(accepted_id(answer));
        ASSERT_NE(ids.back(), 0u) << describe(answer);
        EXPECT_EQ(as<Accepted>(answer)->state, "queued");
    }
    for (const std::uint64_t id : ids) {
        const auto answer = producer.ask_cancel(id, deadline_in(10s));
        ASSERT_NE(as<State>(answer), nullptr) << describe(answer);
        EXPECT_EQ(as<State>(answer)->state, "cancelled") << describe(answer) << service.logs();
    }

    service.start_worker({"--builtin", "echo"});
    const std::uint64_t last =
        accepted_id(producer.ask(Submit{.payload = "run"}, deadline_in(10s)));
    ASSERT_NE(last, 0u);
    const auto done = producer.done(last, deadline_in(20s));
    ASSERT_TRUE(done) << service.logs();
    EXPECT_EQ(done->state, "ok");
    for (const std::uint64_t id : ids) {
        const auto answer = producer.ask(Query{.id = id}, deadline_in(10s));
        ASSERT_NE(as<State>(answer), nullptr) << describe(answer);
        EXPECT_EQ(as<State>(answer)->state, "cancelled") << describe(answer);
        EXPECT_EQ(as<State>(answer)->attempts, 0u) << describe(answer);
    }
    ASSERT_TRUE(wait_for([&] { return results_written(service.sink()) >= 1; }, deadline_in(10s)));
    const Census census = take_census(service.sink().stdout_text(), last);
    EXPECT_EQ(census.results.size(), 1u) << census.describe();
    EXPECT_TRUE(census.results.contains(last)) << census.describe();
}

// "An id the head never issued is unknown, never pending or queued." "For a key that names no
// task: id 0, state unknown", and "invalid" for a query with neither.
TEST(ServiceMode, AnIdNeverIssuedIsUnknown) {
    Service service;
    service.start();
    Producer producer(service.listen());
    const auto first = producer.ask(Submit{.payload = "x"}, deadline_in(20s));
    const std::uint64_t id = accepted_id(first);
    ASSERT_EQ(id, 1u) << describe(first) << service.logs();

    for (const std::uint64_t never : {id + 1, std::uint64_t{1'000'000}}) {
        const auto answer = producer.ask(Query{.id = never}, deadline_in(10s));
        const auto* state = as<State>(answer);
        ASSERT_NE(state, nullptr) << describe(answer);
        EXPECT_EQ(state->state, "unknown") << never;
        EXPECT_EQ(state->id, never);
        EXPECT_EQ(state->head, as<Accepted>(first)->head);
        // Not even while it waits: an unknown task never finishes.
        const auto waited = producer.ask(Query{.id = never, .wait_ms = 200}, deadline_in(10s));
        ASSERT_NE(as<State>(waited), nullptr) << describe(waited);
        EXPECT_EQ(as<State>(waited)->state, "unknown");
    }
    const auto by_key = producer.ask(Query{.key = "no-such-key"}, deadline_in(10s));
    ASSERT_NE(as<State>(by_key), nullptr) << describe(by_key);
    EXPECT_EQ(as<State>(by_key)->id, 0u);
    EXPECT_EQ(as<State>(by_key)->state, "unknown");
    const auto cancelled = producer.ask_cancel(999, deadline_in(10s));
    ASSERT_NE(as<State>(cancelled), nullptr) << describe(cancelled);
    EXPECT_EQ(as<State>(cancelled)->state, "unknown");
    const auto neither = producer.ask(Query{}, deadline_in(10s));
    ASSERT_NE(as<Error>(neither), nullptr) << describe(neither);
    EXPECT_EQ(as<Error>(neither)->code, "invalid");
}

// "A REQ socket also works (one request at a time, the usual empty delimiter frame; the head
// answers in the same envelope), but then done is never pushed: set notify false and ask with
// status."
TEST(ServiceMode, AReqSocketProducerIsAnsweredInItsEnvelope) {
    Service service;
    service.start();
    Producer producer(service.listen(), Producer::Socket::req);

    const auto answer =
        producer.ask(Submit{.payload = "from req", .notify = false}, deadline_in(20s));
    const std::uint64_t id = accepted_id(answer);
    ASSERT_NE(id, 0u) << describe(answer) << service.logs();
    const auto asked = producer.ask(Query{.id = id, .wait_ms = 20'000}, deadline_in(30s));
    const auto* state = as<State>(asked);
    ASSERT_NE(state, nullptr) << describe(asked) << service.logs();
    EXPECT_EQ(state->state, "ok");
    EXPECT_EQ(state->out, "from req\n");
    const auto cancelled = producer.ask_cancel(id, deadline_in(10s));
    ASSERT_NE(as<State>(cancelled), nullptr) << describe(cancelled);
    EXPECT_EQ(as<State>(cancelled)->state, "ok");
    EXPECT_TRUE(producer.dones().empty());
    EXPECT_TRUE(producer.refused().empty());
}

// "SIGTERM drains: new submissions are refused (draining), the tasks in flight are finished,
// then it exits 0. Tasks queued but not sent stay in the store for the next start."
TEST(ServiceMode, SigtermDrainsTheTasksInFlightAndKeepsTheQueuedOnesForTheNextStart) {
    Service service;
    service.start({"--builtin", "sleep"}, {}, /*concurrency=*/1);
    Producer producer(service.listen());
    const std::uint64_t running =
        accepted_id(producer.ask(Submit{.payload = "1500"}, deadline_in(20s)));
    ASSERT_NE(running, 0u) << service.logs();
    ASSERT_TRUE(wait_for(
        [&] {
            const auto s = producer.ask(Query{.id = running}, deadline_in(5s));
            return as<State>(s) != nullptr && as<State>(s)->state == "running";
        },
        deadline_in(20s)))
        << service.logs();
    const std::vector<std::uint64_t> queued = submit_all(
        producer, 3, [](std::size_t) { return "10"; }, deadline_in(10s));
    for (const std::uint64_t id : queued) ASSERT_NE(id, 0u);

    Process& first = service.head();
    ASSERT_TRUE(first.catches_signal(SIGTERM));
    first.signal(SIGTERM);
    // "waiting for the N tasks in flight": the running one, and those the head had already
    // handed to the worker's socket (the ledger's window is the workers' reported capacity).
    const auto draining = first.wait_for_stderr("draining", deadline_in(10s));
    ASSERT_TRUE(draining) << first.describe();
    const auto in_flight_at = draining->find("waiting for the ");
    ASSERT_NE(in_flight_at, std::string::npos) << *draining;
    const std::size_t in_flight = std::stoul(draining->substr(in_flight_at + 16));
    ASSERT_GE(in_flight, 1u) << *draining;
    ASSERT_LE(in_flight, 3u) << "every queued task was in flight: nothing left to keep";
    const auto refused = producer.ask(Submit{.payload = "10"}, deadline_in(10s));
    ASSERT_NE(as<Error>(refused), nullptr) << describe(refused);
    EXPECT_EQ(as<Error>(refused)->code, "draining");
    EXPECT_EQ(first.wait_for_exit(deadline_in(20s)), 0) << first.describe();
    // The tasks in flight were finished and their producer told before the head exited; the
    // others were not sent.
    const auto done = producer.done(running, deadline_in(5s));
    ASSERT_TRUE(done) << service.logs();
    EXPECT_EQ(done->state, "ok");
    producer.receive(deadline_in(100ms));
    EXPECT_EQ(producer.dones().size(), in_flight) << first.describe();
    const std::string kept = std::to_string(4 - in_flight) + " unfinished (kept in";
    EXPECT_TRUE(first.wait_for_stderr(kept, deadline_in(1s))) << kept << "\n" << first.describe();

    Process& second = service.start_head();
    ASSERT_TRUE(service.served(second)) << service.logs();
    for (const std::uint64_t id : queued) {
        const auto answer = producer.ask(Query{.id = id, .wait_ms = 20'000}, deadline_in(30s));
        ASSERT_NE(as<State>(answer), nullptr) << describe(answer) << service.logs();
        EXPECT_EQ(as<State>(answer)->state, "ok") << describe(answer);
    }
    ASSERT_TRUE(wait_for([&] { return results_written(service.sink()) >= 4; }, deadline_in(10s)));
    const Census census = take_census(service.sink().stdout_text(), 4);
    EXPECT_TRUE(census.exact()) << census.describe();
}

// The head's memory does not grow with the number of tasks that passed through it (with
// --store, finished tasks live only in the store): its peak RSS after 30,000 tasks is that after
// 10,000, within a margin. Payloads of 512 bytes, so that by 10,000 tasks the store is larger
// than SQLite's page cache (8 MiB) and the cache is full: what grows after is held per task.
TEST(ServiceMode, HeadMemoryDoesNotGrowWithTheTasksPassedThrough) {
    if (!kRssMeaningful) GTEST_SKIP() << "RSS means nothing under AddressSanitizer";
    constexpr std::size_t kFirst = 10'000;
    constexpr std::size_t kTasks = 30'000;
    constexpr std::size_t kUnfinished = 2000;  // submitted, no done yet
    Service service;
    service.start_sink();
    Process& head = service.start_head({"--store-sync", "normal"});
    for (int i = 0; i < 2; ++i) service.start_worker({"--builtin", "echo"}, 4);
    ASSERT_TRUE(service.served(head)) << service.logs();
    Producer producer(service.listen());
    const std::string padding(500, 'p');

    const auto deadline = deadline_in(60s);
    long after_first = 0;
    std::size_t sent = 0;
    while (producer.dones().size() < kTasks && Clock::now() < deadline) {
        while (sent < kTasks && sent - producer.dones().size() < kUnfinished) {
            ++sent;
            producer.submit(Submit{.payload = std::to_string(sent) + padding});
        }
        producer.receive(std::min(deadline, deadline_in(1s)));
        if (after_first == 0 && producer.dones().size() >= kFirst) after_first = peak_rss(head);
    }
    ASSERT_EQ(producer.dones().size(), kTasks) << service.logs();
    EXPECT_EQ(producer.answers_received(), kTasks);
    const long after_all = peak_rss(head);
    ASSERT_GT(after_first, 0) << "no VmHWM read";
    EXPECT_LT(after_all, after_first + 8 * 1024)
        << "peak RSS " << after_first << " KiB after " << kFirst << " tasks, " << after_all
        << " KiB after " << kTasks;
    EXPECT_TRUE(
        wait_for([&] { return results_written(service.sink()) >= kTasks; }, deadline_in(20s)));
    head.signal(SIGTERM);
    EXPECT_EQ(head.wait_for_exit(deadline_in(20s)), 0) << head.describe();
    EXPECT_EQ(results_written(service.sink()), kTasks);
    std::cout << "[ figures  ] head peak RSS: " << after_first << " KiB after " << kFirst
              << " tasks, " << after_all << " KiB after " << kTasks << "\n";
}

// ---- Faults.

// What the head's SQLite store holds, read with the sqlite3 C API (read-only) once the head has
// stopped.
struct StoreContents {
    std::int64_t tasks = -1;
    std::int64_t ok = -1;          // finished, with the status ok
    std::int64_t unfinished = -1;  // not final
    std::string error;
};

StoreContents read_store(const std::string& path) {
    StoreContents contents;
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
        contents.error = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
        sqlite3_close(db);
        return contents;
    }
    auto single = [&](const char* sql) -> std::int64_t {
        sqlite3_stmt* statement = nullptr;
        std::int64_t value = -1;
        if (sqlite3_prepare_v2(db, sql, -1, &statement, nullptr) == SQLITE_OK &&
            sqlite3_step(statement) == SQLITE_ROW) {
            value = sqlite3_column_int64(statement, 0);
        } else {
            contents.error = sqlite3_errmsg(db);
        }
        sqlite3_finalize(statement);
        return value;
    };
    contents.tasks = single("SELECT count(*) FROM tasks");
    contents.ok = single("SELECT count(*) FROM tasks WHERE state = 2 AND status = 'ok'");
    contents.unfinished = single("SELECT count(*) FROM tasks WHERE final_us IS NULL");
    sqlite3_close(db);
    return contents;
}

std::string seconds_text(Clock::duration d) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    return std::to_string(ms / 1000) + "." + std::to_string(ms % 1000 / 100) + " s";
}

// "kill -9 of the ventilator with --store while 10,000 tasks are accepted and in flight;
// restarted on the same store: every accepted task runs and has exactly one recorded result,
// and a producer asking by id after the restart gets it."
TEST(ServiceFaults, AHeadKilledWithTenThousandTasksInFlightRunsEachOnceAfterARestart) {
    constexpr std::size_t kTasks = 10'000;
    Service service;
    service.start_sink();
    Process& first = service.start_head();
    for (int i = 0; i < 2; ++i) service.start_worker({"--builtin", "sleep"}, 4);
    ASSERT_TRUE(service.served(first)) << service.logs();
    Producer producer(service.listen());

    // 10,000 tasks of 5 ms on 8 slots: about 6 s of work.
    const std::vector<std::uint64_t> ids = submit_all(
        producer, kTasks, [](std::size_t) { return "5"; }, deadline_in(30s), kTasks);
    for (std::size_t i = 0; i < kTasks; ++i) ASSERT_EQ(ids[i], i + 1) << service.logs();
    ASSERT_TRUE(
        producer.receive_until([&] { return producer.dones().size() >= 500; }, deadline_in(30s)))
        << service.logs();
    first.signal(SIGKILL);
    ASSERT_EQ(first.wait_for_exit(deadline_in(5s)), 128 + SIGKILL);
    producer.receive(deadline_in(100ms));
    const auto before = producer.dones();
    ASSERT_LT(before.size(), kTasks) << "every task had finished before the kill";

    const auto restarted = Clock::now();
    Process& second = service.start_head();
    ASSERT_TRUE(service.served(second)) << service.logs();
    std::vector<std::uint64_t> reqs;
    for (const std::uint64_t id : ids)
        reqs.push_back(producer.status(Query{.id = id, .wait_ms = 60'000}));
    std::size_t not_ok = 0;
    std::size_t changed = 0;
    for (std::size_t i = 0; i < kTasks; ++i) {
        const auto answer = producer.answer(reqs[i], deadline_in(60s));
        const auto* state = as<State>(answer);
        ASSERT_NE(state, nullptr) << "task " << ids[i] << ": " << describe(answer)
                                  << service.logs();
        if (state->state != "ok") {
            if (++not_ok <= 5) ADD_FAILURE() << describe(answer);
            continue;
        }
        // What the producer was told before the kill is what the store kept.
        if (const auto it = before.find(ids[i]); it != before.end()) {
            const Done& done = it->second.front();
            if (done.worker != state->worker || done.started_us != state->started_us) {
                if (++changed <= 5)
                    ADD_FAILURE() << describe(ToProducer(done)) << " then " << describe(answer);
            }
        }
    }
    const auto recovered = Clock::now() - restarted;
    EXPECT_EQ(not_ok, 0u);
    EXPECT_EQ(changed, 0u);
    for (const auto& [id, dones] : producer.dones()) EXPECT_EQ(dones.size(), 1u) << id;

    ASSERT_TRUE(
        wait_for([&] { return results_written(service.sink()) >= kTasks; }, deadline_in(20s)))
        << results_written(service.sink());
    const Census census = take_census(service.sink().stdout_text(), kTasks);
    EXPECT_TRUE(census.exact()) << census.describe();
    EXPECT_TRUE(census.not_with_status("ok").empty()) << census.describe();

    second.signal(SIGTERM);
    ASSERT_EQ(second.wait_for_exit(deadline_in(20s)), 0) << second.describe();
    const StoreContents store = read_store(service.store());
    EXPECT_EQ(store.error, "");
    EXPECT_EQ(store.tasks, static_cast<std::int64_t>(kTasks));
    EXPECT_EQ(store.ok, static_cast<std::int64_t>(kTasks));
    EXPECT_EQ(store.unfinished, 0);
    std::cout << "[ figures  ] " << before.size() << " of " << kTasks
              << " done before the kill; every task finished and answered "
              << seconds_text(recovered) << " after the restart\n";
}

// "kill -9 of the sink mid-stream, restarted: nothing lost, no result recorded twice." The head
// records each result once and tells every producer once; the new sink writes no id twice, nor
// one the old sink wrote. (Results the old sink held for the head die with it, and run again.)
TEST(ServiceFaults, ASinkKilledMidStreamAndRestartedLosesNothingAndRecordsNothingTwice) {
    constexpr std::size_t kTasks = 3000;
    Service service;
    Process& first_sink = service.start_sink();
    Process& head = service.start_head();
    for (int i = 0; i < 2; ++i) service.start_worker({"--builtin", "sleep"}, 4);
    ASSERT_TRUE(service.served(head)) << service.logs();
    Producer producer(service.listen());
    const std::vector<std::uint64_t> ids = submit_all(
        producer, kTasks, [](std::size_t) { return "5"; }, deadline_in(30s), kTasks);
    for (std::size_t i = 0; i < kTasks; ++i) ASSERT_EQ(ids[i], i + 1) << service.logs();

    ASSERT_TRUE(
        wait_for([&] { return results_written(first_sink) >= kTasks / 5; }, deadline_in(30s)))
        << service.logs();
    first_sink.signal(SIGKILL);
    ASSERT_EQ(first_sink.wait_for_exit(deadline_in(5s)), 128 + SIGKILL);
    const std::size_t written_first = results_written(first_sink);
    ASSERT_LT(written_first, kTasks) << "the batch was over before the kill";
    Process& second_sink = service.start_sink();

    ASSERT_TRUE(
        producer.receive_until([&] { return producer.dones().size() >= kTasks; }, deadline_in(60s)))
        << producer.dones().size() << " done\n"
        << service.logs();
    for (const auto& [id, dones] : producer.dones()) {
        EXPECT_EQ(dones.size(), 1u) << id;
        EXPECT_EQ(dones.front().state, "ok") << describe(ToProducer(dones.front()));
    }
    // The head told the new sink to write the rest; once it has, its output and the old one's
    // hold each id at most once.
    const std::size_t expected_second = kTasks - written_first;
    wait_for([&] { return results_written(second_sink) >= expected_second; }, deadline_in(10s));
    const Census second_alone = take_census(second_sink.stdout_text(), kTasks);
    EXPECT_TRUE(second_alone.duplicated.empty()) << second_alone.describe();
    const Census both = take_census(first_sink.stdout_text() + second_sink.stdout_text(), kTasks);
    EXPECT_TRUE(both.duplicated.empty() && both.unexpected.empty()) << both.describe();
    // A result the head recorded and the old sink had not yet written when it was killed is in
    // the head's store only: the window is one loop iteration of the sink.
    EXPECT_LE(both.missing.size(), 50u) << both.describe();

    head.signal(SIGTERM);
    ASSERT_EQ(head.wait_for_exit(deadline_in(20s)), 0) << head.describe();
    const StoreContents store = read_store(service.store());
    EXPECT_EQ(store.error, "");
    EXPECT_EQ(store.ok, static_cast<std::int64_t>(kTasks));
    EXPECT_EQ(store.unfinished, 0);
    std::cout << "[ figures  ] the old sink wrote " << written_first << ", the new one "
              << results_written(second_sink) << ", missing from both " << both.missing.size()
              << " of " << kTasks << "\n";
}

// "A producer that disconnects mid-wait and comes back: it gets its results by id."
TEST(ServiceFaults, AProducerThatDisconnectsMidWaitGetsItsResultsByIdWhenItComesBack) {
    constexpr std::size_t kTasks = 20;
    Service service;
    service.start({"--builtin", "sleep"}, {}, /*concurrency=*/2);
    std::vector<std::uint64_t> ids;
    {
        Producer gone(service.listen());
        ids = submit_all(
            gone, kTasks, [](std::size_t) { return "200"; }, deadline_in(20s));
        for (const std::uint64_t id : ids) ASSERT_NE(id, 0u) << service.logs();
        for (const std::uint64_t id : ids) gone.status(Query{.id = id, .wait_ms = 60'000});
        // Answered after the waits: the head has read them.
        const auto last = gone.ask(Query{.id = ids.back()}, deadline_in(10s));
        ASSERT_NE(as<State>(last), nullptr) << describe(last);
        ASSERT_FALSE(is_final(as<State>(last)->state)) << describe(last);
    }  // gone, with its waits and its dones outstanding

    Producer back(service.listen());
    for (const std::uint64_t id : ids) {
        const auto answer = back.ask(Query{.id = id, .wait_ms = 30'000}, deadline_in(40s));
        const auto* state = as<State>(answer);
        ASSERT_NE(state, nullptr) << describe(answer) << service.logs();
        EXPECT_EQ(state->state, "ok") << describe(answer);
    }
    EXPECT_TRUE(service.head().running()) << service.logs();
    ASSERT_TRUE(
        wait_for([&] { return results_written(service.sink()) >= kTasks; }, deadline_in(10s)));
    const Census census = take_census(service.sink().stdout_text(), kTasks);
    EXPECT_TRUE(census.exact()) << census.describe();
}

// Asks `submit` and checks that the answer comes at once; returns it.
std::optional<ToProducer> ask_at_once(Producer& producer, Submit submit) {
    const auto start = Clock::now();
    auto answer = producer.ask(std::move(submit), deadline_in(10s));
    EXPECT_TRUE(answer) << "no answer within 10 s";
    EXPECT_LT(Clock::now() - start, 5s) << describe(answer);
    return answer;
}

// Fills the file system of `path` with a file there until it has no room left; true if it did.
bool fill_up(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    const std::string block(4096, 'f');
    while (::write(fd, block.data(), block.size()) > 0) {
    }
    const bool full = errno == ENOSPC;
    ::close(fd);
    return full;
}

// "The store's disk full: submissions get a clear error at once (never a hang, never a silent
// drop); status queries still work; the head keeps running." error `store`: "nothing of the
// request was kept". Results that come while the store cannot be written are recorded once it
// can: the tasks accepted before are not lost.
TEST(ServiceFaults, AFullDiskRefusesSubmissionsAtOnceWhileStatusQueriesStillWork) {
    Service service;
    const std::string disk_path = service.dir().file("disk");
    SmallDisk disk(disk_path, "1m");
    if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs (needs root): " << disk.error();
    service.start_sink();
    Process& head = service.start_head({"--store", disk_path + "/tasks.db"}, /*store=*/false);
    ASSERT_TRUE(service.served(head)) << service.logs();
    Producer producer(service.listen());

    // No worker yet: the tasks stay queued. 16 KiB a task: the 1 MiB disk is full after a few
    // dozen; then a file takes what room is left.
    std::vector<std::uint64_t> accepted;
    std::optional<Error> refused;
    for (int i = 0; i < 256 && !refused; ++i) {
        const auto answer = ask_at_once(
            producer, Submit{.payload = std::to_string(i) + std::string(16 * 1024, 'x')});
        if (const auto* a = as<Accepted>(answer)) accepted.push_back(a->id);
        if (const auto* e = as<Error>(answer)) refused = *e;
        ASSERT_TRUE(answer) << service.logs();
    }
    ASSERT_TRUE(refused) << "the disk did not fill up";
    ASSERT_FALSE(accepted.empty());
    EXPECT_EQ(refused->code, "store");
    EXPECT_NE(refused->message.find("full"), std::string::npos) << refused->message;
    ASSERT_TRUE(fill_up(disk_path + "/filler"));
    // Each answered at once: refused, or accepted when SQLite finds room (it writes the WAL from
    // its start again once it has been checkpointed), and then kept.
    std::size_t refused_small = 0;
    for (int i = 0; i < 5; ++i) {
        const auto answer = ask_at_once(producer, Submit{.payload = "small " + std::to_string(i)});
        ASSERT_TRUE(as<Error>(answer) != nullptr || as<Accepted>(answer) != nullptr)
            << describe(answer);
        if (const auto* a = as<Accepted>(answer)) accepted.push_back(a->id);
        if (const auto* e = as<Error>(answer)) {
            EXPECT_EQ(e->code, "store");
            ++refused_small;
        }
    }
    for (const std::uint64_t id : accepted) {
        const auto answer = producer.ask(Query{.id = id}, deadline_in(10s));
        ASSERT_NE(as<State>(answer), nullptr) << describe(answer);
        EXPECT_EQ(as<State>(answer)->state, "queued") << describe(answer);
    }
    EXPECT_TRUE(head.running()) << head.describe();
    EXPECT_TRUE(head.wait_for_stderr("the task store cannot be written", deadline_in(1s)))
        << head.describe();

    // The tasks run while the disk is full: their results cannot be recorded, so the head sends
    // them again after its liveness timeout (1 s).
    service.start_worker({"--builtin", "echo"});
    ASSERT_TRUE(head.wait_for_stderr("re-sending task", deadline_in(20s))) << service.logs();
    std::filesystem::remove(disk_path + "/filler");
    ASSERT_TRUE(disk.resize("64m"));
    const auto after = ask_at_once(producer, Submit{.payload = "after"});
    ASSERT_NE(as<Accepted>(after), nullptr) << describe(after) << head.describe();
    EXPECT_EQ(as<Accepted>(after)->id, accepted.back() + 1) << "a refused submission kept an id";
    accepted.push_back(as<Accepted>(after)->id);
    for (const std::uint64_t id : accepted) {
        const auto answer = producer.ask(Query{.id = id, .wait_ms = 20'000}, deadline_in(30s));
        ASSERT_NE(as<State>(answer), nullptr) << describe(answer);
        EXPECT_EQ(as<State>(answer)->state, "ok") << describe(answer) << service.logs();
    }
    EXPECT_TRUE(head.wait_for_stderr("the task store can be written again", deadline_in(1s)))
        << head.describe();
    ASSERT_TRUE(wait_for([&] { return results_written(service.sink()) >= accepted.size(); },
                         deadline_in(10s)));
    const Census census = take_census(service.sink().stdout_text(), accepted.back());
    EXPECT_TRUE(census.exact()) << census.describe();
    std::cout << "[ figures  ] disk full: " << accepted.size() - 1 << " accepted, then 1 + "
              << refused_small << " of 5 small submissions refused\n";
}

// chattr +i on `path` (or -i): false when it cannot be set (not root, or a file system without
// the attribute).
bool set_immutable(const std::string& path, bool on) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return false;
    int flags = 0;
    bool ok = ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
    if (ok) {
        flags = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
        ok = ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
    }
    ::close(fd);
    return ok;
}

// Files made immutable while this lives.
class Immutable {
  public:
    explicit Immutable(std::vector<std::string> paths) : paths_(std::move(paths)) {
        for (const std::string& path : paths_) ok_ = set_immutable(path, true) && ok_;
    }
    ~Immutable() {
        for (const std::string& path : paths_) set_immutable(path, false);
    }
    Immutable(const Immutable&) = delete;
    Immutable& operator=(const Immutable&) = delete;
    bool ok() const { return ok_; }

  private:
    std::vector<std::string> paths_;
    bool ok_ = true;
};

// Why a store in `dir` cannot be made read-only under a running head, or "" if it can: an
// immutable file must refuse writes through a descriptor opened before (ext4 does, tmpfs not).
std::string cannot_make_read_only(const TempDir& dir) {
    const std::string probe = dir.file("probe");
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return std::strerror(errno);
    std::string why;
    {
        Immutable immutable({probe});
        if (!immutable.ok()) {
            why = "chattr +i failed (needs root and a file system with the attribute)";
        } else if (::write(fd, "x", 1) == 1) {
            why = "this file system lets a descriptor opened before chattr +i write";
        }
    }
    ::close(fd);
    std::filesystem::remove(probe);
    return why;
}

// "The store's disk ... read-only: submissions get a clear error at once; status queries still
// work; the head keeps running." Made read-only under the head with chattr +i.
TEST(ServiceFaults, AReadOnlyStoreRefusesSubmissionsAtOnceWhileStatusQueriesStillWork) {
    Service service;
    if (const std::string why = cannot_make_read_only(service.dir()); !why.empty()) {
        GTEST_SKIP() << "cannot make the store read-only under a running head: " << why;
    }
    service.start();
    Producer producer(service.listen());
    const auto first = producer.ask(Submit{.payload = "before"}, deadline_in(20s));
    const std::uint64_t id = accepted_id(first);
    ASSERT_NE(id, 0u) << describe(first) << service.logs();
    ASSERT_TRUE(producer.done(id, deadline_in(20s))) << service.logs();

    std::string reason;
    {
        Immutable read_only({service.store(), service.store() + "-wal"});
        ASSERT_TRUE(read_only.ok());
        for (int i = 0; i < 3; ++i) {
            const auto answer = ask_at_once(producer, Submit{.payload = "refused"});
            ASSERT_NE(as<Error>(answer), nullptr) << describe(answer) << service.logs();
            EXPECT_EQ(as<Error>(answer)->code, "store");
            reason = as<Error>(answer)->message;
        }
        const auto state = producer.ask(Query{.id = id}, deadline_in(10s));
        ASSERT_NE(as<State>(state), nullptr) << describe(state);
        EXPECT_EQ(as<State>(state)->state, "ok");
        EXPECT_EQ(as<State>(state)->out, "before\n");
        EXPECT_TRUE(service.head().running());
    }
    EXPECT_NE(reason.find(service.store()), std::string::npos) << reason;
    const auto after = ask_at_once(producer, Submit{.payload = "after"});
    ASSERT_NE(as<Accepted>(after), nullptr) << describe(after) << service.logs();
    EXPECT_EQ(as<Accepted>(after)->id, id + 1);
    const auto done = producer.done(id + 1, deadline_in(20s));
    ASSERT_TRUE(done) << service.logs();
    EXPECT_EQ(done->out, "after\n");
}

// ---- Bad input on the listen socket.

// A msgpack map of `fields` (each a key and an integer or a string value).
std::string msgpack_map(
    const std::vector<std::pair<std::string, std::variant<std::uint64_t, std::string>>>& fields) {
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer> packer(buffer);
    packer.pack_map(static_cast<std::uint32_t>(fields.size()));
    for (const auto& [key, value] : fields) {
        packer.pack(key);
        std::visit([&](const auto& v) { packer.pack(v); }, value);
    }
    return std::string(buffer.data(), buffer.size());
}

// "A frame that is not a well-formed request is dropped and counted, without an answer."
TEST(ServiceFaults, MalformedRequestsAreDroppedAndCountedWithoutAnAnswer) {
    Service service;
    service.start();
    Producer producer(service.listen());
    Encoder encoder;
    const std::string submit(encoder.encode(Submit{7, "x", {}, 0, 0, true}));
    const std::string accepted(encoder.encode(Accepted{7, 1, true, "queued", 1}));
    const std::vector<std::vector<std::string>> malformed = {
        {"garbage"},
        {""},
        {std::string("\x93\x01\x02\x03", 4)},                              // msgpack, not a map
        {msgpack_map({{"v", 1u}, {"type", "submit"}, {"payload", "x"}})},  // no req
        {msgpack_map({{"v", 1u}, {"type", "submit"}, {"req", "one"}, {"payload", "x"}})},
        {msgpack_map({{"v", 2u}, {"type", "submit"}, {"req", 1u}, {"payload", "x"}})},
        {msgpack_map({{"v", 1u}, {"type", "frobnicate"}, {"req", 1u}})},
        {accepted},                             // the head's message, not a producer's
        {submit.substr(0, submit.size() - 1)},  // truncated
        {submit + "\xc0"},                      // trailing bytes
        {submit, "second frame"},               // two frames
        {std::string(1000, '\xff')},
    };
    constexpr int kRounds = 3;
    for (int round = 0; round < kRounds; ++round) {
        for (const auto& frames : malformed) ASSERT_TRUE(producer.send_frames(frames));
    }
    const auto answer = producer.ask(Query{.id = 99}, deadline_in(20s));
    ASSERT_NE(as<State>(answer), nullptr) << describe(answer) << service.logs();
    EXPECT_EQ(as<State>(answer)->state, "unknown");
    producer.receive(deadline_in(200ms));
    EXPECT_EQ(producer.answers_received(), 1u) << "a malformed request was answered";
    EXPECT_TRUE(producer.refused().empty());

    // Served as before, this producer and others.
    Producer other(service.listen());
    const auto done_id = accepted_id(other.ask(Submit{.payload = "fine"}, deadline_in(10s)));
    ASSERT_NE(done_id, 0u) << service.logs();
    ASSERT_TRUE(other.done(done_id, deadline_in(20s))) << service.logs();

    Process& head = service.head();
    EXPECT_TRUE(head.wait_for_stderr("dropped a malformed request", deadline_in(1s)));
    EXPECT_TRUE(head.wait_for_stderr("are counted, not logged", deadline_in(1s)))
        << head.describe();
    head.signal(SIGTERM);
    ASSERT_EQ(head.wait_for_exit(deadline_in(20s)), 0) << head.describe();
    const std::string count =
        std::to_string(kRounds * malformed.size()) + " malformed requests dropped";
    EXPECT_TRUE(head.wait_for_stderr(count, deadline_in(1s))) << count << "\n" << head.describe();
}

// "payload: at most 1 MiB" (`too_large`), "a key of 1 to 256 bytes" (`invalid`); "frames over
// 2 MiB close the connection". The head's memory does not hold what it refused.
TEST(ServiceFaults, OversizedRequestsAreRefusedAndTheHeadKeepsServing) {
    Service service;
    service.start();
    Producer producer(service.listen());
    const std::string mib(1 << 20, 'p');

    const auto largest = producer.ask(Submit{.payload = mib}, deadline_in(20s));
    ASSERT_NE(as<Accepted>(largest), nullptr) << describe(largest) << service.logs();
    const auto too_large = producer.ask(Submit{.payload = mib + "p"}, deadline_in(20s));
    ASSERT_NE(as<Error>(too_large), nullptr) << describe(too_large);
    EXPECT_EQ(as<Error>(too_large)->code, "too_large");
    const auto long_key =
        producer.ask(Submit{.payload = "x", .key = std::string(257, 'k')}, deadline_in(20s));
    ASSERT_NE(as<Error>(long_key), nullptr) << describe(long_key);
    EXPECT_EQ(as<Error>(long_key)->code, "invalid");
    const auto empty_key = producer.ask(Submit{.payload = "x", .key = ""}, deadline_in(20s));
    ASSERT_NE(as<Error>(empty_key), nullptr) << describe(empty_key);
    EXPECT_EQ(as<Error>(empty_key)->code, "invalid");
    const long before = peak_rss(service.head());

    // Frames of 3 MiB, ten of them, each from a producer that then asks something: the frame
    // gets no answer (its connection is closed), the question after it does, once the producer
    // has reconnected.
    Encoder encoder;
    const std::string huge(
        encoder.encode(Submit{1'000'000, std::string(3 << 20, 'h'), {}, 0, 0, true}));
    for (int i = 0; i < 10; ++i) {
        Producer big(service.listen());
        ASSERT_TRUE(big.send_frames({huge}));
        bool answered = false;
        ASSERT_TRUE(wait_for(
            [&] {
                answered = as<State>(big.ask(Query{.id = 1}, deadline_in(1s))) != nullptr;
                return answered;
            },
            deadline_in(20s)))
            << service.logs();
        EXPECT_FALSE(big.answer(1'000'000, deadline_in(50ms))) << "the huge frame was answered";
    }
    const auto fine = producer.ask(Submit{.payload = "fine"}, deadline_in(10s));
    const std::uint64_t fine_id = accepted_id(fine);
    ASSERT_NE(fine_id, 0u) << describe(fine);
    ASSERT_TRUE(producer.done(fine_id, deadline_in(20s))) << service.logs();
    const long after = peak_rss(service.head());
    EXPECT_LT(after, rss_bound(before + 64 * 1024))
        << "peak RSS " << before << " KiB, then " << after;
    EXPECT_TRUE(service.head().running());
}

// "The head holds at most 10,000 unread messages for a connection; beyond that it drops them
// (and counts them)": a producer that floods the head with submissions and reads nothing does
// not take its memory, nor the service from the others.
TEST(ServiceFaults, AFloodOfSubmissionsFromOneProducerDoesNotStopTheOthers) {
    constexpr std::size_t kFlood = 30'000;
    Service service;
    service.start_sink();
    Process& head = service.start_head({"--store-sync", "normal"});
    for (int i = 0; i < 2; ++i) service.start_worker({"--builtin", "echo"}, 4);
    ASSERT_TRUE(service.served(head)) << service.logs();

    Producer flood(service.listen(), Producer::Socket::dealer, /*receive_hwm=*/100);
    for (std::size_t i = 0; i < kFlood; ++i) {
        ASSERT_NE(flood.submit(Submit{.payload = "flood-" + std::to_string(i)}), 0u);
    }
    Producer other(service.listen());
    // Answered promptly; done once the flood's tasks queued before are (the queue is FIFO).
    Clock::duration slowest{};
    for (int i = 0; i < 10; ++i) {
        const auto start = Clock::now();
        const auto answer = other.ask(Submit{.payload = "other"}, deadline_in(20s));
        slowest = std::max(slowest, Clock::now() - start);
        const std::uint64_t id = accepted_id(answer);
        ASSERT_NE(id, 0u) << describe(answer) << service.logs();
        ASSERT_TRUE(other.done(id, deadline_in(30s))) << service.logs();
    }
    EXPECT_LT(slowest, 5s);

    // Every task of the flood runs; the flood producer, which read nothing, lost answers.
    ASSERT_TRUE(
        wait_for([&] { return results_written(service.sink()) >= kFlood + 10; }, deadline_in(60s)))
        << results_written(service.sink()) << "\n"
        << service.logs();
    const long peak = peak_rss(head);
    flood.receive_until([&] { return false; }, deadline_in(1s));
    const std::size_t received = flood.answers_received() + flood.dones().size();
    EXPECT_LT(received, 2 * kFlood) << "nothing was dropped: the flood was not one";
    // It is served again once it reads.
    const auto again = flood.ask(Query{.id = 1}, deadline_in(10s));
    ASSERT_NE(as<State>(again), nullptr) << describe(again);
    EXPECT_EQ(as<State>(again)->state, "ok");

    head.signal(SIGTERM);
    ASSERT_EQ(head.wait_for_exit(deadline_in(20s)), 0) << head.describe();
    EXPECT_TRUE(head.wait_for_stderr("answers dropped", deadline_in(1s))) << head.describe();
    EXPECT_LT(peak, rss_bound(256 * 1024)) << "KiB";
    std::cout << "[ figures  ] flood of " << kFlood << ": the flooding producer got " << received
              << " of " << 2 * kFlood
              << " answers and dones; the others' submissions were answered within "
              << seconds_text(slowest) << "; head peak RSS " << peak << " KiB\n";
}

// "full (the head holds --max-queue unfinished tasks)": a flood beyond the bound is refused at
// once, the head's memory does not follow it, and once tasks finish there is room again.
TEST(ServiceFaults, SubmissionsBeyondMaxQueueAreRefusedAsFull) {
    constexpr std::size_t kMaxQueue = 200;
    constexpr std::size_t kFlood = 20'000;
    Service service;
    service.start_sink();
    Process& head =
        service.start_head({"--store-sync", "normal", "--max-queue", std::to_string(kMaxQueue)});
    ASSERT_TRUE(service.served(head)) << service.logs();
    const long idle = peak_rss(head);

    // No worker: nothing finishes, so the first kMaxQueue are accepted and the rest refused.
    Producer producer(service.listen());
    const std::string payload(4096, 'q');  // 80 MB in all, were it kept
    std::vector<std::uint64_t> reqs;
    for (std::size_t i = 0; i < kFlood; ++i)
        reqs.push_back(producer.submit(Submit{.payload = payload}));
    std::size_t accepted = 0;
    std::size_t full = 0;
    std::size_t other = 0;
    for (const std::uint64_t req : reqs) {
        const auto answer = producer.answer(req, deadline_in(30s));
        if (as<Accepted>(answer) != nullptr) {
            ++accepted;
        } else if (as<Error>(answer) != nullptr && as<Error>(answer)->code == "full") {
            ++full;
        } else if (++other <= 5) {
            ADD_FAILURE() << describe(answer) << service.logs();
        }
    }
    EXPECT_EQ(accepted, kMaxQueue);
    EXPECT_EQ(full, kFlood - kMaxQueue);
    EXPECT_EQ(other, 0u);
    const long peak = peak_rss(head);
    EXPECT_LT(peak, rss_bound(idle + 32 * 1024)) << "KiB: the refused payloads were kept";

    // Status queries are still answered.
    const auto status = producer.ask(Query{.id = kMaxQueue}, deadline_in(10s));
    ASSERT_NE(as<State>(status), nullptr) << describe(status);
    EXPECT_EQ(as<State>(status)->state, "queued");

    // Workers drain the queue; then submissions are accepted again.
    service.start_worker({"--builtin", "echo"}, 4);
    ASSERT_TRUE(producer.receive_until([&] { return producer.dones().size() >= kMaxQueue; },
                                       deadline_in(30s)))
        << producer.dones().size() << "\n"
        << service.logs();
    const auto again = producer.ask(Submit{.payload = "again"}, deadline_in(10s));
    ASSERT_NE(as<Accepted>(again), nullptr) << describe(again);
    EXPECT_EQ(as<Accepted>(again)->id, kMaxQueue + 1) << "a refused submission kept an id";
    EXPECT_TRUE(head.running());
    std::cout << "[ figures  ] --max-queue " << kMaxQueue << ": " << full << " of " << kFlood
              << " refused as full; head peak RSS " << idle << " KiB idle, " << peak
              << " KiB after the flood\n";
}

// "10,000 producers connecting": each submits one task and hears it done; another producer is
// served all along; the head's memory stays bounded (libzmq's buffers, some 30 KiB a
// connection). TASKPIPE_TEST_PRODUCERS sets how many; fewer when this process may not open
// that many files.
TEST(ServiceFaults, ThousandsOfProducersAreServedAtOnce) {
    const char* count = std::getenv("TASKPIPE_TEST_PRODUCERS");
    std::size_t kProducers = count != nullptr ? std::stoul(count) : 10'000;
    rlimit files{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &files), 0);
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
    if (files.rlim_cur < kProducers + 256) {
        ASSERT_GT(files.rlim_cur, 1256u) << "the open-file limit is too low for this test";
        kProducers = files.rlim_cur - 256;
    }
    Service service;
    service.start_sink();
    // A liveness timeout of 5 s (the default) and up to 20 sends: a head busy with 10,000 new
    // connections on a loaded machine hears late that a worker holds its tasks, and re-sends
    // them; with the defaults some were lost after 3 sends when the whole suite ran at once.
    Process& head = service.start_head({"--store-sync", "normal", "--max-attempts", "20"},
                                       /*store=*/true, "5");
    for (int i = 0; i < 2; ++i) service.start_worker({"--builtin", "echo"}, 4);
    ASSERT_TRUE(service.served(head)) << service.logs();
    const long idle = peak_rss(head);

    const auto start = Clock::now();
    Crowd crowd(service.listen(), kProducers, deadline_in(30s));
    Producer other(service.listen());
    const auto first = other.ask(Submit{.payload = "other"}, deadline_in(20s));
    ASSERT_NE(accepted_id(first), 0u) << describe(first) << service.logs();

    Encoder encoder;
    for (std::size_t i = 0; i < kProducers; ++i) {
        crowd.send(i, encoder.encode(Submit{1, "crowd-" + std::to_string(i), {}, 0, 0, true}));
    }
    ASSERT_TRUE(
        crowd.pump_until([&] { return crowd.messages() >= 2 * kProducers; }, deadline_in(60s)))
        << crowd.messages() << " messages, " << crowd.closed() << " connections closed\n"
        << service.logs();
    const auto served = Clock::now() - start;
    EXPECT_EQ(crowd.closed(), 0u);
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < kProducers; ++i) {
        const auto& messages = crowd.received(i);
        const auto accepted =
            messages.size() == 2 ? decode<ToProducer>(messages[0]).message : std::nullopt;
        const auto done =
            messages.size() == 2 ? decode<ToProducer>(messages[1]).message : std::nullopt;
        const bool right = as<Accepted>(accepted) != nullptr && as<Done>(done) != nullptr &&
                           as<Done>(done)->id == as<Accepted>(accepted)->id &&
                           as<Done>(done)->out == "crowd-" + std::to_string(i) + "\n";
        if (!right && ++wrong <= 5) {
            ADD_FAILURE() << "producer " << i << ": " << messages.size() << " messages, "
                          << describe(accepted) << ", " << describe(done);
        }
    }
    EXPECT_EQ(wrong, 0u) << head.describe();
    const auto last = other.ask(Submit{.payload = "other"}, deadline_in(20s));
    ASSERT_NE(accepted_id(last), 0u) << describe(last);
    const long peak = peak_rss(head);
    EXPECT_LT(peak, rss_bound(idle + static_cast<long>(kProducers) * 64)) << "KiB";
    EXPECT_TRUE(head.running());
    std::cout << "[ figures  ] " << kProducers << " producers connected and served in "
              << seconds_text(served) << "; head peak RSS " << idle << " KiB idle, " << peak
              << " KiB with them\n";
}

}  // namespace
}  // namespace taskpipe::testing
