// libFuzzer harness for taskpipe::decode, the one entry point for bytes from the network
// (docs/protocol.md, "Rules every receiver applies").
//
// The contract it checks, from codec.hpp: "Decoding treats its input as hostile: it never
// throws, allocates a bounded amount whatever a header claims ... and reports why a message was
// refused." ASan and UBSan catch memory and arithmetic errors; the round-trip oracle catches a
// decoder and an encoder that disagree: whatever decode() accepts, Encoder::encode() must write
// in a form that decode() reads back as the same message, and the encoding must be stable. The
// per-socket decoders (decode<Set>) must agree with decode(): the same message when its type is
// one of the socket's, refused otherwise. And the codec's msgpack reader must agree with
// msgpack-c's own unpack under the same limits (tests/support/msgpack_reference.hpp): the same
// refusal, or the same values, so that decode() refuses exactly what the object-tree decoder before
// it refused.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include "support/msgpack_reference.hpp"
#include "taskpipe/codec.hpp"
#include "taskpipe/message.hpp"

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail) {
    std::fprintf(stderr, "codec_fuzzer: %s: %s\n", what, detail.c_str());
    std::abort();
}

template <typename Set>
void check_socket(const char* socket, std::string_view frame, const taskpipe::DecodeResult& whole) {
    const taskpipe::Decoded<Set> decoded = taskpipe::decode<Set>(frame);
    const bool own =
        whole.message &&
        std::visit([](const auto& m) { return taskpipe::one_of<std::decay_t<decltype(m)>, Set>; },
                   *whole.message);
    if (decoded.message.has_value() != own) {
        fail("a per-socket decoder disagrees with decode()", socket);
    }
    if (!decoded.message) {
        if (decoded.error.empty()) fail("a refused frame without a reason", socket);
        return;
    }
    const auto as_message = [](const auto& m) { return taskpipe::Message(m); };
    if (std::visit(as_message, *decoded.message) != *whole.message) {
        fail("a per-socket decoder decoded another message", socket);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view frame(reinterpret_cast<const char*>(data), size);
    std::string why;
    if (!taskpipe::testing::reader_agrees_with_msgpack_c(frame, why)) {
        fail("the msgpack reader disagrees with msgpack-c", why);
    }
    const taskpipe::DecodeResult first = taskpipe::decode(frame);

    // Both overloads are the same decoder.
    const auto bytes = std::as_bytes(std::span(data, size));
    const taskpipe::DecodeResult again = taskpipe::decode(bytes);
    if (again.message != first.message || again.error != first.error) {
        fail("the span and string_view overloads disagree", first.error + " / " + again.error);
    }

    check_socket<taskpipe::TasksMessage>("tasks", frame, first);
    check_socket<taskpipe::ResultsMessage>("results", frame, first);
    check_socket<taskpipe::ToSinkControl>("control to the sink", frame, first);
    check_socket<taskpipe::ToVentilatorControl>("control to the ventilator", frame, first);

    if (!first.message) {
        if (first.error.empty()) fail("a refused frame without a reason", "");
        return 0;
    }
    if (!first.error.empty()) fail("a decoded message with an error", first.error);

    taskpipe::Encoder encoder;
    const std::string encoded(encoder.encode(*first.message));
    const taskpipe::DecodeResult second = taskpipe::decode(encoded);
    if (!second.message) fail("the encoding of a decoded message does not decode", second.error);
    if (*second.message != *first.message) {
        fail("round trip changed the message", "type index " +
                                                   std::to_string(first.message->index()) + " -> " +
                                                   std::to_string(second.message->index()));
    }
    if (encoder.encode(*second.message) != encoded) fail("the encoding is not stable", "");
    return 0;
}
