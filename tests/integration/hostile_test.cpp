// Hostile bytes on the sockets that the sink and the worker expose to the network, sent from raw
// ZeroMQ sockets while real programs run. docs/protocol.md, "Rules every receiver applies":
//
//   "A frame that is not a msgpack map, has bytes after the map, lacks v or type, ... a missing
//   required field or a field of the wrong type, is malformed: it is dropped, counted, and logged
//   on stderr ... The receiver keeps working."
//   "Frame size limits (ZMQ_MAXMSGSIZE; a larger frame closes the sender's connection): tasks
//   1 MiB + 4 KiB at the worker, results 32 MiB at the sink, control 1 MiB at both ends."
//
// and the issue's acceptance: each hostile message is dropped and counted, memory stays bounded,
// and the batch in progress still completes exactly once.
#include <gtest/gtest.h>
#include <zmq.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <msgpack.hpp>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "support/binaries.hpp"
#include "support/connections.hpp"
#include "support/pipeline.hpp"
#include "support/process.hpp"
#include "support/results.hpp"
#include "support/temp_dir.hpp"
#include "taskpipe/codec.hpp"
#include "taskpipe/message.hpp"

namespace taskpipe::testing {
namespace {

using namespace std::chrono_literals;

// Generous: a sink or worker holds a few MiB; a decoder that believed a length prefix, or a
// buffer of unbounded hostile input, would go far past it.
constexpr long kPeakRssLimitKib = 200 * 1024;

// The frames every receiver must drop as malformed, built around `valid`, a well-formed
// encoding of the message that the socket under test expects (its truncations are malformed).
std::vector<std::string> malformed_frames(const std::string& valid) {
    std::vector<std::string> frames;
    frames.emplace_back();  // an empty frame
    std::mt19937 random(20240601);
    std::uniform_int_distribution<int> byte(0, 255);
    for (std::size_t length : {1u, 2u, 7u, 64u, 1000u, 65536u}) {
        std::string bytes;
        for (std::size_t i = 0; i < length; ++i) bytes.push_back(static_cast<char>(byte(random)));
        frames.push_back(bytes);
    }
    for (std::size_t length = 1; length < valid.size(); length += 3) {
        frames.push_back(valid.substr(0, length));  // truncated
    }
    frames.push_back(valid + '\xc0');  // trailing bytes after the map
    {
        // Every field of the wrong type.
        msgpack::sbuffer buffer;
        msgpack::packer<msgpack::sbuffer> p(buffer);
        p.pack_map(8);
        p.pack("v");
        p.pack(1);
        p.pack("type");
        p.pack("result");
        p.pack("batch");
        p.pack("seven");
        p.pack("id");
        p.pack(-3);
        p.pack("status");
        p.pack(true);
        p.pack("payload");
        p.pack(std::vector<int>{1, 2});
        p.pack("stdout");
        p.pack(1.5);
        p.pack("attempt");
        p.pack_nil();
        frames.emplace_back(buffer.data(), buffer.size());
    }
    {
        msgpack::sbuffer buffer;  // the right types, but v 2 and an unknown type
        msgpack::packer<msgpack::sbuffer> p(buffer);
        p.pack_map(2);
        p.pack("v");
        p.pack(2);
        p.pack("type");
        p.pack("result");
        frames.emplace_back(buffer.data(), buffer.size());
        buffer.clear();
        p.pack_map(2);
        p.pack("v");
        p.pack(1);
        p.pack("type");
        p.pack("format-disk");
        frames.emplace_back(buffer.data(), buffer.size());
    }
    frames.emplace_back("\xdf\xff\xff\xff\xff");                   // map32 of 4 Gi entries
    frames.emplace_back("\xdd\xff\xff\xff\xff");                   // array32 of 4 Gi elements
    frames.emplace_back("\xdb\xff\xff\xff\xff");                   // str32 of 4 GiB
    frames.emplace_back("\xc6\xff\xff\xff\xff");                   // bin32 of 4 GiB
    frames.emplace_back(std::string(1'000'000, '\x91') + '\xc0');  // 10^6 nested arrays
    frames.emplace_back(std::string("\xd4\x01\x00", 3));           // an ext type
    return frames;
}

// A socket's events, through zmq_socket_monitor: lets a test wait until a connection has really
// been dropped or re-established instead of sleeping.
class Monitor {
  public:
    Monitor(zmq::context_t& context, zmq::socket_t& socket, const std::string& name)
        : pair_(context, zmq::socket_type::pair) {
        const std::string endpoint = "inproc://monitor-" + name;
        if (zmq_socket_monitor(socket.handle(), endpoint.c_str(), ZMQ_EVENT_ALL) != 0) {
            throw zmq::error_t();
        }
        pair_.set(zmq::sockopt::linger, 0);
        pair_.connect(endpoint);
    }

    // Waits for `event` (ZMQ_EVENT_...), skipping any other; false if the deadline passes.
    bool wait_for_event(int event, Deadline deadline) {
        for (;;) {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (left.count() <= 0) return false;
            pair_.set(zmq::sockopt::rcvtimeo, static_cast<int>(left.count()));
            zmq::message_t head;
            zmq::message_t address;
            if (!pair_.recv(head)) return false;
            (void)pair_.recv(address);
            std::uint16_t id = 0;
            std::memcpy(&id, head.data(), sizeof id);
            if (id == event) return true;
        }
    }

