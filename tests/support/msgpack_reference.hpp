// msgpack-c's own unpack, with the limits of msgpack_reader (common/src/msgpack_reader.hpp): the
// reference that msgpack_reader must agree with, frame for frame. Used by
// tests/unit/msgpack_reader_test.cpp and by codec_fuzzer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <msgpack.hpp>

#include "msgpack_reader.hpp"

namespace taskpipe::testing {

struct Reference {
    msgpack_reader::Refusal refusal = msgpack_reader::Refusal::none;
    std::size_t end = 0;
    msgpack::object root;  // valid while the zone given to reference_unpack lives
};

inline bool refer_to_input(msgpack::type::object_type, std::size_t, void*) { return true; }

// What msgpack-c makes of the first object of `frame`.
inline Reference reference_unpack(std::string_view frame, msgpack::zone& zone) {
    using msgpack_reader::Refusal;
    const msgpack::unpack_limit limits(msgpack_reader::kMaxArray, msgpack_reader::kMaxMap,
                                       msgpack_reader::kMaxBytes, msgpack_reader::kMaxBytes,
                                       /*ext=*/0, msgpack_reader::kMaxDepth);
    Reference reference;
    try {
        bool referenced = false;
        reference.root = msgpack::unpack(zone, frame.data(), frame.size(), reference.end,
                                         referenced, refer_to_input, nullptr, limits);
    } catch (const msgpack::insufficient_bytes&) {
        reference.refusal = Refusal::truncated;
    } catch (const msgpack::depth_size_overflow&) {
        reference.refusal = Refusal::too_deep;
    } catch (const msgpack::size_overflow&) {
        reference.refusal = Refusal::too_large;
    } catch (const msgpack::parse_error&) {
        reference.refusal = Refusal::parse_error;
    }
    return reference;
}

// Whether the value msgpack_reader reads at `at` is msgpack-c's `o`; if not, `why` says where
// they differ.
inline bool same_value(const char* at, const msgpack::object& o, std::string& why) {
    using Type = msgpack_reader::Value::Type;
    const msgpack_reader::Value v = msgpack_reader::peek(at);
    auto differ = [&](const char* what) {
        why = what;
        return false;
    };
    switch (o.type) {
        case msgpack::type::NIL:
            return v.type == Type::nil || differ("not nil");
        case msgpack::type::BOOLEAN:
            return (v.type == Type::boolean && v.boolean == o.via.boolean) || differ("boolean");
        case msgpack::type::POSITIVE_INTEGER:
            return (v.type == Type::positive && v.u64 == o.via.u64) || differ("positive integer");
        case msgpack::type::NEGATIVE_INTEGER:
            return (v.type == Type::negative && v.i64 == o.via.i64) || differ("negative integer");
        case msgpack::type::FLOAT32:
        case msgpack::type::FLOAT64:
            return v.type == Type::floating || differ("not a float");
        case msgpack::type::STR:
            return (v.type == Type::str &&
                    v.bytes == std::string_view(o.via.str.ptr, o.via.str.size)) ||
                   differ("str");
        case msgpack::type::BIN:
            return (v.type == Type::bin &&
                    v.bytes == std::string_view(o.via.bin.ptr, o.via.bin.size)) ||
                   differ("bin");
        case msgpack::type::ARRAY: {
            if (v.type != Type::array || v.size != o.via.array.size) return differ("array");
            const char* item = v.items;
            for (std::uint32_t i = 0; i < v.size; ++i) {
                if (!same_value(item, o.via.array.ptr[i], why)) return false;
                item = msgpack_reader::skip(item);
            }
            return true;
        }
        case msgpack::type::MAP: {
            if (v.type != Type::map || v.size != o.via.map.size) return differ("map");
            const char* item = v.items;
            for (std::uint32_t i = 0; i < v.size; ++i) {
                if (!same_value(item, o.via.map.ptr[i].key, why)) return false;
                item = msgpack_reader::skip(item);
                if (!same_value(item, o.via.map.ptr[i].val, why)) return false;
                item = msgpack_reader::skip(item);
            }
            return true;
        }
        case msgpack::type::EXT:
            return differ("an ext passed the limits");
    }
    return differ("unknown msgpack-c type");
}

// Whether msgpack_reader and msgpack-c agree on `frame`: the same refusal, or the same end, the
// same values and (for a map) an index of its entries in order. `why` says how they differ.
inline bool reader_agrees_with_msgpack_c(std::string_view frame, std::string& why) {
    msgpack::zone zone;
    const Reference reference = reference_unpack(frame, zone);
    msgpack_reader::MapIndex index;
    const msgpack_reader::Validation valid = msgpack_reader::validate(frame, index);
    if (valid.refusal != reference.refusal) {
        why = "refusal " + std::to_string(static_cast<int>(valid.refusal)) + ", msgpack-c's " +
              std::to_string(static_cast<int>(reference.refusal));
        return false;
    }
    if (valid.refusal != msgpack_reader::Refusal::none) return true;
    if (valid.end != reference.end) {
        why = "ends at " + std::to_string(valid.end) + ", msgpack-c's at " +
              std::to_string(reference.end);
        return false;
    }
    if (!same_value(frame.data(), reference.root, why)) return false;
    if (reference.root.type != msgpack::type::MAP) return true;
    if (index.size != reference.root.via.map.size) {
        why = "the index holds " + std::to_string(index.size) + " entries";
        return false;
    }
    for (std::uint32_t i = 0; i < index.size; ++i) {
        if (!same_value(index.at[2 * i], reference.root.via.map.ptr[i].key, why) ||
            !same_value(index.at[2 * i + 1], reference.root.via.map.ptr[i].val, why)) {
            why = "index entry " + std::to_string(i) + ": " + why;
            return false;
        }
    }
    return true;
}

}  // namespace taskpipe::testing
