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