  private:
    zmq::socket_t pair_;
};

zmq::socket_t make_socket(zmq::context_t& context, zmq::socket_type type) {
    zmq::socket_t socket(context, type);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::sndtimeo, 10'000);
    socket.set(zmq::sockopt::rcvtimeo, 10'000);
    return socket;
}

void send(zmq::socket_t& socket, const std::string& frame,
          zmq::send_flags flags = zmq::send_flags::none) {
    ASSERT_TRUE(socket.send(zmq::buffer(frame), flags)) << "send timed out";
}

std::optional<Message> receive(zmq::socket_t& socket) {
    zmq::message_t frame;
    if (!socket.recv(frame)) return std::nullopt;
    return decode(std::string_view(frame.data<char>(), frame.size())).message;
}

// The peak resident set size of a running process (VmHWM), in KiB; 0 once it has exited.
long peak_rss_kib(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);) {
        if (line.starts_with("VmHWM:")) return std::stol(line.substr(6));
    }
    return 0;
}

// Samples a process's VmHWM until it exits; returns the exit status and the highest reading.
std::pair<std::optional<int>, long> wait_for_exit_measuring(Process& process, Deadline deadline) {
    long peak = 0;
    wait_for(
        [&] {
            peak = std::max(peak, peak_rss_kib(process.pid()));
            return !process.running();
        },
        deadline);
    return {process.wait_for_exit(deadline), peak};
}

// The number in the sink's summary, "..., N malformed messages dropped".
long malformed_in_summary(const std::string& stderr_text) {
    std::smatch match;
    if (!std::regex_search(stderr_text, match, std::regex("([0-9]+) malformed messages dropped"))) {
        return 0;
    }
    return std::stol(match[1]);
}

// Acceptance (a): "Tests send truncated, garbage, wrongly typed, deeply nested, huge-length-prefix
// and oversized messages to ... the sink's sockets: each is dropped and counted, memory stays
// bounded, and the batch in progress still completes exactly once."
TEST(Hostile, SinkDropsAndCountsMalformedMessagesAndTheBatchCompletesExactlyOnce) {
    constexpr int kTasks = 240;  // 40 ms each on 2 x 2 slots: about 2.5 s of work
    auto lines = [](int from, int to) {
        std::string input;
        for (int i = from; i <= to; ++i) input += "40\n";
        return input;
    };

    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl"});
    Process& ventilator =
        pipeline.start_ventilator(Stdin::held_open(), {"--liveness-timeout", "2"});
    for (int i = 0; i < 2; ++i) pipeline.start_worker({"-c", "2", "--builtin", "sleep"});

    zmq::context_t context;
    // A third "worker" that takes one task to learn the batch id, then hands it back with a
    // release, as a full worker does. The tasks it may have been sent besides come back through
    // the ventilator's liveness timeout.
    zmq::socket_t spy = make_socket(context, zmq::socket_type::pull);
    spy.set(zmq::sockopt::rcvhwm, 1);
    spy.connect(pipeline.endpoints().tasks);
    const int tasks_port = tcp_port(pipeline.endpoints().tasks);
    ASSERT_TRUE(wait_for([&] { return accepted_connections(tasks_port) >= 3; }, deadline_in(10s)));

    // Half the input: the batch runs, and cannot end (no End) until the rest is given.
    ventilator.feed_stdin(lines(1, kTasks / 2));
    const std::optional<Message> stolen = receive(spy);
    ASSERT_TRUE(stolen) << "no task reached the spy\n" << ventilator.describe();
    const Task task = std::get<Task>(*stolen);
    spy.close();
    const std::uint64_t batch = task.batch;
    const std::uint64_t foreign = batch ^ 0x5a5a5a5a5a5a5a5au;

    Encoder encoder;
    zmq::socket_t results = make_socket(context, zmq::socket_type::push);
    results.connect(pipeline.endpoints().results);
    WorkerRelease release;
    release.tasks = {{batch, task.id}};
    send(results, std::string(encoder.encode(release)));

    Result valid;
    valid.batch = batch;
    valid.id = 1;
    valid.status = Status::ok;
    valid.out = "forged output";
    valid.host = "hostile";
    const std::vector<std::string> garbage = malformed_frames(std::string(encoder.encode(valid)));
    long expected_malformed = 0;

    // The results socket (PULL): every malformed frame, a message of the wrong type for it, a
    // multi-frame message, and a well-formed result of another batch.
    for (const std::string& frame : garbage) send(results, frame);
    expected_malformed += static_cast<long>(garbage.size());
    send(results, std::string(encoder.encode(Task{batch, 1, 1, "not a result"})));
    ++expected_malformed;
    send(results, "\x01\x02", zmq::send_flags::sndmore);
    send(results, "\x03", zmq::send_flags::sndmore);
    send(results, "\xc1");
    ++expected_malformed;  // at least one count for the three frames
    Result other_batch = valid;
    other_batch.batch = foreign;
    send(results, std::string(encoder.encode(other_batch)));

    // A frame over the sink's 32 MiB limit closes the sender's connection.
    {
        // A context of its own: the 32 MiB frame can keep this one's I/O thread busy.
        zmq::context_t big_context;
        zmq::socket_t big = make_socket(big_context, zmq::socket_type::push);
        Monitor monitor(big_context, big, "sink-results-big");
        big.connect(pipeline.endpoints().results);
        ASSERT_TRUE(monitor.wait_for_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, deadline_in(10s)));
        send(big, std::string(kMaxResultFrame + 1, 'x'));
        EXPECT_TRUE(monitor.wait_for_event(ZMQ_EVENT_DISCONNECTED, deadline_in(10s)))
            << "the sink kept a connection that sent a frame over its limit";
    }

