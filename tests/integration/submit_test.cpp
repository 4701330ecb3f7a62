// taskpipe submit against the real head (ventilator --serve), sink (--serve) and worker, over
// ipc:// endpoints in a private directory. What README's "taskpipe submit" promises:
//
// "prints each task's id, once the head has accepted it; with --wait, waits for each task and
// prints its output, byte for byte", "the same key again gives the same task", "--status
// prints the state", "--cancel cancels the tasks not yet sent to a worker", "A head that is
// not there is an error at once (status 2)", "Nothing waits past --timeout (status 4)".
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "support/binaries.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"
#include "taskpipe/codec.hpp"
#include "taskpipe/message_io.hpp"

namespace taskpipe::testing {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;

// The handler: prints "out:PAYLOAD" with no newline; a payload starting with "fail" also writes
// to stderr and exits 3; "sleep N" sleeps N seconds first.
const std::vector<std::string> kHandler = {
    "--shell",
    "case \"$1\" in sleep*) sleep \"${1#sleep }\";; esac; printf 'out:%s' \"$1\"; "
    "case \"$1\" in fail*) echo \"oops $1\" >&2; exit 3;; esac"};

struct Outcome {
    int status = -1;
    std::string out;
    std::string err;
    Clock::duration took{};
};

// A head, a sink and a worker; the head keeps its tasks in `store` when asked to.
class Service {
  public:
    explicit Service(bool store = false) : store_(store) {
        sink_ = std::make_unique<Process>(
            std::vector<std::string>{sink_path(), "--serve", "--bind", dir_.ipc_endpoint("results"),
                                     "--control", dir_.ipc_endpoint("control"), "--quiet"});
        start_head();
        worker_ = std::make_unique<Process>(
            std::vector<std::string>{worker_path(), "--ventilator", dir_.ipc_endpoint("tasks"),
                                     "--sink", dir_.ipc_endpoint("results"), "-c", "4",
                                     "--heartbeat", "0.2", kHandler[0], kHandler[1]});
    }

    std::string head() const { return dir_.ipc_endpoint("head"); }
    const TempDir& dir() const { return dir_; }
    Process& head_process() { return *head_; }

    void start_head() {
        std::vector<std::string> argv = {ventilator_path(),
                                         "--serve",
                                         "--listen",
                                         head(),
                                         "--bind",
                                         dir_.ipc_endpoint("tasks"),
                                         "--sink",
                                         dir_.ipc_endpoint("control"),
                                         "--liveness-timeout",
                                         "1"};
        if (store_) argv.insert(argv.end(), {"--store", dir_.file("head.store")});
        std::filesystem::remove(dir_.file("head"));
        head_ = std::make_unique<Process>(std::move(argv));
        // The head listens once its socket file exists.
        EXPECT_TRUE(
            wait_for([&] { return std::filesystem::exists(dir_.file("head")); }, deadline_in(20s)))
            << head_->describe();
    }

    void kill_head() {
        head_->signal(SIGKILL);
        (void)head_->wait_for_exit(deadline_in(10s));
    }

    std::string describe() const {
        return head_->describe() + sink_->describe() + worker_->describe();
    }

