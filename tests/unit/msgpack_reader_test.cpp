// msgpack read in place (common/src/msgpack_reader.hpp), limit by limit.
//
// docs/protocol.md, "Rules every receiver applies", 3: "Limits (anything beyond them is
// malformed): at most 64 map entries, arrays of at most 4,112 elements, strings and bins of at
// most 64 MiB, nesting at most 4 deep, no ext types." Each test shows a limit holding at its edge
// and failing one past it, with the reason that the codec reports, and that msgpack-c's own
// unpack with the same limits (the decoder before this one) agrees on every frame.
#include "msgpack_reader.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include <msgpack.hpp>

#include "support/msgpack_reference.hpp"
#include "taskpipe/codec.hpp"

namespace taskpipe {
namespace {

using msgpack_reader::Refusal;
using namespace std::string_literals;

Refusal refusal_of(std::string_view frame) {
    msgpack_reader::MapIndex index;
    return msgpack_reader::validate(frame, index).refusal;
}

void expect_agreement(std::string_view frame) {
    std::string why;
    EXPECT_TRUE(testing::reader_agrees_with_msgpack_c(frame, why)) << why;
}

// A frame with the given refusal, its reason from decode(), and msgpack-c agreeing.
void expect_refusal(const std::string& frame, Refusal refusal, const char* reason) {
    EXPECT_EQ(refusal_of(frame), refusal);
    EXPECT_EQ(decode(frame).error, reason);
    expect_agreement(frame);
}

void expect_accepted(const std::string& frame) {
    EXPECT_EQ(refusal_of(frame), Refusal::none);
    expect_agreement(frame);
}

constexpr const char* kTooLarge = "msgpack container or string over the size limit";

std::string packed(const auto& build) {
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer> packer(buffer);
    build(packer);
    return {buffer.data(), buffer.size()};
}

// A valid bye whose unknown field "x" holds `raw`, so that only the limits can refuse it.
std::string bye_with(const std::string& raw) {
    return "\x84\xa1v\x01\xa4type\xa3"
           "bye\xa5"
           "batch\x01\xa1x"s +
           raw;
}

TEST(MsgpackReaderLimits, MapOf64EntriesIsTheMost) {
    auto map_of = [](std::uint32_t entries) {
        return packed([&](auto& p) {
            p.pack_map(entries);
            p.pack("v");
            p.pack(1);
            p.pack("type");
            p.pack("bye");
            p.pack("batch");
            p.pack(1);
            for (std::uint32_t i = 3; i < entries; ++i) {
                p.pack("k" + std::to_string(i));
                p.pack_nil();
            }
        });
    };
    expect_accepted(map_of(64));
    EXPECT_TRUE(decode(map_of(64)).message.has_value()) << decode(map_of(64)).error;
    expect_refusal(map_of(65), Refusal::too_large, kTooLarge);
    expect_refusal(bye_with("\xde\x00\x41"s), Refusal::too_large, kTooLarge);  // map16 of 65
}

TEST(MsgpackReaderLimits, ArrayOf4112ElementsIsTheMost) {
    auto array_of = [](std::uint32_t elements) {
        return packed([&](auto& p) {
            p.pack_array(elements);
            for (std::uint32_t i = 0; i < elements; ++i) p.pack(i);
        });
    };
    expect_accepted(bye_with(array_of(4112)));
    EXPECT_TRUE(decode(bye_with(array_of(4112))).message.has_value());
    expect_refusal(bye_with(array_of(4113)), Refusal::too_large, kTooLarge);
    // Refused on its header, before any element is looked for.
    expect_refusal(bye_with("\xdd\x00\x00\x10\x11"s), Refusal::too_large, kTooLarge);
    expect_refusal("\xdd\xff\xff\xff\xff"s, Refusal::too_large, kTooLarge);
}

TEST(MsgpackReaderLimits, StrAndBinOf64MebibytesAreTheMost) {
    for (const char header : {'\xdb', '\xc6'}) {  // str32, bin32
        SCOPED_TRACE(header == '\xdb' ? "str" : "bin");
        auto of_size = [&](std::uint32_t size) {
            std::string raw{header};
            for (int shift = 24; shift >= 0; shift -= 8)
                raw.push_back(static_cast<char>(size >> shift));
            return bye_with(raw + std::string(size, 'x'));
        };
        expect_accepted(of_size(64u << 20));
        EXPECT_TRUE(decode(of_size(64u << 20)).message.has_value());
        expect_refusal(of_size((64u << 20) + 1), Refusal::too_large, kTooLarge);
    }
}

TEST(MsgpackReaderLimits, FourContainersDeepIsTheMost) {
    // The message's map is the first level: [[[1]]] inside it makes four.
    expect_accepted(bye_with("\x91\x91\x91\x01"s));
    EXPECT_TRUE(decode(bye_with("\x91\x91\x91\x01"s)).message.has_value());
    expect_refusal(bye_with("\x91\x91\x91\x91\x01"s), Refusal::too_deep,
                   "msgpack nested too deeply");
    // An empty container counts too, and so does a map.
    expect_refusal(bye_with("\x91\x91\x91\x90"s), Refusal::too_deep, "msgpack nested too deeply");
    expect_refusal(bye_with("\x91\x91\x91\x80"s), Refusal::too_deep, "msgpack nested too deeply");
    // A container over its size limit is refused for its size first, as msgpack-c does.
    expect_refusal(bye_with("\x91\x91\x91\xde\x00\x41"s), Refusal::too_large, kTooLarge);
    // A million levels are refused at the fifth, without recursion.
    expect_refusal(std::string(1'000'000, '\x91') + '\xc0', Refusal::too_deep,
                   "msgpack nested too deeply");
}

TEST(MsgpackReaderLimits, ExtOfAnySizeIsRefused) {
    for (const std::string& ext :
         {"\xd4\x01\x00"s, "\xd5\x01\x00\x00"s, "\xd6\x01" + std::string(4, 'x'),
          "\xd7\x01" + std::string(8, 'x'), "\xd8\x01" + std::string(16, 'x'), "\xc7\x00\x01"s,
          "\xc8\x00\x01\x01x"s, "\xc9\x00\x00\x00\x00\x01"s}) {
        SCOPED_TRACE(ext);
        expect_refusal(bye_with(ext), Refusal::too_large, kTooLarge);
        expect_refusal(ext, Refusal::too_large, kTooLarge);
    }
    // Its bytes must be there before its size is looked at.
    expect_refusal(bye_with("\xd8\x01"s), Refusal::truncated, "truncated msgpack");
    expect_refusal(bye_with("\xc7\x05\x01"s), Refusal::truncated, "truncated msgpack");
}

TEST(MsgpackReaderLimits, EveryProperPrefixIsTruncated) {
    Result r;
    r.batch = 0x1234'5678'9abc'def0;
    r.id = 70'000;
    r.exit_code = -200;
    r.out = std::string(300, 'o');
    r.input = std::string(70'000, 'i');
    Encoder encoder;
    const std::string frame(encoder.encode(r));
    for (std::size_t n = 0; n < frame.size(); n += n < 400 ? 1 : 997) {
        SCOPED_TRACE(n);
        expect_refusal(frame.substr(0, n), Refusal::truncated, "truncated msgpack");
    }
    expect_accepted(frame);
}

TEST(MsgpackReaderLimits, TheByteThatMsgpackNeverUsesIsAParseError) {
    expect_refusal("\xc1"s, Refusal::parse_error, "invalid msgpack: parse error");
    expect_refusal(bye_with("\xc1"s), Refusal::parse_error, "invalid msgpack: parse error");
}

TEST(MsgpackReaderLimits, BytesAfterTheFirstObjectAreLeftToTheCaller) {
    msgpack_reader::MapIndex index;
    EXPECT_EQ(msgpack_reader::validate("\x91\x01\x02"s, index).end, 2u);
    EXPECT_EQ(decode(bye_with("\x01\xc0"s)).error, "trailing bytes after the message");
    EXPECT_EQ(decode("\x91\x01"s).error, "message is not a map");
}

// Values read back as msgpack-c reads them: every integer width, signed encodings of positive
// numbers (msgpack-c makes them positive integers), floats, nil, booleans, str, bin, containers.
TEST(MsgpackReaderValues, EveryKindReadsAsMsgpackCReadsIt) {
    const std::string frame = packed([](auto& p) {
        p.pack_array(24);
        p.pack(0);
        p.pack(127);
        p.pack(128);
        p.pack(65535);
        p.pack(std::uint64_t{1} << 40);
        p.pack(std::numeric_limits<std::uint64_t>::max());
        p.pack(-1);
        p.pack(-33);
        p.pack(std::int64_t{-1} << 40);
        p.pack(std::numeric_limits<std::int64_t>::min());
        p.pack_fix_int8(5);
        p.pack_fix_int16(-5);
        p.pack_fix_int32(70000);
        p.pack_fix_int64(-70000);
        p.pack_fix_uint8(5);
        p.pack(1.5f);
        p.pack(2.5);
        p.pack_nil();
        p.pack(true);
        p.pack(false);
        p.pack(std::string(40, 's'));
        p.pack_bin(3);
        p.pack_bin_body("\0\xff\x01", 3);
        p.pack_map(2);
        p.pack(1);
        p.pack_array(0);
        p.pack("k");
        p.pack_map(0);
        p.pack(std::string(300, 'l'));
    });
    expect_accepted(frame);
}

}  // namespace
}  // namespace taskpipe