    // The control socket (ROUTER), as a DEALER: malformed frames, a message of the wrong type, a
    // multi-frame message, then a well-formed hello for another batch, which must be rejected.
    zmq::socket_t control = make_socket(context, zmq::socket_type::dealer);
    control.connect(pipeline.endpoints().control);
    for (const std::string& frame : garbage) send(control, frame);
    expected_malformed += static_cast<long>(garbage.size());
    send(control, std::string(encoder.encode(valid)));
    ++expected_malformed;
    send(control, std::string(encoder.encode(Bye{batch})), zmq::send_flags::sndmore);
    send(control, std::string(encoder.encode(Bye{batch})));
    ++expected_malformed;
    send(control, std::string(encoder.encode(Hello{foreign})));
    // The answer comes after every frame before it was read: the sink has got through them.
    const std::optional<Message> answer = receive(control);
    ASSERT_TRUE(answer) << "no answer to a hello for another batch\n" << sink.describe();
    const auto* reject = std::get_if<Reject>(&*answer);
    ASSERT_NE(reject, nullptr) << "a hello for another batch was not rejected";
    EXPECT_EQ(reject->batch, foreign);

    {
        zmq::context_t big_context;
        zmq::socket_t big = make_socket(big_context, zmq::socket_type::dealer);
        Monitor monitor(big_context, big, "sink-control-big");
        big.connect(pipeline.endpoints().control);
        ASSERT_TRUE(monitor.wait_for_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, deadline_in(10s)));
        send(big, std::string((1u << 20) + 1, 'x'));
        EXPECT_TRUE(monitor.wait_for_event(ZMQ_EVENT_DISCONNECTED, deadline_in(10s)))
            << "the sink kept a control connection that sent a frame over its limit";
    }

    EXPECT_TRUE(sink.running()) << sink.describe();
    ventilator.finish_stdin(lines(kTasks / 2 + 1, kTasks));

    const auto [status, peak_kib] = wait_for_exit_measuring(sink, deadline_in(90s));
    ASSERT_EQ(status, 0) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline_in(10s)), 0) << ventilator.describe();

    const std::string log = sink.stderr_text();
    EXPECT_NE(log.find("sink info: " + std::to_string(kTasks) + " tasks, 0 failed, 0 lost"),
              std::string::npos)
        << log;
    EXPECT_GE(malformed_in_summary(log), expected_malformed) << log;
    EXPECT_NE(log.find("1 results of other batches dropped"), std::string::npos) << log;
    EXPECT_GT(peak_kib, 0);
    EXPECT_LT(peak_kib, kPeakRssLimitKib) << "sink VmHWM " << peak_kib << " KiB";

    std::map<std::uint64_t, int> seen;
    for (const auto& result : parse_json_lines(sink.stdout_text())) {
        ++seen[result.at("id").get<std::uint64_t>()];
        EXPECT_EQ(result.at("status"), "ok") << result.dump();
        EXPECT_NE(result.at("worker"), "hostile:0") << "a forged result was written";
    }
    EXPECT_EQ(seen.size(), static_cast<std::size_t>(kTasks));
    for (int id = 1; id <= kTasks; ++id) {
        EXPECT_EQ(seen[static_cast<std::uint64_t>(id)], 1) << "task " << id;
    }
}

// A sink driven by the test as its ventilator (DEALER on control) and a worker (PUSH on results).
class SinkDriver {
  public:
    explicit SinkDriver(Pipeline& pipeline)
        : control_(make_socket(context_, zmq::socket_type::dealer)),
          results_(make_socket(context_, zmq::socket_type::push)) {
        control_.connect(pipeline.endpoints().control);
        results_.connect(pipeline.endpoints().results);
    }

    void to_control(const Message& message) {
        send(control_, std::string(encoder_.encode(message)));
    }
    void to_results(const Message& message) {
        send(results_, std::string(encoder_.encode(message)));
    }

    // Waits for a Welcome for `batch`.
    bool welcomed(std::uint64_t batch) {
        return wait_until([&](const Message& m) {
            const auto* welcome = std::get_if<Welcome>(&m);
            return welcome != nullptr && welcome->batch == batch;
        });
    }

    // Waits for a Reject for `batch`.
    bool rejected(std::uint64_t batch) {
        return wait_until([&](const Message& m) {
            const auto* reject = std::get_if<Reject>(&m);
            return reject != nullptr && reject->batch == batch;
        });
    }

    // Waits for an Ack naming `id`.
    bool acknowledged(std::uint64_t id, std::chrono::milliseconds within = 10s) {
        return wait_until(
            [&](const Message& m) {
                const auto* ack = std::get_if<Ack>(&m);
                return ack != nullptr &&
                       std::find(ack->ids.begin(), ack->ids.end(), id) != ack->ids.end();
            },
            within);
    }

    // Waits for an Outcome of task `id` whose result started at `started_us`.
    bool told_outcome(std::uint64_t id, std::uint64_t started_us) {
        return wait_until([&](const Message& m) {
            const auto* outcome = std::get_if<Outcome>(&m);
            return outcome != nullptr && outcome->id == id && outcome->started_us == started_us;
        });
    }

  private:
    template <typename Match>
    bool wait_until(Match&& match, std::chrono::milliseconds within = 10s) {
        const auto deadline = deadline_in(within);
        while (Clock::now() < deadline) {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            control_.set(zmq::sockopt::rcvtimeo, std::max(1, static_cast<int>(left.count())));
            const std::optional<Message> message = receive(control_);
            if (message && match(*message)) return true;
        }
        return false;
    }

