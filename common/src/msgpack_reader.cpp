#include "msgpack_reader.hpp"

namespace taskpipe::msgpack_reader {

using detail::Header;
using detail::kHeaders;
using detail::Kind;
using detail::load;

// The order of the checks is msgpack-c's (v2 parse.hpp and create_object_visitor.hpp): a
// header's length bytes must be there, then a str, bin or ext's whole body, before its size is
// checked; a container's count is checked, then its depth, as soon as its header is read, empty
// containers included.
Validation validate(std::string_view frame, MapIndex& index) {
    const char* const begin = frame.data();
    const char* const end = begin + frame.size();
    const char* p = begin;
    std::array<std::uint64_t, kMaxDepth> left{};  // values still to come in each open container
    std::size_t depth = 0;
    const bool map_at_top =
        !frame.empty() && kHeaders[static_cast<unsigned char>(*p)].kind == Kind::map;
    index.size = 0;
    std::uint32_t noted = 0;  // keys and values of the top-level map whose start is noted
    for (;;) {
        if (p == end) return {Refusal::truncated};
        if (depth == 1 && map_at_top) {
            index.at[noted++] = p;
            index.size = noted / 2;
        }
        const auto byte = static_cast<unsigned char>(*p++);
        const Header header = kHeaders[byte];
        if (header.kind == Kind::invalid) return {Refusal::parse_error};
        if (static_cast<std::size_t>(end - p) < header.fixed) return {Refusal::truncated};
        const std::uint64_t length = load(p, header.fixed);
        switch (header.kind) {
            case Kind::scalar:
                p += header.fixed;
                break;
            case Kind::str:
            case Kind::bin: {
                p += header.fixed;
                const std::uint64_t size = header.fixed == 0 ? (byte & 0x1fu) : length;
                if (static_cast<std::uint64_t>(end - p) < size) return {Refusal::truncated};
                if (size > kMaxBytes) return {Refusal::too_large};
                p += size;
                break;
            }
            case Kind::ext:
                p += header.fixed;
                if (static_cast<std::uint64_t>(end - p) < length + 1) return {Refusal::truncated};
                return {Refusal::too_large};  // the limit on ext is 0 bytes
            case Kind::fixext:
                return {Refusal::too_large};  // its bytes are there (checked above)
            case Kind::array:
            case Kind::map: {
                p += header.fixed;
                const bool map = header.kind == Kind::map;
                const std::uint64_t count = header.fixed == 0 ? (byte & 0x0fu) : length;
                if (count > (map ? kMaxMap : kMaxArray)) return {Refusal::too_large};
                if (depth + 1 > kMaxDepth) return {Refusal::too_deep};
                if (count > 0) {
                    left[depth++] = map ? 2 * count : count;
                    continue;  // its first element is the next value
                }
                break;
            }
            case Kind::invalid:
                return {Refusal::parse_error};
        }
        // A value is complete: so is every container that it was the last value of.
        while (depth > 0 && --left[depth - 1] == 0) --depth;
        if (depth == 0) return {Refusal::none, static_cast<std::size_t>(p - begin)};
    }
}

}  // namespace taskpipe::msgpack_reader
