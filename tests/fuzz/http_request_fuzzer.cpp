// libFuzzer harness for the --metrics server's request reader (sink/http_request.hpp), which
// reads whatever anyone who can reach the port sends.
//
// The contract it checks: "anything malformed ends in a status to answer with, never in an
// exception"; "the server feeds what it reads, in pieces of any size"; the head is bounded. The
// oracle: the input fed whole and fed in pieces (their sizes taken from the input itself) gives
// the same outcome, and a complete request has a token method and a visible-ASCII target.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http_request.hpp"

namespace {

using taskpipe::HttpRequestReader;

[[noreturn]] void fail(const char* what, const std::string& detail) {
    std::fprintf(stderr, "http_request_fuzzer: %s: %s\n", what, detail.c_str());
    std::abort();
}

bool same(const HttpRequestReader& a, const HttpRequestReader& b) {
    return a.state() == b.state() && a.method() == b.method() && a.target() == b.target() &&
           a.error_status() == b.error_status();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    // The first byte chooses the piece size; the rest is what the client sends.
    const std::size_t piece = data[0] % 16 + 1;
    const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);

    HttpRequestReader whole;
    whole.feed(bytes);
    HttpRequestReader pieces;
    for (std::size_t at = 0; at < bytes.size(); at += piece) pieces.feed(bytes.substr(at, piece));
    if (!same(whole, pieces)) fail("pieces read differently from the whole", std::to_string(piece));

    switch (whole.state()) {
        case HttpRequestReader::State::incomplete:
            if (bytes.size() >= HttpRequestReader::kMaxHeadBytes) {
                fail("a head past the limit is still incomplete", std::to_string(bytes.size()));
            }
            break;
        case HttpRequestReader::State::bad: {
            const int status = whole.error_status();
            if (status != 400 && status != 431 && status != 505) {
                fail("an unexpected status", std::to_string(status));
            }
            break;
        }
        case HttpRequestReader::State::complete:
            if (whole.method().empty() || whole.target().empty()) fail("an empty request line", "");
            for (const char c : whole.method() + whole.target()) {
                const auto u = static_cast<unsigned char>(c);
                if (u <= 0x20 || u >= 0x7f) fail("a control byte in the request line", "");
            }
            break;
    }
    return 0;
}