    zmq::context_t context_;
    zmq::socket_t control_;
    zmq::socket_t results_;
    Encoder encoder_;
};

// docs/protocol.md: "reject ... The sink already serves another batch."
TEST(Hostile, SinkRejectsAHelloForAnotherBatch) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink();
    SinkDriver ventilator(pipeline);
    ventilator.to_control(Hello{77});
    ASSERT_TRUE(ventilator.welcomed(77)) << sink.describe();
    SinkDriver intruder(pipeline);
    intruder.to_control(Hello{78});
    EXPECT_TRUE(intruder.rejected(78)) << sink.describe();
}

// A service's sink holds each result and reports it to the head (outcome). A task that comes
// back means the head never heard (the outcome was dropped on the way): the sink reports the held
// result again, or the task would be run again and again until it is lost.
TEST(Hostile, AServingSinkReportsAHeldResultAgainWhenItsTaskComesBack) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--serve"});
    SinkDriver head(pipeline);
    head.to_control(Hello{77, 0, /*serve=*/true});
    ASSERT_TRUE(head.welcomed(77)) << sink.describe();
    Result first;
    first.batch = 77;
    first.id = 1;
    first.host = "a";
    first.pid = 1;
    first.started_us = 100;
    head.to_results(first);
    ASSERT_TRUE(head.told_outcome(1, 100)) << sink.describe();
    Result again = first;
    again.host = "b";
    again.started_us = 200;
    head.to_results(again);
    EXPECT_TRUE(head.told_outcome(1, 100)) << "the held result was not reported again\n"
                                           << sink.describe();
}

// Issue 10: "The sink welcomes hello{batch: 0} and then a second batch, although docs say a sink
// serves the first batch it hears of and batch 0 is not a valid batch."
TEST(Hostile, SinkIgnoresAHelloForBatchZero) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink();
    SinkDriver ventilator(pipeline);
    ventilator.to_control(Hello{0});
    ventilator.to_control(Hello{77});
    EXPECT_TRUE(ventilator.welcomed(77)) << sink.describe();
}

// Issue 12: "The sink takes control messages from any peer there ... `end{total: 3}` makes the
// sink exit 0 with 57 of 200 results; `skip` of every id makes both programs exit 0 ...; a
// `hello` for the running batch re-points the sink's replies to the attacker." Control messages
// are taken only from the connection that opened the batch; a Hello for the running batch from
// another one is refused while the batch's ventilator is talking.
TEST(Hostile, SinkTakesControlMessagesOnlyFromTheBatchsVentilator) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl"});
    SinkDriver ventilator(pipeline);
    constexpr std::uint64_t kBatch = 77;
    ventilator.to_control(Hello{kBatch});
    ASSERT_TRUE(ventilator.welcomed(kBatch)) << sink.describe();

    SinkDriver intruder(pipeline);
    intruder.to_control(End{kBatch, 1});
    intruder.to_control(Skip{kBatch, {1, 2}, {}});
    intruder.to_control(Lost{kBatch, 2, 3});
    intruder.to_control(Bye{kBatch});
    intruder.to_control(Hello{kBatch});
    EXPECT_TRUE(intruder.rejected(kBatch)) << sink.describe();
    ventilator.to_control(Progress{kBatch, 2, 2, 0, 0});

    Result result;
    result.batch = kBatch;
    result.id = 1;
    result.out = "one";
    ventilator.to_results(result);
    ASSERT_TRUE(ventilator.acknowledged(1)) << "the replies went elsewhere\n" << sink.describe();
    EXPECT_FALSE(sink.wait_for_stderr(" tasks, ", deadline_in(1s)))
        << "the intruder's End, Skip or Lost completed the batch\n"
        << sink.describe();
    result.id = 2;
    ventilator.to_results(result);
    ASSERT_TRUE(ventilator.acknowledged(2)) << sink.describe();
    ventilator.to_control(End{kBatch, 2});
    ventilator.to_control(Bye{kBatch});
    ASSERT_EQ(sink.wait_for_exit(deadline_in(10s)), 0) << sink.describe();
    EXPECT_EQ(parse_json_lines(sink.stdout_text()).size(), 2u) << sink.describe();
    EXPECT_TRUE(sink.wait_for_stderr("refused a control message", deadline_in(1s)))
        << sink.describe();
}

// docs/protocol.md: "end ... the batch holds tasks 1 to total"; the sink "writes each task's
// output exactly once" and "the batch is complete when the ventilator's End has given the total
// and every id from 1 to total has a result". A result whose id turns out to be beyond the batch
// must not stand in for a task of the batch, even when it came before End. (Its output may
// already have been written: before End the sink cannot know the batch's length; protocol.md.)
TEST(Hostile, SinkDoesNotCountAResultBeyondTheBatchThatCameBeforeEnd) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl"});
    SinkDriver driver(pipeline);
    constexpr std::uint64_t kBatch = 77;
    driver.to_control(Hello{kBatch});
    ASSERT_TRUE(driver.welcomed(kBatch)) << sink.describe();

    Result beyond;
    beyond.batch = kBatch;
    beyond.id = 3;
    beyond.out = "beyond";
    driver.to_results(beyond);
    (void)driver.acknowledged(3, 2s);  // a sink may acknowledge it or not; either way it has it
    driver.to_control(End{kBatch, 2});
    Result first = beyond;
    first.id = 1;
    first.out = "one";
    driver.to_results(first);
    ASSERT_TRUE(driver.acknowledged(1)) << sink.describe();
    EXPECT_FALSE(sink.wait_for_stderr(" tasks, ", deadline_in(1s)))
        << "the batch completed without task 2\n"
        << sink.describe();

    Result second = first;
    second.id = 2;
    second.out = "two";
    driver.to_results(second);
    ASSERT_TRUE(driver.acknowledged(2)) << sink.describe();
    driver.to_control(Bye{kBatch});
    ASSERT_EQ(sink.wait_for_exit(deadline_in(10s)), 0) << sink.describe();
    std::multiset<std::uint64_t> ids;
    for (const auto& result : parse_json_lines(sink.stdout_text())) {
        ids.insert(result.at("id").get<std::uint64_t>());
    }
    EXPECT_EQ(ids.count(1), 1u);
    EXPECT_EQ(ids.count(2), 1u);
    EXPECT_LE(ids.count(3), 1u);
    EXPECT_TRUE(sink.wait_for_stderr("results had ids beyond the batch's end", deadline_in(1s)))
        << sink.describe();
}

