// The wire format as data: how each message struct of message.hpp describes its fields.
//
// Every message lists its fields once, in the order they are encoded, next to its members:
//
//     struct Task {
//         std::uint64_t batch = 0;
//         ...
//         static constexpr std::string_view type = "task";  // its "type" on the wire
//         static constexpr auto fields = std::tuple{
//             field("batch", &Task::batch, required),      // key, member, presence
//             bytes("payload", &Task::payload, required),  // a std::string is text() or bytes()
//             field("echo_input", &Task::echo_input, sent_if_set),
//         };
//     };
//
// and may add two hooks:
//
//     // Keys that belong to another form of the same type: a frame holding one of them is not
//     // this message (release has a worker's form and a sink's form).
//     static constexpr std::array<std::string_view, N> excluded = {...};
//     // Why a decoded message is refused (a check no single field can make), or nullptr.
//     static const char* refusal(const Task& task);
//
// The codec (codec.cpp) derives everything else from these: the map's size and the order of its
// keys, which fields must be present, each value's wire type and range, and the default of a
// field left out (the member's value in a default-constructed struct). Tests check the field
// tables of docs/protocol.md and the fuzzer's dictionary and seeds against the same lists.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace taskpipe {

struct TaskRef;
enum class Status : std::uint8_t;

// Several messages of type M in one frame (a `tasks` or `results` frame): each element is M's
// map without the envelope. Decoding keeps the well-formed elements and counts the others, so
// that one bad element costs only itself.
template <typename M>
struct Grouped {
    std::vector<M> items{};
    std::vector<std::string> refusals{};  // why each malformed element was left out
    // The messages are the value: what decoding noted of refused elements is not sent again.
    friend bool operator==(const Grouped& a, const Grouped& b) { return a.items == b.items; }
};

template <typename T>
inline constexpr bool is_grouped = false;
template <typename M>
inline constexpr bool is_grouped<Grouped<M>> = true;

// What a field's value is on the wire (docs/protocol.md, "Frames and encoding").
enum class Wire {
    uint,        // a positive integer, range-checked against the member's width
    int_or_nil,  // a 32-bit integer, or nil for none
    boolean,     // true or false
    text,        // a str
    bytes,       // a bin (a str is accepted too)
    ids,         // an array of uint
    task_refs,   // an array of [batch, id] pairs of uint
    status,      // a str naming a Status
    maps,        // an array of maps, each one message of a type without its envelope
};

enum class Presence {
    required,     // a frame without it is malformed; always sent
    defaulted,    // left out: the default; always sent
    sent_if_set,  // left out: the default; sent only when it differs from the default
};
inline constexpr Presence required = Presence::required;
inline constexpr Presence defaulted = Presence::defaulted;
inline constexpr Presence sent_if_set = Presence::sent_if_set;

// One row of a message's schema: the field `key` is the member `member` of message M.
template <typename M, typename T>
struct Field {
    std::string_view key;
    T M::*member;
    Wire wire;
    Presence presence;
};

// The wire type of a member of type T; std::string is text or bytes, so has none.
template <typename T>
constexpr Wire wire_of() {
    if constexpr (std::is_same_v<T, std::uint32_t> || std::is_same_v<T, std::uint64_t>) {
        return Wire::uint;
    } else if constexpr (std::is_same_v<T, std::optional<std::int32_t>>) {
        return Wire::int_or_nil;
    } else if constexpr (std::is_same_v<T, bool>) {
        return Wire::boolean;
    } else if constexpr (std::is_same_v<T, std::optional<std::string>>) {
        return Wire::bytes;  // absent: none
    } else if constexpr (std::is_same_v<T, std::vector<std::uint64_t>> ||
                         std::is_same_v<T, std::optional<std::vector<std::uint64_t>>>) {
        return Wire::ids;  // an optional one: absent, none
    } else if constexpr (std::is_same_v<T, std::vector<TaskRef>> ||
                         std::is_same_v<T, std::optional<std::vector<TaskRef>>>) {
        return Wire::task_refs;
    } else if constexpr (std::is_same_v<T, Status>) {
        return Wire::status;
    } else if constexpr (is_grouped<T>) {
        return Wire::maps;
    } else {
        static_assert(!std::is_same_v<T, std::string>, "a std::string field is text() or bytes()");
        static_assert(std::is_same_v<T, std::string>, "no wire type for this member type");
    }
}

template <typename M, typename T>
constexpr Field<M, T> field(std::string_view key, T M::*member, Presence presence = defaulted) {
    return {key, member, wire_of<T>(), presence};
}

template <typename M>
constexpr Field<M, std::string> text(std::string_view key, std::string M::*member,
                                     Presence presence = defaulted) {
    return {key, member, Wire::text, presence};
}

// An optional text field: absent, none.
template <typename M>
constexpr Field<M, std::optional<std::string>> text(std::string_view key,
                                                    std::optional<std::string> M::*member,
                                                    Presence presence = sent_if_set) {
    return {key, member, Wire::text, presence};
}

template <typename M>
constexpr Field<M, std::string> bytes(std::string_view key, std::string M::*member,
                                      Presence presence = defaulted) {
    return {key, member, Wire::bytes, presence};
}

}  // namespace taskpipe