  private:
    bool store_;
    TempDir dir_;
    std::unique_ptr<Process> sink_;
    std::unique_ptr<Process> head_;
    std::unique_ptr<Process> worker_;
};

Outcome submit_to(const std::string& head, std::vector<std::string> args,
                  Stdin input = Stdin::null()) {
    std::vector<std::string> argv = {submit_path(), "--head", head};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto start = Clock::now();
    Process process(std::move(argv), std::move(input));
    Outcome run;
    run.status = process.wait_for_exit(deadline_in(60s)).value_or(-1);
    run.took = Clock::now() - start;
    run.out = process.stdout_text();
    run.err = process.stderr_text();
    return run;
}

Outcome submit(Service& service, std::vector<std::string> args, Stdin input = Stdin::null()) {
    return submit_to(service.head(), std::move(args), std::move(input));
}

std::string describe(const Outcome& run) {
    return "status " + std::to_string(run.status) + "\nstdout: " + run.out + "\nstderr: " + run.err;
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

std::uint64_t id_of(const Outcome& run) {
    EXPECT_TRUE(run.out.ends_with("\n")) << describe(run);
    return std::stoull(run.out);
}

// "With CURVE the listen socket admits only the keys of --curve-producers: a worker's key does
// not let anyone submit." A head alone (no sink or worker is needed to accept a task).
TEST(Submit, WithCurveTheHeadAdmitsOnlyTheProducersKeys) {
    TempDir dir;
    std::filesystem::create_directory(dir.file("workers"));
    std::filesystem::create_directory(dir.file("producers"));
    for (const std::string name : {"server", "workers/worker", "producers/producer"}) {
        Process keygen({TASKPIPE_KEYGEN_PATH, dir.file(name)});
        ASSERT_EQ(keygen.wait_for_exit(deadline_in(10s)), 0) << keygen.describe();
    }
    const std::string listen = dir.ipc_endpoint("head");
    Process head({ventilator_path(), "--serve", "--listen", listen, "--bind",
                  dir.ipc_endpoint("tasks"), "--sink", dir.ipc_endpoint("control"), "--curve-key",
                  dir.file("server.key"), "--curve-allow", dir.file("workers"), "--curve-producers",
                  dir.file("producers")});
    ASSERT_TRUE(
        wait_for([&] { return std::filesystem::exists(dir.file("head")); }, deadline_in(20s)))
        << head.describe();
    const std::vector<std::string> server = {"--curve-server", dir.file("server.pub")};
    auto with_key = [&](const std::string& key) {
        std::vector<std::string> args = {"--curve-key", dir.file(key)};
        args.insert(args.end(), server.begin(), server.end());
        args.push_back("payload");
        return args;
    };

    const Outcome producer = submit_to(listen, with_key("producers/producer.key"));
    EXPECT_EQ(producer.status, 0) << describe(producer) << head.describe();
    EXPECT_EQ(producer.out, "1\n");

    const Outcome worker = submit_to(listen, with_key("workers/worker.key"));
    EXPECT_EQ(worker.status, 2) << describe(worker);
    EXPECT_TRUE(contains(worker.err, "not in the head's --curve-producers")) << worker.err;
    EXPECT_EQ(worker.out, "");

    const Outcome plain = submit_to(listen, {"payload"});
    EXPECT_EQ(plain.status, 2) << describe(plain);
    EXPECT_TRUE(contains(plain.err, "does the head use CURVE?")) << plain.err;
}

// A head of our own in the test: a ROUTER on an ipc endpoint that answers each request with
// what `answer` returns, raw frames sent as they are ("Bytes from the network are untrusted").
class FakeHead {
  public:
    using Answer = std::function<std::vector<std::string>(const ToHead&)>;

    FakeHead() {
        router_.set(zmq::sockopt::linger, 0);
        router_.bind(endpoint());
    }
    std::string endpoint() const { return dir_.ipc_endpoint("fake-head"); }

    // Serves `submit` until it exits; returns its exit status.
    Outcome serve(Process& submit, const Answer& answer) {
        const auto deadline = deadline_in(30s);
        Outcome run;
        while (submit.running() && Clock::now() < deadline) {
            zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
            zmq::poll(&item, 1, std::chrono::milliseconds(10));
            while (auto request = recv_message<ToHead>(router_, Framing::producer)) {
                EXPECT_TRUE(request->message) << request->error;
                if (!request->message) continue;
                ++requests;
                for (const std::string& frame : answer(*request->message)) {
                    router_.send(zmq::buffer(request->peer), zmq::send_flags::sndmore);
                    router_.send(zmq::buffer(frame), zmq::send_flags::none);
                }
            }
        }
        run.status = submit.wait_for_exit(deadline_in(10s)).value_or(-1);
        run.out = submit.stdout_text();
        run.err = submit.stderr_text();
        return run;
    }

    std::string encode(const ToProducer& message) { return std::string(encoder_.encode(message)); }

    int requests = 0;

  private:
    TempDir dir_;
    zmq::context_t context_{1};
    zmq::socket_t router_{context_, zmq::socket_type::router};
    Encoder encoder_;
};

// Frames that are not an answer: not msgpack, a map that is no message, a message a producer
// does not take, answers to no request, a done for no task.
std::vector<std::string> garbage(FakeHead& head, std::uint64_t req) {
    Accepted stale{req + 1000, 99, true, "queued", 1};
    Done stray;
    stray.id = 12345;
    stray.state = "ok";
    return {"\xff\x00 not msgpack"s,
            "\x81\xa1x\x01"s,          // {"x": 1}
            std::string(100, '\xc1'),  // a byte msgpack never uses
            "\x82\xa4type\xa4task\xa5"
            "batch\x01"s,  // a task, to a producer
            head.encode(stale),
            head.encode(stray)};
}

std::uint64_t req_of(const ToHead& message) {
    return std::visit([](const auto& m) { return m.req; }, message);
}

// "Bytes from the network are untrusted": garbage before the answer is dropped and counted.
TEST(Submit, GarbageFromTheHeadIsDroppedAndTheRealAnswerCounts) {
    FakeHead head;
    Process submit({submit_path(), "--head", head.endpoint(), "--json", "x"});
    const Outcome run = head.serve(submit, [&](const ToHead& request) {
        std::vector<std::string> frames = garbage(head, req_of(request));
        frames.push_back(head.encode(Accepted{req_of(request), 7, true, "queued", 1}));
        return frames;
    });
    EXPECT_EQ(run.status, 0) << describe(run);
    EXPECT_EQ(nlohmann::json::parse(run.out)["id"], 7) << describe(run);
    EXPECT_TRUE(contains(run.err, "malformed messages from the head dropped")) << run.err;
}

// Garbage and nothing else: the command ends at its --timeout, it does not crash or hang.
TEST(Submit, AHeadThatAnswersOnlyGarbageEndsAtTheTimeoutWithStatus4) {
    FakeHead head;
    Process submit({submit_path(), "--head", head.endpoint(), "--timeout", "1", "x"});
    const auto start = Clock::now();
    const Outcome run =
        head.serve(submit, [&](const ToHead& request) { return garbage(head, req_of(request)); });
    EXPECT_EQ(run.status, 4) << describe(run);
    EXPECT_LT(Clock::now() - start, 5s);
    EXPECT_EQ(run.out, "\n");  // the task's line, empty: no id
    EXPECT_TRUE(contains(run.err, "gave up: the --timeout passed")) << run.err;
    EXPECT_GE(head.requests, 1);
}

// A well-formed answer of the wrong kind (an `accepted` for a status) is no answer.
TEST(Submit, AnAnswerOfTheWrongKindIsAnErrorForThatTask) {
    FakeHead head;
    Process submit({submit_path(), "--head", head.endpoint(), "--status", "3"});
    const Outcome run = head.serve(submit, [&](const ToHead& request) {
        return std::vector<std::string>{
            head.encode(Accepted{req_of(request), 3, true, "queued", 1})};
    });
    EXPECT_EQ(run.status, 4) << describe(run);
    EXPECT_TRUE(contains(run.err, "unexpected 'accepted'")) << run.err;
}

// "prints the task id at once"
TEST(Submit, PrintsTheIdOfEachTaskInOrder) {
    Service service;
    const Outcome one = submit(service, {"photo-1.jpg"});
    ASSERT_EQ(one.status, 0) << describe(one) << service.describe();
    EXPECT_EQ(one.out, "1\n");
    EXPECT_EQ(one.err, "");
    const Outcome three = submit(service, {}, Stdin::data("a\nb b\nc"));
    ASSERT_EQ(three.status, 0) << describe(three);
    EXPECT_EQ(three.out, "2\n3\n4\n");
}

// "--wait: prints its output; exit 0 ok, 1 failed"
TEST(Submit, WaitPrintsTheOutputByteForByteAndExitsWithTheOutcome) {
    Service service;
    const Outcome ok = submit(service, {"--wait", "hello world"});
    EXPECT_EQ(ok.status, 0) << describe(ok) << service.describe();
    EXPECT_EQ(ok.out, "out:hello world");  // no newline added
    const Outcome failed = submit(service, {"--wait", "fail-7"});
    EXPECT_EQ(failed.status, 1) << describe(failed);
    EXPECT_EQ(failed.out, "out:fail-7");
    EXPECT_TRUE(contains(failed.err, "failed (exit code 3)")) << failed.err;
    EXPECT_TRUE(contains(failed.err, "stderr: oops fail-7")) << failed.err;
}

TEST(Submit, SeveralWaitedTasksPrintInTheirOrderAndTheWorstOutcomeWins) {
    Service service;
    const Outcome run = submit(service, {"--wait", "-0"}, Stdin::data("sleep 1\0b\0fail-c\0"s));
    EXPECT_EQ(run.status, 1) << describe(run);
    EXPECT_EQ(run.out, "out:sleep 1out:bout:fail-c");  // the slow first one first
}

TEST(Submit, WholeStdinIsOnePayload) {
    Service service;
    const Outcome run = submit(service, {"--wait", "--whole"}, Stdin::data("two\nlines\n"));
    EXPECT_EQ(run.status, 0) << describe(run);
    EXPECT_EQ(run.out, "out:two\nlines\n");
}

// "the same key again gives the same task, and nothing runs twice"
TEST(Submit, TheSameKeyGivesTheSameTaskAndAnotherPayloadIsAConflict) {
    Service service;
    const Outcome first = submit(service, {"--key", "photo-42", "42.jpg"});
    ASSERT_EQ(first.status, 0) << describe(first) << service.describe();
    const Outcome again = submit(service, {"--key", "photo-42", "--json", "42.jpg"});
    ASSERT_EQ(again.status, 0) << describe(again);
    const auto answer = nlohmann::json::parse(again.out);
    EXPECT_EQ(answer["id"], id_of(first));
    EXPECT_EQ(answer["created"], false);
    const Outcome conflict = submit(service, {"--key", "photo-42", "43.jpg"});
    EXPECT_EQ(conflict.status, 1) << describe(conflict);
    EXPECT_EQ(conflict.out, "\n");
    EXPECT_TRUE(contains(conflict.err, "the head refused payload 1: conflict")) << conflict.err;
    EXPECT_TRUE(contains(conflict.err, std::to_string(id_of(first)))) << conflict.err;
}

TEST(Submit, StatusOfAFinishedTaskAnUnknownOneAndAKey) {
    Service service;
    const Outcome done = submit(service, {"--wait", "--key", "k1", "x"});
    ASSERT_EQ(done.status, 0) << describe(done) << service.describe();
    const Outcome status = submit(service, {"--status", "1", "999"});
    EXPECT_EQ(status.status, 0) << describe(status);
    EXPECT_EQ(status.out, "ok\nunknown\n");
    const Outcome by_key = submit(service, {"--status", "--key", "k1", "--json"});
    ASSERT_EQ(by_key.status, 0) << describe(by_key);
    const auto report = nlohmann::json::parse(by_key.out);
    EXPECT_EQ(report["id"], 1);
    EXPECT_EQ(report["state"], "ok");
    EXPECT_EQ(report["stdout"], "out:x");
    EXPECT_EQ(report["exit_code"], 0);
    const Outcome no_key = submit(service, {"--status", "--key", "nosuch"});
    EXPECT_EQ(no_key.out, "unknown\n") << describe(no_key);
    // --wait on a task the head does not know: no result, status 4.
    const Outcome waited = submit(service, {"--status", "--wait", "999"});
    EXPECT_EQ(waited.status, 4) << describe(waited);
    EXPECT_EQ(waited.out, "unknown\n");
}

// "--cancel ID: cancel a task not yet sent to a worker"
TEST(Submit, ADelayedTaskCanBeCancelledAndThenIsCancelled) {
    Service service;
    const Outcome delayed = submit(service, {"--delay", "60", "later"});
    ASSERT_EQ(delayed.status, 0) << describe(delayed) << service.describe();
    const std::string id = std::to_string(id_of(delayed));
    EXPECT_EQ(submit(service, {"--status", id}).out, "delayed\n");
    const Outcome cancel = submit(service, {"--cancel", id});
    EXPECT_EQ(cancel.status, 0) << describe(cancel);
    EXPECT_EQ(cancel.out, "cancelled\n");
    EXPECT_EQ(submit(service, {"--status", id}).out, "cancelled\n");
    // A finished task cannot be cancelled: status 1, and its state says why.
    ASSERT_EQ(submit(service, {"--wait", "now"}).status, 0);
    const Outcome too_late = submit(service, {"--cancel", "2"});
    EXPECT_EQ(too_late.status, 1) << describe(too_late);
    EXPECT_EQ(too_late.out, "ok\n");
}

TEST(Submit, WaitingForACancelledTaskEndsWithStatus4) {
    Service service;
    const Outcome delayed = submit(service, {"--at", "@4102444800", "in 2100"});
    ASSERT_EQ(delayed.status, 0) << describe(delayed) << service.describe();
    const std::string id = std::to_string(id_of(delayed));
    Process waiting({submit_path(), "--head", service.head(), "--status", "--wait", id});
    ASSERT_EQ(submit(service, {"--cancel", id}).status, 0);
    EXPECT_EQ(waiting.wait_for_exit(deadline_in(10s)), 4) << waiting.describe();
    EXPECT_EQ(waiting.stdout_text(), "cancelled\n");
}

// "A head that is not there is an error at once"
TEST(Submit, AHeadThatIsDownFailsAtOnceNotAfterTheConnectTimeout) {
    TempDir dir;
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"x"}, {"--wait", "x"}, {"--status", "1"}, {"--cancel", "1"}}) {
        // A refusal, not the connect timeout: reported long before that passes.
        std::vector<std::string> patient = {"--connect-timeout", "30"};
        patient.insert(patient.end(), args.begin(), args.end());
        const Outcome run = submit_to(dir.ipc_endpoint("nohead"), patient);
        EXPECT_EQ(run.status, 2) << describe(run);
        EXPECT_LT(run.took, 10s) << describe(run);
        EXPECT_TRUE(contains(run.err, "nothing answers at " + dir.ipc_endpoint("nohead")))
            << run.err;
        EXPECT_EQ(run.out, "");
    }
}