// docs/protocol.md, on the sink: results that arrive before the Hello "are held (up to a byte
// limit)" (sink.hpp). The limit must bound memory whatever the results hold, empty ones too.
TEST(Hostile, SinkMemoryStaysBoundedUnderAFloodOfResultsBeforeTheBatch) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink();
    SinkDriver driver(pipeline);
    long peak = 0;
    Result empty;
    empty.batch = 1;
    for (std::uint64_t id = 1; id <= 2'000'000; ++id) {
        empty.id = id;
        driver.to_results(empty);
        if (id % 100'000 == 0) peak = std::max(peak, peak_rss_kib(sink.pid()));
    }
    // The sink may still be reading the flood: give it until it has grown past the limit.
    wait_for(
        [&] {
            peak = std::max(peak, peak_rss_kib(sink.pid()));
            return peak > kPeakRssLimitKib;
        },
        deadline_in(5s), 50ms);
    constexpr std::uint64_t kBatch = 2;
    driver.to_control(Hello{kBatch});
    ASSERT_TRUE(driver.welcomed(kBatch)) << sink.describe();
    driver.to_control(End{kBatch, 0});
    driver.to_control(Bye{kBatch});
    const auto [status, last_peak] = wait_for_exit_measuring(sink, deadline_in(60s));
    EXPECT_EQ(status, 0) << sink.describe();
    peak = std::max(peak, last_peak);
    EXPECT_LT(peak, kPeakRssLimitKib) << "sink VmHWM " << peak << " KiB";
}

// A fake ventilator (PUSH, bound here) and a fake sink (PULL, bound here) around one real worker.
class FakePeers {
  public:
    FakePeers()
        : tasks_(make_socket(context_, zmq::socket_type::push)),
          results_(make_socket(context_, zmq::socket_type::pull)),
          monitor_(context_, tasks_, "fake-ventilator") {
        tasks_.bind("tcp://127.0.0.1:*");
        results_.bind("tcp://127.0.0.1:*");
    }

    Process start_worker(const std::vector<std::string>& args) {
        std::vector<std::string> argv = {
            worker_path(),
            "-v",
            tasks_.get(zmq::sockopt::last_endpoint),
            "-s",
            results_.get(zmq::sockopt::last_endpoint),
        };
        argv.insert(argv.end(), args.begin(), args.end());
        return Process(std::move(argv));
    }

    zmq::socket_t& tasks() { return tasks_; }
    Monitor& monitor() { return monitor_; }

    // Sends `task` and waits for its result, answering releases by sending the task again (as a
    // ventilator does); counts every result received, heartbeats aside.
    ::testing::AssertionResult run(const Task& task, Encoder& encoder) {
        if (!tasks_.send(zmq::buffer(encoder.encode(task)))) {
            return ::testing::AssertionFailure() << "task " << task.id << " not sent";
        }
        const auto deadline = deadline_in(10s);
        while (Clock::now() < deadline) {
            const std::optional<Message> message = receive(results_);
            if (!message) break;
            if (count(*message, task.id)) return ::testing::AssertionSuccess();
            if (const auto* release = std::get_if<WorkerRelease>(&*message)) {
                for (const TaskRef& ref : release->tasks) {
                    if (ref.id == task.id) (void)tasks_.send(zmq::buffer(encoder.encode(task)));
                }
            }
        }
        return ::testing::AssertionFailure() << "no result for task " << task.id;
    }

    // Takes whatever the worker still sends (until `process` has exited and a little after).
    void drain(Process& process) {
        results_.set(zmq::sockopt::rcvtimeo, 200);
        while (process.running()) (void)drain_once();
        while (drain_once()) {
        }
    }

    const std::map<std::uint64_t, int>& results_by_id() const { return results_by_id_; }

    // Sends `frame` (a `tasks` frame) and waits until every task of `tasks` has a result,
    // sending a released one again alone, as a ventilator does.
    ::testing::AssertionResult run_group(const std::string& frame, const std::vector<Task>& tasks,
                                         Encoder& encoder) {
        if (!tasks_.send(zmq::buffer(frame))) return ::testing::AssertionFailure() << "not sent";
        std::set<std::uint64_t> waiting;
        for (const Task& t : tasks) waiting.insert(t.id);
        const auto deadline = deadline_in(10s);
        while (!waiting.empty() && Clock::now() < deadline) {
            const std::optional<Message> message = receive(results_);
            if (!message) break;
            for (const Task& t : tasks) {
                if (waiting.contains(t.id) && count_once(*message, t.id)) waiting.erase(t.id);
            }
            (void)count(*message, 0);
            if (const auto* release = std::get_if<WorkerRelease>(&*message)) {
                for (const TaskRef& ref : release->tasks) {
                    for (const Task& t : tasks) {
                        if (ref.id == t.id) (void)tasks_.send(zmq::buffer(encoder.encode(t)));
                    }
                }
            }
        }
        if (waiting.empty()) return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure() << waiting.size() << " tasks without a result";
    }

