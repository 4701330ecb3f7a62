// The wire codec (common/include/taskpipe/codec.hpp, message.hpp).
//
// "Encoding cannot fail. Decoding treats its input as hostile: it never throws, never allocates
// more than a small multiple of the input's size, and reports why a message was refused."

#include "taskpipe/codec.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

#include <msgpack.hpp>

#include "taskpipe/message.hpp"

namespace taskpipe {
namespace {

using namespace std::string_literals;

// Bytes that are neither text nor safe for C strings: NUL, invalid UTF-8 lead and continuation
// bytes, a lone surrogate encoding and every byte value once.
std::string hostile_bytes() {
    std::string bytes = "a\0b"s + "\xff\xfe" + "\x80" + "\xed\xa0\x80" + "\0"s;
    for (int b = 0; b < 256; ++b) bytes.push_back(static_cast<char>(b));
    return bytes;
}

// Decodes what the encoder produced and expects the very same message back.
void expect_round_trip(const Message& message) {
    Encoder encoder;
    const std::string frame(encoder.encode(message));
    const DecodeResult decoded = decode(frame);
    ASSERT_TRUE(decoded.message.has_value()) << decoded.error;
    EXPECT_TRUE(decoded.error.empty()) << decoded.error;
    EXPECT_EQ(decoded.message->index(), message.index());
    EXPECT_TRUE(*decoded.message == message);
}

// A valid Result with every field set, used as the base of the hostile-input tests.
Result full_result() {
    Result r;
    r.batch = 0x1234'5678'9abc'def0;
    r.id = 42;
    r.attempt = 2;
    r.status = Status::failed;
    r.exit_code = 3;
    r.out = hostile_bytes();
    r.err = "err\0tail"s;
    r.out_truncated = true;
    r.host = "worker-7";
    r.pid = 4242;
    r.started_us = 1'700'000'000'000'000;
    r.duration_us = 1'500'000;
    return r;
}

std::string encode_to_string(const Message& message) {
    Encoder encoder;
    return std::string(encoder.encode(message));
}

// Builds a msgpack map field by field, to write frames the encoder never would.
class MapFrame {
  public:
    template <typename T>
    MapFrame& set(const std::string& key, const T& value) {
        packer().pack(key);
        packer().pack(value);
        ++count_;
        return *this;
    }
    MapFrame& set_bin(const std::string& key, std::string_view bytes) {
        packer().pack(key);
        packer().pack_bin(static_cast<std::uint32_t>(bytes.size()));
        packer().pack_bin_body(bytes.data(), static_cast<std::uint32_t>(bytes.size()));
        ++count_;
        return *this;
    }
    MapFrame& set_nil(const std::string& key) {
        packer().pack(key);
        packer().pack_nil();
        ++count_;
        return *this;
    }
    // An entry whose key is not a string.
    MapFrame& set_int_key(std::int64_t key, const std::string& value) {
        packer().pack(key);
        packer().pack(value);
        ++count_;
        return *this;
    }
    // An entry whose value is given as raw msgpack bytes.
    MapFrame& set_raw(const std::string& key, std::string_view raw) {
        packer().pack(key);
        body_.write(raw.data(), raw.size());
        ++count_;
        return *this;
    }

    std::string bytes() const {
        msgpack::sbuffer out;
        msgpack::packer<msgpack::sbuffer> header(out);
        header.pack_map(count_);
        out.write(body_.data(), body_.size());
        return {out.data(), out.size()};
    }

  private:
    msgpack::packer<msgpack::sbuffer> packer() { return msgpack::packer<msgpack::sbuffer>(body_); }