// "Nothing waits past --timeout"
TEST(Submit, TheTimeoutEndsAWaitWithStatus4) {
    Service service;
    const Outcome run = submit(service, {"--wait", "--timeout", "1", "sleep 5"});
    EXPECT_EQ(run.status, 4) << describe(run);
    EXPECT_GE(run.took, 1s);
    EXPECT_LT(run.took, 5s) << describe(run);
    EXPECT_EQ(run.out, "");
    EXPECT_TRUE(contains(run.err, "gave up: the --timeout passed")) << run.err;
}

// "a head that goes away ... Nothing waits past --timeout"
TEST(Submit, AHeadKilledDuringAWaitEndsTheCommandWithStatus4AtTheTimeout) {
    Service service;
    Process waiting(
        {submit_path(), "--head", service.head(), "--wait", "--timeout", "6", "sleep 20"});
    ASSERT_TRUE(wait_for(
        [&] {
            return submit(service, {"--status", "1"}).out == "running\n";
        },
        deadline_in(20s)))
        << service.describe();
    service.kill_head();
    ASSERT_TRUE(waiting.wait_for_stderr("head unavailable", deadline_in(10s)))
        << waiting.describe();
    EXPECT_EQ(waiting.wait_for_exit(deadline_in(10s)), 4) << waiting.describe();
    EXPECT_EQ(waiting.stdout_text(), "");
    EXPECT_TRUE(contains(waiting.stderr_text(), "gave up: the --timeout passed"))
        << waiting.describe();
}