  private:
    static bool count_once(const Message& message, std::uint64_t id) {
        if (const auto* result = std::get_if<Result>(&message)) return result->id == id;
        if (const auto* group = std::get_if<ResultGroup>(&message)) {
            for (const Result& r : group->results.items) {
                if (r.id == id) return true;
            }
        }
        return false;
    }

    bool drain_once() {
        const std::optional<Message> message = receive(results_);
        if (!message) return false;
        (void)count(*message, 0);
        return true;
    }

    // Counts the results `message` holds, alone or in a group; whether one is for task `id`.
    bool count(const Message& message, std::uint64_t id) {
        bool found = false;
        auto one = [&](const Result& r) {
            ++results_by_id_[r.id];
            found = found || r.id == id;
        };
        if (const auto* result = std::get_if<Result>(&message)) one(*result);
        if (const auto* group = std::get_if<ResultGroup>(&message)) {
            for (const Result& r : group->results.items) one(r);
        }
        return found;
    }

    zmq::context_t context_;
    zmq::socket_t tasks_;
    zmq::socket_t results_;
    Monitor monitor_;
    std::map<std::uint64_t, int> results_by_id_;
};

// "Never trust bytes off the network": a worker's host name comes off the network and ends up in
// the sink's log lines, its summary, --stats (JSON), --joblog (one tab-separated line per task)
// and the metrics. Tabs, newlines, terminal escapes or bytes that are not UTF-8 in it must not
// break any of them, nor the exit status of a batch that completed.
TEST(Hostile, SinkKeepsItsOutputsWellFormedWhateverAWorkerCallsItself) {
    TempDir dir;
    const std::string stats_file = dir.file("stats.json");
    const std::string joblog = dir.file("jobs.tsv");
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--stats", stats_file, "--joblog", joblog});
    SinkDriver driver(pipeline);
    constexpr std::uint64_t kBatch = 91;
    driver.to_control(Hello{kBatch});
    ASSERT_TRUE(driver.welcomed(kBatch)) << sink.describe();

    const std::string host = "evil\thost\n2\tx\t-\t0.000\tok\t0\t-\t1\t2\x1b[2J\xff\xfe";
    driver.to_results(Heartbeat{host, 7, 1, 1, false, {}});
    Result failed;
    failed.batch = kBatch;
    failed.id = 1;
    failed.status = Status::failed;
    failed.exit_code = 1;
    failed.host = host;
    failed.pid = 7;
    failed.input = "1";
    driver.to_results(failed);
    ASSERT_TRUE(driver.acknowledged(1)) << sink.describe();
    driver.to_control(End{kBatch, 1});
    driver.to_control(Bye{kBatch});
    ASSERT_EQ(sink.wait_for_exit(deadline_in(10s)), 1) << sink.describe();

    const std::string err = sink.stderr_text();
    EXPECT_EQ(err.find('\x1b'), std::string::npos) << err;
    for (const std::string& line : split_lines(err)) {
        EXPECT_TRUE(std::regex_search(line, std::regex(R"(^\d{4}-\d\d-\d\dT[\d:.]+Z sink )")))
            << line;
    }
    std::ifstream stats_in(stats_file);
    const auto stats = nlohmann::json::parse(stats_in, nullptr, false);
    ASSERT_FALSE(stats.is_discarded()) << "--stats is not JSON\n" << sink.describe();
    EXPECT_EQ(stats.at("status").at("failed"), 1);
    std::ifstream joblog_in(joblog, std::ios::binary);
    std::vector<std::string> lines;
    for (std::string line; std::getline(joblog_in, line);) lines.push_back(line);
    ASSERT_EQ(lines.size(), 2u) << "a header and one line";
    EXPECT_EQ(std::count(lines[1].begin(), lines[1].end(), '\t'), 8) << lines[1];
}

// Acceptance (b): hostile frames on the worker's task socket, interleaved with valid tasks:
// every valid task gets exactly one result, and the worker stays up and exits cleanly.
TEST(Hostile, WorkerDropsMalformedTasksAndRunsEveryValidOneOnce) {
    FakePeers peers;
    Process worker = peers.start_worker({"-c", "2", "--builtin", "echo"});
    ASSERT_TRUE(peers.monitor().wait_for_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, deadline_in(10s)))
        << worker.describe();

    constexpr std::uint64_t kBatch = 0x1234abcd;
    Encoder encoder;
    const std::vector<std::string> garbage =
        malformed_frames(std::string(encoder.encode(Task{kBatch, 1, 1, "payload"})));
    std::set<std::uint64_t> sent;
    std::uint64_t next_id = 1;
    auto run_next = [&] {
        const Task task{kBatch, next_id, 1, "task-" + std::to_string(next_id)};
        sent.insert(next_id++);
        return peers.run(task, encoder);
    };

    for (std::size_t i = 0; i < garbage.size(); ++i) {
        send(peers.tasks(), garbage[i]);
        if (i % 4 == 0) {
            ASSERT_TRUE(run_next()) << worker.describe();
        }
    }
    // A message of another type, and a multi-frame message of garbage.
    send(peers.tasks(), std::string(encoder.encode(Result{})));
    send(peers.tasks(), "\xc1", zmq::send_flags::sndmore);
    send(peers.tasks(), "\x92");
    ASSERT_TRUE(run_next()) << worker.describe();

    EXPECT_TRUE(worker.running());
    worker.signal(SIGTERM);
    peers.drain(worker);
    EXPECT_EQ(worker.wait_for_exit(deadline_in(10s)), 0) << worker.describe();
    EXPECT_NE(worker.stderr_text().find("malformed task"), std::string::npos) << worker.describe();

    std::set<std::uint64_t> answered;
    for (const auto& [id, count] : peers.results_by_id()) {
        EXPECT_EQ(count, 1) << "task " << id;
        answered.insert(id);
    }
    EXPECT_EQ(answered, sent);
}

