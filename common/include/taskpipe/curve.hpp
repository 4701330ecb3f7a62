// CURVE keys and the files that hold them (docs/security.md).
//
// A key is 32 bytes, written as the 40-character Z85 text ZeroMQ uses (zmq_curve_keypair,
// zmq_z85_encode). Key files follow CZMQ's zcert layout, so that CZMQ and pyzmq read them too:
//
//     curve
//         public-key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
//         secret-key = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
//
// A secret key file (NAME.key) holds both keys and must not be readable or writable by anyone
// but its owner (mode & 077 == 0); a public key file (NAME.pub) holds only the public key.
// Lines starting with '#', blank lines, section names and other "name = value" lines are
// ignored; quotes around a value are optional. Keys never come from the command line, where
// `ps` would show them.
//
// Every function here is reentrant. Errors are KeyFileError, with a message that names the file.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace taskpipe {

// A key file that cannot be used: missing, malformed, or a secret key others can read.
class KeyFileError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

inline constexpr std::size_t kZ85KeyLength = 40;

struct CurveKeyPair {
    std::string public_key;  // Z85
    std::string secret_key;  // Z85
};

// Why `key` is not a Z85-encoded CURVE key, or nullopt when it is one.
std::optional<std::string> z85_key_error(std::string_view key);

// Whether this libzmq was built with CURVE (zmq_has("curve")).
bool curve_available();

// A fresh key pair from zmq_curve_keypair. Throws std::runtime_error when CURVE is missing.
CurveKeyPair generate_key_pair();

// The file contents keygen writes for a key pair (NAME.key) and for its public key (NAME.pub).
std::string format_secret_key_file(const CurveKeyPair& pair);
std::string format_public_key_file(std::string_view public_key);

// Parse the text of a key file; `origin` names it in error messages. The key pair's public key
// must be the one that belongs to its secret key.
CurveKeyPair parse_key_pair(std::string_view text, std::string_view origin);
std::string parse_public_key(std::string_view text, std::string_view origin);

// Key files must be regular files of at most 64 KiB; anything else (a FIFO, a device) is refused
// at once, without blocking.
// Read a secret key file, refusing one whose mode lets group or others in (mode & 077).
CurveKeyPair load_key_pair(const std::string& path);
// Read a public key file (a secret key file also holds a public key and is accepted).
std::string load_public_key(const std::string& path);
// The public keys in `path`: one file, or every *.pub file of a directory (not recursive).
// An empty directory is an error: it would lock everyone out without saying so.
std::vector<std::string> load_allowed_keys(const std::string& path);

// Writes BASE.key (mode 0600) and BASE.pub (mode 0644) for `pair`. Never overwrites: if either
// file exists, nothing is written and KeyFileError says which.
void write_key_files(const std::string& base, const CurveKeyPair& pair);

}  // namespace taskpipe