// A head that accepts the connection but never completes the handshake (paused).
TEST(Submit, AHeadThatDoesNotAnswerFailsAfterTheConnectTimeout) {
    Service service;
    service.head_process().signal(SIGSTOP);
    const Outcome run = submit(service, {"--status", "--connect-timeout", "0.5", "1"});
    service.head_process().signal(SIGCONT);
    EXPECT_EQ(run.status, 2) << describe(run);  // the handshake never completes
    EXPECT_GE(run.took, 500ms);
    EXPECT_LT(run.took, 3s) << describe(run);
    EXPECT_TRUE(contains(run.err, "no answer from the head at " + service.head() + " within 0.5 s"))
        << run.err;
}

TEST(Submit, AWaitRidesOutAHeadRestartedWithItsStore) {
    Service service(/*store=*/true);
    Process waiting(
        {submit_path(), "--head", service.head(), "--wait", "--timeout", "50", "sleep 2"});
    // Once the task runs, the head goes down hard and comes back with the same store.
    ASSERT_TRUE(wait_for(
        [&] {
            return submit(service, {"--status", "1"}).out == "running\n";
        },
        deadline_in(20s)))
        << service.describe();
    service.kill_head();
    service.start_head();
    EXPECT_EQ(waiting.wait_for_exit(deadline_in(40s)), 0)
        << waiting.describe() << service.describe();
    EXPECT_EQ(waiting.stdout_text(), "out:sleep 2");
    EXPECT_TRUE(contains(waiting.stderr_text(), "connected to the head at")) << waiting.describe();
}

