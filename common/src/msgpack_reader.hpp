// msgpack read in place, without building an object tree: the first layer of the codec.
//
// validate() walks one frame once and checks it against the limits of the protocol
// (docs/protocol.md, "Rules every receiver applies", 3) exactly as msgpack-c's unpack with those
// limits does: the same frames are refused, for the same first reason. On the way it notes
// where each key and value of a top-level map starts. peek(), read() and skip() then read values
// out of a frame that validate() accepted, with no further checks; a Value's strings, bins and
// containers point into the frame, which must outlive it.
// Thread-safety: plain functions over caller-owned bytes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace taskpipe::msgpack_reader {

inline constexpr std::uint32_t kMaxArray = 4096 + 16;  // kMaxIdsPerMessage and some room
inline constexpr std::uint32_t kMaxMap = 64;
inline constexpr std::uint32_t kMaxBytes = 64u << 20;  // str and bin
inline constexpr std::size_t kMaxDepth = 4;            // containers inside one another

// Why validate() refused a frame, worded like the exceptions of msgpack-c's unpack.
enum class Refusal {
    none,
    truncated,   // msgpack::insufficient_bytes
    too_deep,    // msgpack::depth_size_overflow
    too_large,   // msgpack::size_overflow (a container, str, bin, or any ext)
    parse_error  // msgpack::parse_error (the byte 0xc1)
};

struct Validation {
    Refusal refusal = Refusal::none;
    std::size_t end = 0;  // accepted: where the first object ends
};

// Where the keys and values of a top-level map start: key i at at[2 * i], its value after.
struct MapIndex {
    std::uint32_t size = 0;       // entries
    const char* at[2 * kMaxMap];  // left uninitialised: validate() fills what it uses
};

// Checks the first msgpack object of `frame`; bytes after it are the caller's business. When
// that object is a map, `index` locates its entries.
Validation validate(std::string_view frame, MapIndex& index);

// One value of a validated frame.
struct Value {
    enum class Type : std::uint8_t {
        nil,
        boolean,
        positive,  // an integer >= 0, whatever its encoding (msgpack-c's POSITIVE_INTEGER)
        negative,  // an integer < 0
        floating,
        str,
        bin,
        array,
        map,
    };
    Type type = Type::nil;
    bool boolean = false;
    std::uint64_t u64 = 0;        // positive
    std::int64_t i64 = 0;         // negative
    std::string_view bytes;       // str, bin
    std::uint32_t size = 0;       // array: elements; map: entries
    const char* items = nullptr;  // array, map: the first element (of a map: the first key)
};