    msgpack::sbuffer body_;
    std::uint32_t count_ = 0;
};

// The fields of a valid version-1 task, minus those the test leaves out or overrides.
MapFrame task_frame() {
    MapFrame f;
    f.set("v", kProtocolVersion).set("type", "task"s).set("batch", std::uint64_t{7});
    return f;
}

void expect_refused(const DecodeResult& decoded) {
    EXPECT_FALSE(decoded.message.has_value());
    EXPECT_FALSE(decoded.error.empty()) << "a refused frame must say why";
}

// --- Round trips -------------------------------------------------------------------------

TEST(CodecRoundTrip, TaskWithBinaryPayload) {
    expect_round_trip(Task{.batch = 9, .id = 1, .attempt = 3, .payload = hostile_bytes()});
}

TEST(CodecRoundTrip, TaskWithEmptyPayload) {
    expect_round_trip(Task{.batch = 0, .id = 1, .attempt = 1, .payload = ""});
}

TEST(CodecRoundTrip, TaskWithLargestIds) {
    expect_round_trip(Task{.batch = std::numeric_limits<std::uint64_t>::max(),
                           .id = std::numeric_limits<std::uint64_t>::max(),
                           .attempt = std::numeric_limits<std::uint32_t>::max(),
                           .payload = "x"});
}

TEST(CodecRoundTrip, TaskWithLargestPayload) {
    expect_round_trip(
        Task{.batch = 1, .id = 1, .attempt = 1, .payload = std::string(kMaxPayloadBytes, '\xff')});
}

TEST(CodecRoundTrip, ResultWithExitCode) { expect_round_trip(full_result()); }

TEST(CodecRoundTrip, ResultWithNegativeExitCode) {
    Result r = full_result();
    r.exit_code = -1;
    expect_round_trip(r);
}

TEST(CodecRoundTrip, ResultKilledBySignalHasNoExitCode) {
    Result r = full_result();
    r.exit_code.reset();
    r.signal = 9;
    expect_round_trip(r);
}

TEST(CodecRoundTrip, ResultWithNeitherExitCodeNorSignal) {
    Result r = full_result();
    r.status = Status::error;
    r.exit_code.reset();
    r.signal.reset();
    r.out.clear();
    r.err = "cannot run 'nope'\n";
    r.out_truncated = false;
    expect_round_trip(r);
}

TEST(CodecRoundTrip, ResultOfEveryStatusAWorkerSends) {
    for (Status s : {Status::ok, Status::failed, Status::error, Status::timeout}) {
        SCOPED_TRACE(to_string(s));
        Result r = full_result();
        r.status = s;
        expect_round_trip(r);
    }
}

// The worker keeps up to 16 MiB of stdout per task by default (worker/options.hpp).
TEST(CodecRoundTrip, ResultWithSixteenMebibytesOfStdout) {
    Result r = full_result();
    r.out.assign(16u << 20, '\0');
    expect_round_trip(r);
}

TEST(CodecRoundTrip, HeartbeatWithTasks) {
    expect_round_trip(Heartbeat{.host = "h\xc3\xa9te",
                                .pid = 77,
                                .concurrency = 8,
                                .draining = true,
                                .tasks = {{1, 1}, {1, 2}, {2, 99}}});
}

TEST(CodecRoundTrip, HeartbeatWithoutTasks) {
    expect_round_trip(
        Heartbeat{.host = "h", .pid = 1, .concurrency = 1, .draining = false, .tasks = {}});
}

TEST(CodecRoundTrip, HeartbeatWithMostTasksPerMessage) {
    Heartbeat h{.host = "h", .pid = 1, .concurrency = 4096, .draining = false, .tasks = {}};
    for (std::uint64_t i = 1; i <= kMaxIdsPerMessage; ++i) h.tasks.push_back({3, i});
    expect_round_trip(h);
}

TEST(CodecRoundTrip, Hello) { expect_round_trip(Hello{.batch = 123}); }
TEST(CodecRoundTrip, Welcome) { expect_round_trip(Welcome{.batch = 123}); }

TEST(CodecRoundTrip, WelcomeWithEveryField) {
    expect_round_trip(
        Welcome{.batch = 123, .capacity = 8, .reorder_window = 100, .echo_input = true});
}

TEST(CodecRoundTrip, TaskAskingForItsInputBack) {
    expect_round_trip(Task{.batch = 9, .id = 2, .payload = "in", .sent_us = 5, .echo_input = true});
}
TEST(CodecRoundTrip, Reject) {
    expect_round_trip(Reject{.batch = 123, .reason = "another batch is running"});
}
TEST(CodecRoundTrip, End) { expect_round_trip(End{.batch = 5, .total = 1'000'000}); }
TEST(CodecRoundTrip, EndOfEmptyInput) { expect_round_trip(End{.batch = 5, .total = 0}); }
TEST(CodecRoundTrip, Lost) { expect_round_trip(Lost{.batch = 5, .id = 17, .attempts = 3}); }
TEST(CodecRoundTrip, AckWithFailedIds) {
    expect_round_trip(Ack{.batch = 5, .ids = {1, 2, 3, 10}, .failed = {2, 10}});
}
TEST(CodecRoundTrip, AckWithoutFailedIds) {
    expect_round_trip(Ack{.batch = 5, .ids = {4}, .failed = {}});
}

TEST(CodecRoundTrip, AckWithMostIdsPerMessage) {
    Ack a{.batch = 5, .ids = {}, .failed = {}};
    for (std::uint64_t i = 1; i <= kMaxIdsPerMessage; ++i) {
        a.ids.push_back(i);
        if (i % 2 == 0) a.failed.push_back(i);
    }
    expect_round_trip(a);
}

TEST(CodecRoundTrip, Alive) { expect_round_trip(Alive{.batch = 5, .ids = {8, 9}}); }
TEST(CodecRoundTrip, Bye) { expect_round_trip(Bye{.batch = 5}); }

// "welcome.sink, alive.sink: the sink instance", "hello.sink: the instance that welcomed the batch
// before", "heartbeat.running / alive.running: of the tasks named, those that have started".
TEST(CodecRoundTrip, SinkInstanceAndRunningLists) {
    expect_round_trip(Hello{.batch = 5, .sink = 77});
    expect_round_trip(Welcome{.batch = 5, .capacity = 0, .reorder_window = 0, .sink = 77});
    expect_round_trip(Alive{.batch = 5, .ids = {8, 9}, .sink = 77, .running = {{9}}});
    expect_round_trip(Alive{.batch = 5, .ids = {8, 9}, .sink = 77, .running = {{}}});
    expect_round_trip(
        Heartbeat{.host = "h", .pid = 1, .tasks = {{1, 1}, {1, 2}}, .running = {{{1, 2}}}});
}

TEST(CodecRoundTrip, AbortAndHandover) {
    expect_round_trip(Abort{.batch = 5, .status = 2, .reason = "stdout: Broken pipe"});
    expect_round_trip(Handover{.batch = 5, .through = 1000, .ids = {1002, 1005}, .failed = {3}});
}

TEST(CodecDecode, AHeartbeatWithoutRunningSaysNothingAboutWhatHasStarted) {
    const auto m = decode(encode_to_string(Heartbeat{.host = "h", .pid = 1, .tasks = {{1, 1}}}));
    ASSERT_TRUE(m.message);
    EXPECT_FALSE(std::get<Heartbeat>(*m.message).running.has_value());
}

TEST(CodecEncoder, ReusesItsBufferBetweenMessages) {
    Encoder encoder;
    const std::string first(encoder.encode(Task{.batch = 1, .id = 1, .payload = "long payload"}));
    const std::string second(encoder.encode(Bye{.batch = 2}));
    EXPECT_TRUE(*decode(first).message ==
                Message(Task{.batch = 1, .id = 1, .payload = "long payload"}));
    EXPECT_TRUE(*decode(second).message == Message(Bye{.batch = 2}));
}

TEST(CodecDecode, AcceptsASpanOfBytes) {
    const std::string frame = encode_to_string(Hello{.batch = 3});
    const std::vector<std::byte> bytes(
        reinterpret_cast<const std::byte*>(frame.data()),
        reinterpret_cast<const std::byte*>(frame.data()) + frame.size());
    const DecodeResult decoded = decode(std::span<const std::byte>(bytes));
    ASSERT_TRUE(decoded.message.has_value()) << decoded.error;
    EXPECT_TRUE(*decoded.message == Message(Hello{.batch = 3}));
}

// --- The bytes on the wire -----------------------------------------------------------------

std::string to_hex(std::string_view bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string hex;
    for (char c : bytes) {
        const auto byte = static_cast<unsigned char>(c);
        hex.push_back(kDigits[byte >> 4]);
        hex.push_back(kDigits[byte & 15]);
    }
    return hex;
}

// What the hand-written encoder before the schema (commit 33abd42) wrote for these messages.
// Peers of that version are deployed: taskpipe must keep reading these frames, and keep writing
// every field of them the same way (the same keys in the same order, the same integer widths,
// echo_input and input left out when not set). When this test was written the schema's encoder
// wrote exactly these bytes; a field added since may add entries to the maps, nothing else.
std::vector<std::tuple<std::string, Message, std::string>> frames_before_the_schema() {
    Result full{7, 3, 2, Status::failed, 1, 9, "out\n", "err\n", true, "host", 42, 1, 2, "in", 5};
    Result bare;
    bare.batch = 7;
    bare.id = 4;
    bare.status = Status::timeout;
    Result negative = full;
    negative.attempt = 300;
    negative.exit_code = -100000;
    negative.signal.reset();
    negative.pid = 70000;
    negative.started_us = 1700000000000000u;
    negative.duration_us = 70000;
    negative.input.reset();
    return {
        {"task", Task{7, 1, 1, "payload", 0, false},
         "87a17601a474797065a47461736ba5626174636807a2696401a7617474656d707401a77061796c6f6164"
         "c4077061796c6f6164a773656e745f757300"},
        {"task_echo", Task{7, 1, 1, "payload", 1700000000000000u, true},
         "88a17601a474797065a47461736ba5626174636807a2696401a7617474656d707401a77061796c6f6164"
         "c4077061796c6f6164a773656e745f7573cf00060a24181e4000aa6563686f5f696e707574c3"},
        {"task_binary", Task{0xffffffffffffffffu, 2, 3, "\0\xff\x80"s, 0, false},
         "87a17601a474797065a47461736ba56261746368cfffffffffffffffffa2696402a7617474656d707403"
         "a77061796c6f6164c40300ff80a773656e745f757300"},
        {"result_full", full,
         "de0011a17601a474797065a6726573756c74a5626174636807a2696403a7617474656d707402a6737461"
         "747573a66661696c6564a9657869745f636f646501a67369676e616c09a67374646f7574c4046f75740a"
         "a6737464657272c4046572720ab07374646f75745f7472756e6361746564c3a4686f7374a4686f7374a3"
         "7069642aaa737461727465645f757301ab6475726174696f6e5f757302a773656e745f757305a5696e70"
         "7574c402696e"},
        {"result_bare", bare,
         "de0010a17601a474797065a6726573756c74a5626174636807a2696404a7617474656d707401a6737461"
         "747573a774696d656f7574a9657869745f636f6465c0a67369676e616cc0a67374646f7574c400a67374"
         "64657272c400b07374646f75745f7472756e6361746564c2a4686f7374a0a370696400aa737461727465"
         "645f757300ab6475726174696f6e5f757300a773656e745f757300"},
        {"result_negative", negative,
         "de0010a17601a474797065a6726573756c74a5626174636807a2696403a7617474656d7074cd012ca673"
         "7461747573a66661696c6564a9657869745f636f6465d2fffe7960a67369676e616cc0a67374646f7574"
         "c4046f75740aa6737464657272c4046572720ab07374646f75745f7472756e6361746564c3a4686f7374"
         "a4686f7374a3706964ce00011170aa737461727465645f7573cf00060a24181e4000ab6475726174696f"
         "6e5f7573ce00011170a773656e745f757305"},
        {"heartbeat", Heartbeat{"host", 42, 4, 8, false, {{7, 1}, {7, 2}}},
         "88a17601a474797065a9686561727462656174a4686f7374a4686f7374a37069642aab636f6e63757272"
         "656e637904a8636170616369747908a8647261696e696e67c2a57461736b7392920701920702"},
        {"heartbeat_draining", Heartbeat{"h", 1, 0, 0, true, {}},
         "88a17601a474797065a9686561727462656174a4686f7374a168a370696401ab636f6e63757272656e63"
         "7900a8636170616369747900a8647261696e696e67c3a57461736b7390"},
        {"release_tasks", WorkerRelease{{{7, 1}, {7, 500}}},
         "83a17601a474797065a772656c65617365a57461736b73929207019207cd01f4"},
        {"release_ids", SinkRelease{7, {1, 5, 70000}},
         "84a17601a474797065a772656c65617365a5626174636807a3696473930105ce00011170"},
        {"hello", Hello{7}, "83a17601a474797065a568656c6c6fa5626174636807"},
        {"welcome", Welcome{7, 16, 0, false},
         "86a17601a474797065a777656c636f6d65a5626174636807a8636170616369747910ae72656f72646572"
         "5f77696e646f7700aa6563686f5f696e707574c2"},
        {"welcome_ordered", Welcome{7, 16, 1000, true},
         "86a17601a474797065a777656c636f6d65a5626174636807a8636170616369747910ae72656f72646572"
         "5f77696e646f77cd03e8aa6563686f5f696e707574c3"},
        {"reject", Reject{7, "busy"},
         "84a17601a474797065a672656a656374a5626174636807a6726561736f6ea462757379"},
        {"end", End{7, 100}, "84a17601a474797065a3656e64a5626174636807a5746f74616c64"},
        {"lost", Lost{7, 3, 3},
         "85a17601a474797065a46c6f7374a5626174636807a2696403a8617474656d70747303"},
        {"skip", Skip{7, {1, 2, 3}, {2}},
         "85a17601a474797065a4736b6970a5626174636807a369647393010203a66661696c65649102"},
        {"progress", Progress{7, 100, 10, 2, 1000},
         "87a17601a474797065a870726f6772657373a5626174636807a47265616464a9696e5f666c696768740a"
         "a6726573656e7402a86578706563746564cd03e8"},
        {"ack", Ack{7, {1, 2, 3}, {2}},
         "85a17601a474797065a361636ba5626174636807a369647393010203a66661696c65649102"},
        {"ack_empty", Ack{7, {}, {}},
         "85a17601a474797065a361636ba5626174636807a369647390a66661696c656490"},
        {"alive", Alive{7, {4, 5}, 16},
         "85a17601a474797065a5616c697665a5626174636807a3696473920405a8636170616369747910"},
        {"bye", Bye{0xffffffffffffffffu},
         "83a17601a474797065a3627965a56261746368cfffffffffffffffff"},
    };
}

std::string from_hex(std::string_view hex) {
    std::string bytes;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        bytes.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    }
    return bytes;
}

// The entries of an encoded map, in order: each key, and its value's bytes exactly as encoded.
std::vector<std::pair<std::string, std::string>> entries(const std::string& frame) {
    std::vector<std::pair<std::string, std::string>> out;
    const auto first = static_cast<unsigned char>(frame.at(0));
    std::size_t offset = 1;
    std::uint32_t count = first & 0x0fu;
    if (first == 0xde) {
        count = static_cast<std::uint32_t>(static_cast<unsigned char>(frame.at(1)) << 8 |
                                           static_cast<unsigned char>(frame.at(2)));
        offset = 3;
    } else if ((first & 0xf0u) != 0x80) {
        ADD_FAILURE() << "not a fixmap or map16: " << to_hex(frame.substr(0, 1));
        return out;
    }
    for (std::uint32_t i = 0; i < count; ++i) {
        const std::string key =
            msgpack::unpack(frame.data(), frame.size(), offset)->as<std::string>();
        const std::size_t start = offset;
        (void)msgpack::unpack(frame.data(), frame.size(), offset);
        out.emplace_back(key, frame.substr(start, offset - start));
    }
    EXPECT_EQ(offset, frame.size());
    return out;
}

TEST(CodecWire, FramesOfTheEncoderBeforeTheSchemaDecodeToTheSameMessages) {
    for (const auto& [name, message, hex] : frames_before_the_schema()) {
        SCOPED_TRACE(name);
        const DecodeResult decoded = decode(from_hex(hex));
        ASSERT_TRUE(decoded.message.has_value()) << decoded.error;
        EXPECT_TRUE(*decoded.message == message);
    }
}

TEST(CodecWire, EncodesEveryFieldAsTheEncoderBeforeTheSchemaDid) {
    Encoder encoder;
    for (const auto& [name, message, hex] : frames_before_the_schema()) {
        SCOPED_TRACE(name);
        const auto before = entries(from_hex(hex));
        const auto now = entries(std::string(encoder.encode(message)));
        std::vector<std::pair<std::string, std::string>> known;  // now, less any new field
        for (const auto& entry : now) {
            for (const auto& old : before) {
                if (old.first == entry.first) known.push_back(entry);
            }
        }
        EXPECT_EQ(known, before);
        EXPECT_GE(now.size(), before.size());
    }
}

// --- One set of messages per socket ---------------------------------------------------------

// One message of every type, in the order of Message's alternatives.
std::vector<Message> one_of_each() {
    return {Task{1, 1, 1, "p"},
            TaskGroup{{{Task{1, 1, 1, "p"}, Task{1, 2, 1, "q"}}}},
            full_result(),
            ResultGroup{{{full_result(), full_result()}}},
            Heartbeat{"h", 1, 1, 1, false, {{1, 2}}},
            WorkerRelease{{{1, 2}}},
            SinkRelease{1, {2}},
            Hello{1},
            Welcome{1},
            Reject{1, "no"},
            End{1, 2},
            Lost{1, 2, 3},
            Skip{1, {2}, {}},
            Handover{1, 2, {4}, {}},
            Pending{1, {3}},
            Progress{1},
            Ack{1, {2}, {}},
            Alive{1, {}, 4},
            Bye{1},
            Abort{1, 2, "no room"},
            Outcome{.batch = 1, .id = 2, .status = Status::failed, .exit_code = 3},
            Record{1, {2}, {3}},
            Submit{.req = 1, .payload = "p", .key = "k"},
            Query{.req = 1, .id = 2},
            Cancel{1, 2},
            Accepted{1, 2, true, "queued", 7},
            State{{.id = 2, .state = "ok", .status = "ok", .out = "x"}, 1},
            Done{{.id = 2, .state = "failed", .exit_code = 1}},
            Error{1, "conflict", "another payload", 2}};
}

template <typename Set>
void expect_only_its_own_messages(const char* socket) {
    Encoder encoder;
    const std::vector<Message> messages = one_of_each();
    ASSERT_EQ(messages.size(), std::variant_size_v<Message>);
    for (std::size_t i = 0; i < messages.size(); ++i) ASSERT_EQ(messages[i].index(), i);
    for (const Message& message : messages) {
        const bool own = std::visit(
            [](const auto& m) { return one_of<std::decay_t<decltype(m)>, Set>; }, message);
        const Decoded<Set> decoded = decode<Set>(encoder.encode(message));
        SCOPED_TRACE(std::string(socket) + " socket, message #" + std::to_string(message.index()));
        if (own) {
            ASSERT_TRUE(decoded.message.has_value()) << decoded.error;
            EXPECT_TRUE(std::visit([](const auto& m) { return Message(m); }, *decoded.message) ==
                        message);
        } else {
            EXPECT_FALSE(decoded.message.has_value());
            EXPECT_NE(decoded.error.find("not expected on this socket"), std::string::npos)
                << decoded.error;
        }
    }
}

// docs/protocol.md, "Sockets": each connection carries its own messages.
TEST(CodecSockets, TasksSocketTakesOnlyTasks) {
    expect_only_its_own_messages<TasksMessage>("tasks");
}
TEST(CodecSockets, ResultsSocketTakesResultsHeartbeatsAndWorkerReleases) {
    expect_only_its_own_messages<ResultsMessage>("results");
}
TEST(CodecSockets, ControlToTheSinkTakesHelloEndLostSkipHandoverProgressBye) {
    expect_only_its_own_messages<ToSinkControl>("control, to the sink,");
}
TEST(CodecSockets, ControlToTheVentilatorTakesWelcomeRejectAckAliveSinkReleasesAndAborts) {
    expect_only_its_own_messages<ToVentilatorControl>("control, to the ventilator,");
}
TEST(CodecSockets, ListenToTheHeadTakesSubmitStatusAndCancel) {
    expect_only_its_own_messages<ToHead>("listen, to the head,");
}
TEST(CodecSockets, ListenToTheProducerTakesAcceptedStateDoneAndError) {
    expect_only_its_own_messages<ToProducer>("listen, to the producer,");
}

TEST(CodecSockets, MalformedFrameIsRefusedWithItsOwnReason) {
    const Decoded<ResultsMessage> decoded = decode<ResultsMessage>("\xc1"s);
    EXPECT_FALSE(decoded.message.has_value());
    EXPECT_EQ(decoded.error.find("not expected"), std::string::npos) << decoded.error;
    EXPECT_FALSE(decoded.error.empty());
}

// --- release: one type, two forms -----------------------------------------------------------

MapFrame release_frame() {
    MapFrame f;
    f.set("v", kProtocolVersion).set("type", "release"s);
    return f;
}

TEST(CodecRelease, WorkerFormIsAWorkerRelease) {
    const DecodeResult decoded =
        decode(release_frame().set("tasks", std::vector<std::vector<int>>{{7, 1}}).bytes());
    ASSERT_TRUE(decoded.message.has_value()) << decoded.error;
    EXPECT_TRUE(*decoded.message == Message(WorkerRelease{{{7, 1}}}));
}

TEST(CodecRelease, SinkFormIsASinkRelease) {
    const DecodeResult decoded =
        decode(release_frame().set("batch", 7).set("ids", std::vector<int>{1, 2}).bytes());
    ASSERT_TRUE(decoded.message.has_value()) << decoded.error;
    EXPECT_TRUE(*decoded.message == Message(SinkRelease{7, {1, 2}}));
}

TEST(CodecRelease, BothFormsInOneFrameAreRefused) {
    // Every accepted release encodes back to the same form, so a frame may not mix them.
    const auto tasks = std::vector<std::vector<int>>{{7, 1}};
    expect_refused(decode(release_frame().set("tasks", tasks).set("batch", 7).bytes()));
    expect_refused(
        decode(release_frame().set("tasks", tasks).set("ids", std::vector<int>{}).bytes()));
    expect_refused(decode(release_frame()
                              .set("batch", 7)
                              .set("ids", std::vector<int>{1})
                              .set("tasks", tasks)
                              .bytes()));
}

TEST(CodecRelease, IncompleteFormsAreRefused) {
    expect_refused(decode(release_frame().bytes()));
    expect_refused(decode(release_frame().set("ids", std::vector<int>{1}).bytes()));
    expect_refused(decode(release_frame().set("batch", 7).bytes()));
    expect_refused(decode(release_frame().set("batch", 0).set("ids", std::vector<int>{1}).bytes()));
}

TEST(CodecRelease, EachSideTakesOnlyItsOwnForm) {
    Encoder encoder;
    EXPECT_FALSE(decode<ResultsMessage>(encoder.encode(SinkRelease{7, {1}})).message);
    EXPECT_FALSE(decode<ToVentilatorControl>(encoder.encode(WorkerRelease{{{7, 1}}})).message);
    EXPECT_TRUE(decode<ResultsMessage>(encoder.encode(WorkerRelease{{{7, 1}}})).message);
    EXPECT_TRUE(decode<ToVentilatorControl>(encoder.encode(SinkRelease{7, {1}})).message);
}

TEST(CodecRoundTrip, WorkerRelease) { expect_round_trip(WorkerRelease{{{1, 2}, {3, 4}}}); }
TEST(CodecRoundTrip, WorkerReleaseOfNoTask) { expect_round_trip(WorkerRelease{}); }
TEST(CodecRoundTrip, SinkRelease) { expect_round_trip(SinkRelease{5, {1, 9}}); }

// --- Framing ------------------------------------------------------------------------------

TEST(CodecHostile, EmptyFrameIsRefused) { expect_refused(decode(std::string_view())); }

TEST(CodecHostile, EveryProperPrefixOfAResultIsRefused) {
    const std::string frame = encode_to_string(full_result());
    ASSERT_GT(frame.size(), 300u);
    for (std::size_t n = 0; n < frame.size(); ++n) {
        SCOPED_TRACE("prefix of " + std::to_string(n) + " bytes");
        expect_refused(decode(std::string_view(frame).substr(0, n)));
    }
}

TEST(CodecHostile, TrailingBytesAreRefused) {
    const std::string frame = encode_to_string(Bye{.batch = 1});
    expect_refused(decode(frame + "\xc0"));
    expect_refused(decode(frame + frame));
}

TEST(CodecHostile, TopLevelThatIsNotAMapIsRefused) {
    expect_refused(decode("\x91\x01"s));      // [1]
    expect_refused(decode("\x05"s));          // 5
    expect_refused(decode("\xa4task"s));      // "task"
    expect_refused(decode("\xc0"s));          // nil
    expect_refused(decode("\xc4\x01\x00"s));  // bin of one byte
}

TEST(CodecHostile, ByteThatIsNotMsgpackIsRefused) {
    expect_refused(decode("\xc1"s));  // the one byte msgpack never uses
}

// --- Version and type ---------------------------------------------------------------------

TEST(CodecHostile, HandBuiltTaskIsAccepted) {
    // The baseline for the tests below: the hand-built frame itself is valid.
    const DecodeResult decoded =
        decode(task_frame().set("id", std::uint64_t{3}).set_bin("payload", "p").bytes());
    ASSERT_TRUE(decoded.message.has_value()) << decoded.error;
    EXPECT_TRUE(*decoded.message ==
                Message(Task{.batch = 7, .id = 3, .attempt = 1, .payload = "p"}));
}

TEST(CodecHostile, MissingVersionIsRefused) {
    MapFrame f;
    f.set("type", "bye"s).set("batch", 1);
    expect_refused(decode(f.bytes()));
}

TEST(CodecHostile, OtherVersionIsRefused) {
    for (std::uint64_t v : {std::uint64_t{0}, kProtocolVersion + 1, std::uint64_t{1} << 40}) {
        SCOPED_TRACE(v);
        MapFrame f;
        f.set("v", v).set("type", "bye"s).set("batch", 1);
        expect_refused(decode(f.bytes()));
    }
}

TEST(CodecHostile, VersionAsStringIsRefused) {
    MapFrame f;
    f.set("v", "1"s).set("type", "bye"s).set("batch", 1);
    expect_refused(decode(f.bytes()));
}

TEST(CodecHostile, MissingTypeIsRefused) {
    MapFrame f;
    f.set("v", kProtocolVersion).set("batch", 1);
    expect_refused(decode(f.bytes()));
}

TEST(CodecHostile, UnknownTypeIsRefused) {
    for (const std::string& type : {"nope"s, "Task"s, ""s, "task\0"s, std::string(1000, 'x')}) {
        MapFrame f;
        f.set("v", kProtocolVersion).set("type", type).set("batch", 1);
        expect_refused(decode(f.bytes()));
    }
}

TEST(CodecHostile, TypeAsBinaryIsRefused) {
    MapFrame f;
    f.set("v", kProtocolVersion).set_bin("type", "bye").set("batch", 1);
    expect_refused(decode(f.bytes()));
}

// --- Fields -------------------------------------------------------------------------------

TEST(CodecHostile, MissingRequiredFieldIsRefused) {
    expect_refused(decode(task_frame().set("id", 3).bytes()));             // no payload
    expect_refused(decode(task_frame().set_bin("payload", "p").bytes()));  // no id
    MapFrame no_batch;
    no_batch.set("v", kProtocolVersion).set("type", "task"s).set("id", 3).set_bin("payload", "p");
    expect_refused(decode(no_batch.bytes()));

    MapFrame result;  // a result without status
    result.set("v", kProtocolVersion).set("type", "result"s).set("batch", 1).set("id", 1);
    expect_refused(decode(result.bytes()));

    MapFrame ack;  // an ack without ids
    ack.set("v", kProtocolVersion).set("type", "ack"s).set("batch", 1);
    expect_refused(decode(ack.bytes()));

    MapFrame end;  // an end without total
    end.set("v", kProtocolVersion).set("type", "end"s).set("batch", 1);
    expect_refused(decode(end.bytes()));

    MapFrame heartbeat;  // a heartbeat without pid
    heartbeat.set("v", kProtocolVersion).set("type", "heartbeat"s).set("host", "h"s);
    expect_refused(decode(heartbeat.bytes()));
}

TEST(CodecHostile, IdAsStringIsRefused) {
    expect_refused(decode(task_frame().set("id", "3"s).set_bin("payload", "p").bytes()));
}

TEST(CodecHostile, NegativeIdIsRefused) {
    expect_refused(
        decode(task_frame().set("id", std::int64_t{-1}).set_bin("payload", "p").bytes()));
}

TEST(CodecHostile, IdZeroIsRefused) {
    // "ids start at 1": TaskRef's id is a 1-based position in the batch's input.
    expect_refused(decode(task_frame().set("id", 0).set_bin("payload", "p").bytes()));
    Result r = full_result();
    r.id = 0;
    expect_refused(decode(encode_to_string(r)));
}

TEST(CodecHostile, IdAsFloatOrBoolOrNilIsRefused) {
    // float64 3.0 written by hand: msgpack-c's packer would turn a whole double into an int.
    expect_refused(decode(
        task_frame().set_raw("id", "\xcb\x40\x08\0\0\0\0\0\0"s).set_bin("payload", "p").bytes()));
    expect_refused(decode(task_frame().set("id", true).set_bin("payload", "p").bytes()));
    expect_refused(decode(task_frame().set_nil("id").set_bin("payload", "p").bytes()));
}

TEST(CodecHostile, AttemptOutOfRangeIsRefused) {
    const std::uint64_t too_big = std::uint64_t{std::numeric_limits<std::uint32_t>::max()} + 1;
    expect_refused(
        decode(task_frame().set("id", 1).set("attempt", too_big).set_bin("payload", "p").bytes()));
}

TEST(CodecHostile, PayloadAsIntegerIsRefused) {
    expect_refused(decode(task_frame().set("id", 1).set("payload", 5).bytes()));
}

TEST(CodecHostile, UnknownResultStatusIsRefused) {
    MapFrame f;
    f.set("v", kProtocolVersion)
        .set("type", "result"s)
        .set("batch", 1)
        .set("id", 1)
        .set("status", "weird"s);
    expect_refused(decode(f.bytes()));
}

// "lost is never sent by a worker": only the sink makes it.
TEST(CodecHostile, ResultWithStatusLostIsRefused) {
    Result r = full_result();
    r.status = Status::lost;
    expect_refused(decode(encode_to_string(r)));
}

TEST(CodecHostile, ExitCodeOutOfInt32RangeIsRefused) {
    MapFrame f;
    f.set("v", kProtocolVersion)
        .set("type", "result"s)
        .set("batch", 1)
        .set("id", 1)
        .set("status", "failed"s)
        .set("exit_code", std::int64_t{std::numeric_limits<std::int32_t>::min()} - 1);
    expect_refused(decode(f.bytes()));
}

TEST(CodecHostile, HeartbeatTaskThatIsNotAPairIsRefused) {
    MapFrame f;
    f.set("v", kProtocolVersion)
        .set("type", "heartbeat"s)
        .set("host", "h"s)
        .set("pid", 1)
        .set("tasks", std::vector<std::vector<std::uint64_t>>{{1, 2, 3}});
    expect_refused(decode(f.bytes()));
}

TEST(CodecTolerant, UnknownFieldsAreIgnored) {
    // "Unknown fields are ignored": a newer peer may add fields.
    const DecodeResult decoded = decode(task_frame()
                                            .set("id", 3)
                                            .set("future_field", std::vector<int>{1, 2, 3})
                                            .set("another", "text"s)
                                            .set_nil("nothing")
                                            .set_int_key(12, "int key")
                                            .set_bin("payload", "p")
                                            .bytes());
    ASSERT_TRUE(decoded.message.has_value()) << decoded.error;
    EXPECT_TRUE(*decoded.message ==
                Message(Task{.batch = 7, .id = 3, .attempt = 1, .payload = "p"}));
}

TEST(CodecTolerant, PayloadAsStrIsAccepted) {
    const std::string bytes = "str \xff\0payload"s;
    const DecodeResult decoded = decode(task_frame().set("id", 3).set("payload", bytes).bytes());
    ASSERT_TRUE(decoded.message.has_value()) << decoded.error;
    const auto* task = std::get_if<Task>(&*decoded.message);
    ASSERT_NE(task, nullptr);
    EXPECT_EQ(task->payload, bytes);
}

TEST(CodecTolerant, ResultStdoutAsStrIsAccepted) {
    MapFrame f;
    f.set("v", kProtocolVersion)
        .set("type", "result"s)
        .set("batch", 1)
        .set("id", 1)
        .set("status", "ok"s)
        .set("stdout", "hello\n"s)
        .set("stderr", "warn\n"s);
    const DecodeResult decoded = decode(f.bytes());
    ASSERT_TRUE(decoded.message.has_value()) << decoded.error;
    const auto* result = std::get_if<Result>(&*decoded.message);
    ASSERT_NE(result, nullptr);
    EXPECT_EQ(result->out, "hello\n");
    EXPECT_EQ(result->err, "warn\n");
}

// --- Size limits --------------------------------------------------------------------------

// A header that claims far more than the frame holds must be refused without first allocating
// what it claims; the TIMEOUT and the clock both watch for that.
void expect_refused_quickly(const std::string& frame) {
    const auto start = std::chrono::steady_clock::now();
    expect_refused(decode(frame));
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST(CodecLimits, Map32ClaimingFourBillionEntriesIsRefused) {
    expect_refused_quickly("\xdf\xff\xff\xff\xff"s);
}

TEST(CodecLimits, Array32ClaimingFourBillionElementsIsRefused) {
    expect_refused_quickly("\xdd\xff\xff\xff\xff"s);
}

TEST(CodecLimits, Array32InsideAMessageIsRefused) {
    MapFrame f;
    f.set("v", kProtocolVersion)
        .set("type", "ack"s)
        .set("batch", 1)
        .set_raw("ids", "\xdd\xff\xff\xff\xff"s);
    expect_refused_quickly(f.bytes());
}

TEST(CodecLimits, Str32ClaimingFourGigabytesIsRefused) {
    expect_refused_quickly("\xdb\xff\xff\xff\xff"s);
    expect_refused_quickly("\xdb\xff\xff\xff\xff"s + std::string(100, 'x'));
}

TEST(CodecLimits, Bin32ClaimingFourGigabytesInsideATaskIsRefused) {
    expect_refused_quickly(
        task_frame().set("id", 1).set_raw("payload", "\xc6\xff\xff\xff\xff"s).bytes());
}

TEST(CodecLimits, DeeplyNestedArraysAreRefused) {
    // 100000 levels of [[[...]]]: the decoder must not recurse or allocate per level.
    std::string frame(100000, '\x91');
    frame.push_back('\xc0');
    expect_refused_quickly(frame);
}

TEST(CodecLimits, DeeplyNestedMapsInsideAMessageAreRefused) {
    std::string nested;
    for (int i = 0; i < 1000; ++i) nested += "\x81\xa1k"s;
    nested.push_back('\xc0');
    expect_refused_quickly(
        task_frame().set("id", 1).set_bin("payload", "p").set_raw("x", nested).bytes());
}

TEST(CodecLimits, IdListLongerThanAnyMessageHoldsIsRefused) {
    std::vector<std::uint64_t> ids(kMaxIdsPerMessage * 4, 1);
    MapFrame f;
    f.set("v", kProtocolVersion).set("type", "ack"s).set("batch", 1).set("ids", ids);
    expect_refused(decode(f.bytes()));
}

}  // namespace
}  // namespace taskpipe