// Acceptance (b): "a huge-frame (over 1 MiB + 4 KiB) task: dropped by the worker's
// ZMQ_MAXMSGSIZE (the connection is dropped and re-established; subsequent valid tasks still
// processed)".
TEST(Hostile, WorkerConnectsAgainAfterAnOversizedTaskFrame) {
    FakePeers peers;
    Process worker = peers.start_worker({"-c", "2", "--builtin", "echo"});
    ASSERT_TRUE(peers.monitor().wait_for_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, deadline_in(10s)))
        << worker.describe();
    Encoder encoder;
    ASSERT_TRUE(peers.run(Task{7, 1, 1, "before"}, encoder)) << worker.describe();

    send(peers.tasks(), std::string(kMaxPayloadBytes + 4096 + 1, 'x'));
    ASSERT_TRUE(peers.monitor().wait_for_event(ZMQ_EVENT_DISCONNECTED, deadline_in(10s)))
        << "the worker kept a connection that sent a frame over its limit\n"
        << worker.describe();
    ASSERT_TRUE(peers.monitor().wait_for_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, deadline_in(10s)))
        << "the worker did not connect again\n"
        << worker.describe();
    for (std::uint64_t id = 2; id <= 11; ++id) {
        ASSERT_TRUE(peers.run(Task{7, id, 1, "after"}, encoder)) << worker.describe();
    }
    worker.signal(SIGTERM);
    peers.drain(worker);
    EXPECT_EQ(worker.wait_for_exit(deadline_in(10s)), 0) << worker.describe();
    for (const auto& [id, count] : peers.results_by_id()) EXPECT_EQ(count, 1) << "task " << id;
    EXPECT_EQ(peers.results_by_id().size(), 11u);
}

// docs/protocol.md: "Every message is one ZeroMQ frame holding one msgpack map." A multi-frame
// message is therefore not a task, even when each of its frames would be one alone.
TEST(Hostile, WorkerDropsAMultiFrameTaskMessageWhole) {
    FakePeers peers;
    Process worker = peers.start_worker({"-c", "2", "--builtin", "echo"});
    ASSERT_TRUE(peers.monitor().wait_for_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, deadline_in(10s)))
        << worker.describe();

    Encoder encoder;
    send(peers.tasks(), std::string(encoder.encode(Task{7, 1, 1, "first frame"})),
         zmq::send_flags::sndmore);
    send(peers.tasks(), std::string(encoder.encode(Task{7, 2, 1, "second frame"})));
    // Tasks are taken in order: once task 3 has its result, 1 and 2 have been looked at.
    ASSERT_TRUE(peers.run(Task{7, 3, 1, "single"}, encoder)) << worker.describe();
    worker.signal(SIGTERM);
    peers.drain(worker);
    EXPECT_EQ(worker.wait_for_exit(deadline_in(10s)), 0) << worker.describe();
    EXPECT_EQ(peers.results_by_id(), (std::map<std::uint64_t, int>{{3, 1}}));
    EXPECT_NE(worker.stderr_text().find("malformed task"), std::string::npos) << worker.describe();
}

// A `tasks` frame whose elements are given as raw msgpack.
std::string tasks_frame(const std::vector<std::string>& elements,
                        std::optional<std::uint32_t> claimed = std::nullopt) {
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer> p(buffer);
    p.pack_map(3);
    p.pack("v");
    p.pack(1);
    p.pack("type");
    p.pack("tasks");
    p.pack("tasks");
    p.pack_array(claimed.value_or(static_cast<std::uint32_t>(elements.size())));
    for (const std::string& e : elements) buffer.write(e.data(), e.size());
    return {buffer.data(), buffer.size()};
}

// A task as an element of a `tasks` frame: its map without v and type.
std::string task_element(const Task& task) {
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer> p(buffer);
    p.pack_map(4);
    p.pack("batch");
    p.pack(task.batch);
    p.pack("id");
    p.pack(task.id);
    p.pack("attempt");
    p.pack(task.attempt);
    p.pack("payload");
    p.pack_bin(static_cast<std::uint32_t>(task.payload.size()));
    p.pack_bin_body(task.payload.data(), static_cast<std::uint32_t>(task.payload.size()));
    return {buffer.data(), buffer.size()};
}