namespace detail {

// A big-endian unsigned integer of n bytes (0, 1, 2, 4 or 8; 0 bytes hold 0).
inline std::uint64_t load(const char* p, std::size_t n) {
    switch (n) {
        case 1:
            return static_cast<unsigned char>(*p);
        case 2: {
            std::uint16_t v;
            std::memcpy(&v, p, 2);
            return __builtin_bswap16(v);
        }
        case 4: {
            std::uint32_t v;
            std::memcpy(&v, p, 4);
            return __builtin_bswap32(v);
        }
        case 8: {
            std::uint64_t v;
            std::memcpy(&v, p, 8);
            return __builtin_bswap64(v);
        }
        default:
            return 0;
    }
}

// What a header byte starts. Lengths are in bytes after the header byte.
enum class Kind : std::uint8_t {
    scalar,   // nil, bool, an integer or a float: `fixed` bytes follow
    str,      // `fixed` bytes of length follow (0: a fixstr, the length is in the byte)
    bin,      // `fixed` bytes of length follow
    ext,      // ext8/16/32: `fixed` bytes of length, then the type byte and the data
    fixext,   // `fixed` bytes follow: the type byte and the data
    array,    // `fixed` bytes of count follow (0: a fixarray)
    map,      // `fixed` bytes of count follow (0: a fixmap)
    invalid,  // 0xc1
};

struct Header {
    Kind kind;
    std::uint8_t fixed;
};

inline constexpr std::array<Header, 256> kHeaders = [] {
    std::array<Header, 256> h{};
    for (std::size_t b = 0x00; b <= 0x7f; ++b) h[b] = {Kind::scalar, 0};  // positive fixint
    for (std::size_t b = 0x80; b <= 0x8f; ++b) h[b] = {Kind::map, 0};
    for (std::size_t b = 0x90; b <= 0x9f; ++b) h[b] = {Kind::array, 0};
    for (std::size_t b = 0xa0; b <= 0xbf; ++b) h[b] = {Kind::str, 0};
    h[0xc0] = {Kind::scalar, 0};
    h[0xc1] = {Kind::invalid, 0};
    h[0xc2] = h[0xc3] = {Kind::scalar, 0};
    h[0xc4] = {Kind::bin, 1};
    h[0xc5] = {Kind::bin, 2};
    h[0xc6] = {Kind::bin, 4};
    h[0xc7] = {Kind::ext, 1};
    h[0xc8] = {Kind::ext, 2};
    h[0xc9] = {Kind::ext, 4};
    h[0xca] = {Kind::scalar, 4};
    h[0xcb] = {Kind::scalar, 8};
    h[0xcc] = h[0xd0] = {Kind::scalar, 1};
    h[0xcd] = h[0xd1] = {Kind::scalar, 2};
    h[0xce] = h[0xd2] = {Kind::scalar, 4};
    h[0xcf] = h[0xd3] = {Kind::scalar, 8};
    h[0xd4] = {Kind::fixext, 2};
    h[0xd5] = {Kind::fixext, 3};
    h[0xd6] = {Kind::fixext, 5};
    h[0xd7] = {Kind::fixext, 9};
    h[0xd8] = {Kind::fixext, 17};
    h[0xd9] = {Kind::str, 1};
    h[0xda] = {Kind::str, 2};
    h[0xdb] = {Kind::str, 4};
    h[0xdc] = {Kind::array, 2};
    h[0xdd] = {Kind::array, 4};
    h[0xde] = {Kind::map, 2};
    h[0xdf] = {Kind::map, 4};
    for (std::size_t b = 0xe0; b <= 0xff; ++b) h[b] = {Kind::scalar, 0};  // negative fixint
    return h;
}();

// Reads the value at `at` into v, a container's header only; returns where what it read ends.
inline const char* read_header(const char* at, Value& v) {
    const auto byte = static_cast<unsigned char>(*at++);
    const Header header = kHeaders[byte];
    const std::uint64_t length = load(at, header.fixed);
    at += header.fixed;
    switch (header.kind) {
        case Kind::scalar:
            if (byte <= 0x7f) {
                v.type = Value::Type::positive;
                v.u64 = byte;
            } else if (byte >= 0xe0) {
                v.type = Value::Type::negative;
                v.i64 = static_cast<std::int8_t>(byte);
            } else if (byte == 0xc0) {
                v.type = Value::Type::nil;
            } else if (byte == 0xc2 || byte == 0xc3) {
                v.type = Value::Type::boolean;
                v.boolean = byte == 0xc3;
            } else if (byte == 0xca || byte == 0xcb) {
                v.type = Value::Type::floating;
            } else if (byte >= 0xcc && byte <= 0xcf) {
                v.type = Value::Type::positive;
                v.u64 = length;
            } else {  // int 8 to 64: msgpack-c makes those >= 0 positive integers
                const unsigned shift = 64u - 8u * header.fixed;
                const auto value = static_cast<std::int64_t>(length << shift) >> shift;
                v.type = value >= 0 ? Value::Type::positive : Value::Type::negative;
                v.u64 = static_cast<std::uint64_t>(value);
                v.i64 = value;
            }
            return at;
        case Kind::str:
        case Kind::bin:
            v.type = header.kind == Kind::str ? Value::Type::str : Value::Type::bin;
            v.bytes = std::string_view(at, header.fixed == 0 ? (byte & 0x1fu) : length);
            return at + v.bytes.size();
        case Kind::array:
        case Kind::map:
            v.type = header.kind == Kind::map ? Value::Type::map : Value::Type::array;
            v.size = static_cast<std::uint32_t>(header.fixed == 0 ? (byte & 0x0fu) : length);
            v.items = at;
            return at;
        case Kind::ext:
        case Kind::fixext:
        case Kind::invalid:
            break;  // never in a validated frame
    }
    return at;
}

}  // namespace detail

// The value at `at`; of a container, its size and where its first element starts.
inline Value peek(const char* at) {
    Value v;
    (void)detail::read_header(at, v);
    return v;
}

// Past the value at `at`, a container's elements included.
inline const char* skip(const char* at) {
    Value v;
    at = detail::read_header(at, v);
    if (v.type == Value::Type::array || v.type == Value::Type::map) {
        const std::uint64_t items = v.type == Value::Type::map ? 2 * std::uint64_t{v.size} : v.size;
        for (std::uint64_t i = 0; i < items; ++i) at = skip(at);
    }
    return at;
}

// The value at `at`, moving `at` past it.
inline Value read(const char*& at) {
    const char* const start = at;
    Value v;
    at = detail::read_header(at, v);
    if (v.type == Value::Type::array || v.type == Value::Type::map) at = skip(start);
    return v;
}

}  // namespace taskpipe::msgpack_reader