namespace taskpipe {
namespace {

// --- Groups: several tasks or results in one frame (docs/protocol.md, `tasks`, `results`) ----

TaskGroup three_tasks() {
    TaskGroup g;
    g.tasks.items = {Task{7, 1, 1, "one"}, Task{7, 2, 3, hostile_bytes(), 1'700'000'000'000'000},
                     Task{7, 3, 1, "", 0, true}};
    return g;
}

TEST(CodecGroups, TaskGroupRoundTrips) { expect_round_trip(three_tasks()); }

TEST(CodecGroups, ResultGroupRoundTrips) {
    Result second = full_result();
    second.id = 43;
    second.exit_code.reset();
    second.signal = 9;
    second.input = "the input";
    ResultGroup g;
    g.results.items = {full_result(), second};
    expect_round_trip(g);
}

TEST(CodecGroups, EmptyGroupIsWellFormed) {
    expect_round_trip(TaskGroup{});
    expect_round_trip(ResultGroup{});
}

TEST(CodecGroups, LargestGroupRoundTrips) {
    TaskGroup g;
    for (std::uint64_t id = 1; id <= kMaxGroupItems; ++id) g.tasks.items.push_back({7, id, 1, "p"});
    expect_round_trip(g);
}

// Each element is the map of a single message without its envelope, in the schema's order.
TEST(CodecGroups, AnElementIsTheSingleMessageWithoutItsEnvelope) {
    const Task task{7, 2, 3, "payload", 5, true};
    TaskGroup g;
    g.tasks.items = {task};
    const std::string group = encode_to_string(g);
    const std::string single = encode_to_string(task);
    // The single message's map, less "v" and "type": its entries after the envelope's 4 objects.
    auto after_envelope = [](const std::string& frame) {
        std::size_t offset = 1;  // a fixmap header
        for (int i = 0; i < 4; ++i) (void)msgpack::unpack(frame.data(), frame.size(), offset);
        return frame.substr(offset);
    };
    const std::string body = after_envelope(single);
    ASSERT_FALSE(body.empty());
    EXPECT_NE(group.find(body), std::string::npos);
    const auto element = std::string(1, static_cast<char>(0x80 | 6)) + body;  // 6 fields sent
    EXPECT_NE(group.find(element), std::string::npos);
}

// Builds a `tasks` or `results` frame whose elements are given as raw msgpack.
std::string group_frame(const std::string& type, const std::vector<std::string>& raw_elements) {
    msgpack::sbuffer array;
    msgpack::packer<msgpack::sbuffer> p(array);
    p.pack_array(static_cast<std::uint32_t>(raw_elements.size()));
    for (const std::string& e : raw_elements) array.write(e.data(), e.size());
    return MapFrame()
        .set("v", kProtocolVersion)
        .set("type", type)
        .set_raw(type, std::string_view(array.data(), array.size()))
        .bytes();
}

// The element of `message` (a single task or result), as a group would carry it.
template <typename M>
std::string element_of(const M& message) {
    M only = message;
    std::string frame;
    if constexpr (std::is_same_v<M, Task>) {
        TaskGroup g;
        g.tasks.items = {only};
        frame = encode_to_string(g);
    } else {
        ResultGroup g;
        g.results.items = {only};
        frame = encode_to_string(g);
    }
    // The frame is {v, type, key: [element]}: the element ends the frame.
    std::size_t offset = 1;
    for (int i = 0; i < 5; ++i) (void)msgpack::unpack(frame.data(), frame.size(), offset);
    return frame.substr(offset + 1);  // after the fixarray header
}

TEST(CodecGroups, MalformedElementsAreLeftOutAndCountedTheOthersKept) {
    std::string not_a_map;
    {
        msgpack::sbuffer b;
        msgpack::packer<msgpack::sbuffer>(b).pack(42);
        not_a_map.assign(b.data(), b.size());
    }
    const std::string id_zero = element_of(Task{7, 0, 1, "x"});  // ids start at 1
    std::string no_payload = MapFrame().set("batch", 7).set("id", 5).bytes();
    std::string wrong_type =
        MapFrame().set("batch", 7).set("id", "six"s).set_bin("payload", "x").bytes();
    const std::string frame =
        group_frame("tasks", {element_of(Task{7, 1, 1, "a"}), not_a_map, id_zero,
                              element_of(Task{7, 2, 1, "b"}), no_payload, wrong_type,
                              element_of(Task{7, 3, 2, "c"})});
    const Decoded<TasksMessage> decoded = decode<TasksMessage>(frame);
    ASSERT_TRUE(decoded.message.has_value()) << decoded.error;
    const TaskGroup& g = std::get<TaskGroup>(*decoded.message);
    ASSERT_EQ(g.tasks.items.size(), 3u);
    EXPECT_EQ(g.tasks.items[0], (Task{7, 1, 1, "a"}));
    EXPECT_EQ(g.tasks.items[1], (Task{7, 2, 1, "b"}));
    EXPECT_EQ(g.tasks.items[2], (Task{7, 3, 2, "c"}));
    ASSERT_EQ(g.tasks.refusals.size(), 4u);
    EXPECT_NE(g.tasks.refusals[0].find("not a map"), std::string::npos) << g.tasks.refusals[0];
    EXPECT_NE(g.tasks.refusals[1].find("id 0"), std::string::npos) << g.tasks.refusals[1];
    EXPECT_NE(g.tasks.refusals[2].find("missing field 'payload'"), std::string::npos)
        << g.tasks.refusals[2];
    EXPECT_NE(g.tasks.refusals[3].find("field 'id'"), std::string::npos) << g.tasks.refusals[3];
}

TEST(CodecGroups, AResultElementWithStatusLostIsLeftOut) {
    Result lost = full_result();
    lost.status = Status::lost;
    const std::string frame = group_frame("results", {element_of(lost), element_of(full_result())});
    const Decoded<ResultsMessage> decoded = decode<ResultsMessage>(frame);
    ASSERT_TRUE(decoded.message.has_value()) << decoded.error;
    const ResultGroup& g = std::get<ResultGroup>(*decoded.message);
    ASSERT_EQ(g.results.items.size(), 1u);
    EXPECT_EQ(g.results.items[0], full_result());
    ASSERT_EQ(g.results.refusals.size(), 1u);
    EXPECT_NE(g.results.refusals[0].find("lost"), std::string::npos) << g.results.refusals[0];
}

TEST(CodecGroups, MoreElementsThanAFrameMayHoldRefuseTheFrame) {
    const std::vector<std::string> elements(kMaxGroupItems + 1, element_of(Task{7, 1, 1, "p"}));
    const DecodeResult decoded = decode(group_frame("tasks", elements));
    EXPECT_FALSE(decoded.message.has_value());
    EXPECT_NE(decoded.error.find("more than 1024"), std::string::npos) << decoded.error;
}

TEST(CodecGroups, ACountLargerThanTheElementsPresentRefusesTheFrame) {
    // An array16 header claiming 1,000 elements, followed by two.
    std::string raw =
        "\xdc\x03\xe8"s + element_of(Task{7, 1, 1, "a"}) + element_of(Task{7, 2, 1, "b"});
    const std::string frame =
        MapFrame().set("v", kProtocolVersion).set("type", "tasks"s).set_raw("tasks", raw).bytes();
    const DecodeResult decoded = decode(frame);
    EXPECT_FALSE(decoded.message.has_value());
    EXPECT_EQ(decoded.error, "truncated msgpack");
}

TEST(CodecGroups, AnArray32ClaimingFourBillionElementsIsRefused) {
    const std::string frame = MapFrame()
                                  .set("v", kProtocolVersion)
                                  .set("type", "results"s)
                                  .set_raw("results", "\xdd\xff\xff\xff\xff"s)
                                  .bytes();
    const DecodeResult decoded = decode(frame);
    EXPECT_FALSE(decoded.message.has_value());
    EXPECT_FALSE(decoded.error.empty());
}

TEST(CodecGroups, ElementsNestedPastTheDepthLimitRefuseTheFrame) {
    // map > array > map > array > array: one level past the limit.
    const std::string deep = MapFrame().set("batch", 7).set_raw("x", "\x91\x91\x01"s).bytes();
    const DecodeResult decoded = decode(group_frame("tasks", {deep}));
    EXPECT_FALSE(decoded.message.has_value());
    EXPECT_EQ(decoded.error, "msgpack nested too deeply");
}

TEST(CodecGroups, AGroupThatIsNotAnArrayIsRefused) {
    const std::string frame =
        MapFrame().set("v", kProtocolVersion).set("type", "tasks"s).set("tasks", 3).bytes();
    const DecodeResult decoded = decode(frame);
    EXPECT_FALSE(decoded.message.has_value());
    EXPECT_NE(decoded.error.find("not an array"), std::string::npos) << decoded.error;
}

TEST(CodecGroups, AGroupWithoutItsListIsRefused) {
    const DecodeResult decoded =
        decode(MapFrame().set("v", kProtocolVersion).set("type", "results"s).bytes());
    EXPECT_FALSE(decoded.message.has_value());
    EXPECT_NE(decoded.error.find("missing field 'results'"), std::string::npos) << decoded.error;
}

TEST(CodecGroups, UnknownFieldsOfAnElementAreIgnored) {
    const std::string element = MapFrame()
                                    .set("batch", 7)
                                    .set("id", 4)
                                    .set_bin("payload", "p")
                                    .set("v", 9)  // no envelope in an element: just unknown
                                    .set("later", "field"s)
                                    .bytes();
    const Decoded<TasksMessage> decoded = decode<TasksMessage>(group_frame("tasks", {element}));
    ASSERT_TRUE(decoded.message.has_value()) << decoded.error;
    const TaskGroup& g = std::get<TaskGroup>(*decoded.message);
    ASSERT_EQ(g.tasks.items.size(), 1u);
    EXPECT_EQ(g.tasks.items[0], (Task{7, 4, 1, "p"}));
    EXPECT_TRUE(g.tasks.refusals.empty());
}

TEST(CodecGroups, GroupMaxIsSentOnlyWhenSet) {
    const std::string without = encode_to_string(Alive{7, {}, 4});
    EXPECT_EQ(without.find("group_max"), std::string::npos);
    const std::string with = encode_to_string(Alive{7, {}, 4, 0, std::nullopt, 64});
    EXPECT_NE(with.find("group_max"), std::string::npos);
    expect_round_trip(Alive{7, {}, 4, 0, std::nullopt, 64});
    expect_round_trip(Welcome{7, 8, 0, false, 3, false, 32});
    expect_round_trip(Heartbeat{"h", 1, 2, 8, false, {}, std::nullopt, 16});
}

}  // namespace
}  // namespace taskpipe