// docs/protocol.md, rule 5: "an element that is not a map, or that a single message of its type
// would be malformed for ... is dropped and counted, and the frame's other elements are taken";
// rule 3: "A tasks or results frame holds at most 1,024 messages; one with more is malformed as a
// whole, as is one whose array is cut short."
TEST(Hostile, WorkerRunsTheWellFormedTasksOfAGroupOnceAndDropsTheRest) {
    FakePeers peers;
    Process worker = peers.start_worker({"-c", "2", "--builtin", "echo"});
    ASSERT_TRUE(peers.monitor().wait_for_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, deadline_in(10s)))
        << worker.describe();
    constexpr std::uint64_t kBatch = 0xabcdef;
    Encoder encoder;
    msgpack::sbuffer number;
    msgpack::packer<msgpack::sbuffer>(number).pack(42);
    const std::string not_a_map(number.data(), number.size());
    const std::string id_zero = task_element(Task{kBatch, 0, 1, "zero"});
    std::string no_payload;
    {
        msgpack::sbuffer b;
        msgpack::packer<msgpack::sbuffer> p(b);
        p.pack_map(2);
        p.pack("batch");
        p.pack(kBatch);
        p.pack("id");
        p.pack(99);
        no_payload.assign(b.data(), b.size());
    }

    // Whole frames refused: a count larger than the elements present, more than 1,024 elements,
    // a list that is not an array, and garbage in every element.
    const std::string valid = task_element(Task{kBatch, 100, 1, "never"});
    send(peers.tasks(), tasks_frame({valid, valid}, 1000));
    send(peers.tasks(), tasks_frame(std::vector<std::string>(kMaxGroupItems + 1, valid)));
    send(peers.tasks(), tasks_frame({}, 0xffffffffu));
    send(peers.tasks(), tasks_frame({not_a_map, id_zero, no_payload}));

    // Mixed: three valid tasks among malformed elements.
    std::vector<Task> good;
    std::vector<std::string> elements = {not_a_map};
    for (std::uint64_t id = 1; id <= 3; ++id) {
        good.push_back(Task{kBatch, id, 1, "task-" + std::to_string(id)});
        elements.push_back(task_element(good.back()));
        elements.push_back(id == 2 ? id_zero : no_payload);
    }
    ASSERT_TRUE(peers.run_group(tasks_frame(elements), good, encoder)) << worker.describe();
    ASSERT_TRUE(peers.run(Task{kBatch, 4, 1, "single"}, encoder)) << worker.describe();

    EXPECT_TRUE(worker.running());
    worker.signal(SIGTERM);
    peers.drain(worker);
    EXPECT_EQ(worker.wait_for_exit(deadline_in(10s)), 0) << worker.describe();
    EXPECT_EQ(peers.results_by_id(), (std::map<std::uint64_t, int>{{1, 1}, {2, 1}, {3, 1}, {4, 1}}))
        << "task 100 must not run: every frame holding it was refused";
    const std::string log = worker.stderr_text();
    EXPECT_NE(log.find("malformed task of a group"), std::string::npos) << log;
    EXPECT_NE(log.find("more than 1024"), std::string::npos) << log;
    std::smatch match;
    ASSERT_TRUE(std::regex_search(log, match, std::regex("([0-9]+) malformed messages"))) << log;
    // 3 whole frames (cut short, too many elements, four billion claimed), 3 elements of the
    // fourth, 4 of the mixed one.
    EXPECT_EQ(std::stol(match[1]), 3 + 3 + 4) << log;
}

// The sink's side: a `results` frame's well-formed results are written and acknowledged, each
// once; its malformed elements are counted; a frame over the limits is dropped whole.
TEST(Hostile, SinkTakesTheWellFormedResultsOfAGroupAndCountsTheRest) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--jsonl"});
    SinkDriver driver(pipeline);
    constexpr std::uint64_t kBatch = 78;
    driver.to_control(Hello{kBatch});
    ASSERT_TRUE(driver.welcomed(kBatch)) << sink.describe();

    auto result = [](std::uint64_t id) {
        Result r;
        r.batch = kBatch;
        r.id = id;
        r.out = "out-" + std::to_string(id) + "\n";
        r.host = "grouped";
        return r;
    };
    Result lost = result(3);
    lost.status = Status::lost;  // a worker never sends it
    Result zero = result(0);
    ResultGroup group;
    group.results.items = {result(1), lost, result(2), zero, result(1)};  // 1 twice: written once
    driver.to_results(group);
    ResultGroup too_many;
    too_many.results.items.assign(kMaxGroupItems + 1, result(3));
    driver.to_results(too_many);
    // 1 and 2 are acknowledged together: the ack of 2 shows that the frame was read.
    ASSERT_TRUE(driver.acknowledged(2)) << sink.describe();
    driver.to_results(result(3));
    ASSERT_TRUE(driver.acknowledged(3)) << sink.describe();
    driver.to_control(End{kBatch, 3});
    driver.to_control(Bye{kBatch});
    ASSERT_EQ(sink.wait_for_exit(deadline_in(10s)), 0) << sink.describe();

    std::map<std::uint64_t, int> seen;
    for (const auto& line : parse_json_lines(sink.stdout_text())) {
        ++seen[line.at("id").get<std::uint64_t>()];
    }
    EXPECT_EQ(seen, (std::map<std::uint64_t, int>{{1, 1}, {2, 1}, {3, 1}}));
    // Two elements of the first frame, and the second frame whole.
    EXPECT_EQ(malformed_in_summary(sink.stderr_text()), 3) << sink.describe();
    EXPECT_TRUE(sink.wait_for_stderr("status 'lost'", deadline_in(1s))) << sink.describe();
    EXPECT_TRUE(sink.wait_for_stderr("id 0", deadline_in(1s))) << sink.describe();
}

}  // namespace
}  // namespace taskpipe::testing
