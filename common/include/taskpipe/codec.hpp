// Encoding and decoding of protocol messages (docs/protocol.md).
//
// Encoding cannot fail. Decoding treats its input as hostile: it never throws, allocates a
// bounded amount whatever a header claims (containers are limited to what a message can legally
// hold before anything is reserved), and reports why a message was refused.
// Thread-safety: the free functions are reentrant; an Encoder is used by one thread at a time.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include <msgpack.hpp>

#include "taskpipe/message.hpp"

namespace taskpipe {

// Why a frame was refused, or no error.
struct DecodeResult {
    std::optional<Message> message;
    std::string error;  // empty when message holds a value
};

// Decodes one frame. Unknown fields are ignored; a missing or mistyped required field, an
// unknown "type", a "v" other than kProtocolVersion, trailing bytes or anything past the size
// limits makes the whole frame an error.
DecodeResult decode(std::span<const std::byte> frame);
DecodeResult decode(std::string_view frame);

// Encodes messages into a buffer that it reuses between calls, so that the per-message path
// does not allocate once the buffer has grown.
class Encoder {
  public:
    // Returns a view of the encoded bytes, valid until the next call.
    std::string_view encode(const Message& message);

  private:
    msgpack::sbuffer buffer_;
};

}  // namespace taskpipe
