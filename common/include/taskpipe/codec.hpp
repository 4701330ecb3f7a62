// Encoding and decoding of protocol messages (docs/protocol.md), driven by the schema that each
// message struct carries (schema.hpp, message.hpp).
//
// Encoding cannot fail. Decoding treats its input as hostile: it never throws, allocates a
// bounded amount whatever a header claims (containers are limited to what a message can legally
// hold before anything is reserved), and reports why a message was refused.
// Thread-safety: the free functions are reentrant; an Encoder is used by one thread at a time.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include <msgpack.hpp>

#include "taskpipe/message.hpp"

namespace taskpipe {

// True when M is one of the alternatives of the variant Set.
template <typename M, typename Set>
struct is_one_of : std::false_type {};
template <typename M, typename... Ms>
struct is_one_of<M, std::variant<Ms...>> : std::bool_constant<(std::is_same_v<M, Ms> || ...)> {};
template <typename M, typename Set>
inline constexpr bool one_of = is_one_of<M, Set>::value;

// A frame decoded as one message of Set, or why it was refused.
template <typename Set>
struct Decoded {
    std::optional<Set> message;
    std::string error;  // empty when message holds a value
};
using DecodeResult = Decoded<Message>;

// Decodes one frame as any message of the protocol. Unknown fields are ignored; a missing or
// mistyped required field, an unknown "type", a "v" other than kProtocolVersion, trailing bytes
// or anything past the size limits makes the whole frame an error.
DecodeResult decode(std::span<const std::byte> frame);
DecodeResult decode(std::string_view frame);

// Decodes one frame as one of the messages of Set (a socket's set, message.hpp): a well-formed
// message of another set is refused too, as not expected on this socket.
template <typename Set>
Decoded<Set> decode(std::string_view frame);

// A reference to one message of the protocol, or to the one a variant of messages holds: what
// Encoder::encode takes, so that encoding a Result does not first copy it into a Message.
class MessageRef {
  public:
    template <typename M>
    requires one_of<M, Message> MessageRef(const M& message) : message_(&message) {}
    template <typename... Ms>
    requires(one_of<Ms, Message>&&...) MessageRef(const std::variant<Ms...>& message)
        : message_(std::visit([](const auto& m) { return Pointer(&m); }, message)) {}

    template <typename Visitor>
    decltype(auto) visit(Visitor&& visitor) const {
        return std::visit([&](const auto* m) -> decltype(auto) { return visitor(*m); }, message_);
    }

  private:
    template <typename V>
    struct PointerTo;
    template <typename... Ms>
    struct PointerTo<std::variant<Ms...>> {
        using type = std::variant<const Ms*...>;
    };
    using Pointer = typename PointerTo<Message>::type;

    Pointer message_;
};

// Encodes messages into a buffer that it reuses between calls, so that the per-message path
// does not allocate once the buffer has grown.
class Encoder {
  public:
    // Returns a view of the encoded bytes, valid until the next call.
    std::string_view encode(MessageRef message);

  private:
    msgpack::sbuffer buffer_;
};

// The message that `decoded` holds, as one of Set's; a message of another set is refused as not
// expected on this socket.
template <typename Set>
Decoded<Set> narrow(DecodeResult decoded) {
    if (!decoded.message) return {std::nullopt, std::move(decoded.error)};
    return std::visit(
        [](auto& message) -> Decoded<Set> {
            using M = std::decay_t<decltype(message)>;
            if constexpr (one_of<M, Set>) {
                return {Set(std::move(message)), {}};
            } else {
                return {std::nullopt, "'" + std::string(M::type) + "' not expected on this socket"};
            }
        },
        *decoded.message);
}

template <typename Set>
Decoded<Set> decode(std::string_view frame) {
    return narrow<Set>(decode(frame));
}

}  // namespace taskpipe
