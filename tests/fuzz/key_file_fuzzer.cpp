// libFuzzer harness for the CURVE key-file parser (common/include/taskpipe/curve.hpp), which
// reads files a user was handed (a worker's .pub) and may not have looked at.
//
// The contract it checks: parse_key_pair() and parse_public_key() return a valid key or throw
// KeyFileError naming the file, and nothing else, whatever the bytes. The oracle: what they
// accept is a Z85 key, and the file keygen would write for it parses back to the same keys.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "taskpipe/curve.hpp"

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail) {
    std::fprintf(stderr, "key_file_fuzzer: %s: %s\n", what, detail.c_str());
    std::abort();
}

void check_refusal(const taskpipe::KeyFileError& e) {
    if (std::string_view(e.what()).rfind("fuzz.key", 0) != 0) {
        fail("an error not naming the file", e.what());
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const std::string key = taskpipe::parse_public_key(text, "fuzz.key");
        if (auto error = taskpipe::z85_key_error(key))
            fail("an invalid public key accepted", *error);
        if (taskpipe::parse_public_key(taskpipe::format_public_key_file(key), "fuzz.key") != key) {
            fail("a public key file does not round-trip", key);
        }
    } catch (const taskpipe::KeyFileError& e) {
        check_refusal(e);
    }
    try {
        const taskpipe::CurveKeyPair pair = taskpipe::parse_key_pair(text, "fuzz.key");
        if (taskpipe::z85_key_error(pair.public_key) || taskpipe::z85_key_error(pair.secret_key)) {
            fail("an invalid key pair accepted", pair.public_key);
        }
        const taskpipe::CurveKeyPair again =
            taskpipe::parse_key_pair(taskpipe::format_secret_key_file(pair), "fuzz.key");
        if (again.public_key != pair.public_key || again.secret_key != pair.secret_key) {
            fail("a secret key file does not round-trip", pair.public_key);
        }
    } catch (const taskpipe::KeyFileError& e) {
        check_refusal(e);
    }
    return 0;
}