TEST(Submit, AnInterruptedWaitExits3AndTheTaskStaysWithTheHead) {
    Service service;
    Process waiting({submit_path(), "--head", service.head(), "--wait", "sleep 5"});
    ASSERT_TRUE(wait_for(
        [&] {
            return submit(service, {"--status", "1"}).out == "running\n";
        },
        deadline_in(20s)))
        << service.describe();
    waiting.signal(SIGINT);
    EXPECT_EQ(waiting.wait_for_exit(deadline_in(5s)), 3) << waiting.describe();
    EXPECT_EQ(submit(service, {"--status", "1"}).out, "running\n");
}

TEST(Submit, TheHeadComesFromTaskpipeHeadAndTaskpipeFindsSubmit) {
    Service service;
    Process run(
        {"/usr/bin/env", "TASKPIPE_HEAD=" + service.head(), taskpipe_path(), "submit", "via env"});
    EXPECT_EQ(run.wait_for_exit(deadline_in(20s)), 0) << run.describe() << service.describe();
    EXPECT_EQ(run.stdout_text(), "1\n");
}

TEST(Submit, AnOverLongRecordOnStdinStopsTheReadingWithStatus2) {
    Service service;
    std::string input = "first\n" + std::string((1u << 20) + 1, 'x') + "\nlast\n";
    const Outcome run = submit(service, {}, Stdin::data(std::move(input)));
    EXPECT_EQ(run.status, 2) << describe(run).substr(0, 2000);
    EXPECT_EQ(run.out, "1\n");  // what was read before it is submitted
    EXPECT_TRUE(contains(run.err, "longer than 1048576 bytes")) << run.err;
}

}  // namespace
}  // namespace taskpipe::testing
