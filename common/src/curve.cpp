#include "taskpipe/curve.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <zmq.h>

namespace taskpipe {

namespace {

constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
constexpr std::size_t kMaxKeyFileBytes = 64 * 1024;

std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) return {};
    const auto last = text.find_last_not_of(" \t\r");
    return text.substr(first, last - first + 1);
}

// The keys a key file names, each at most once.
struct KeyLines {
    std::optional<std::string> public_key;
    std::optional<std::string> secret_key;
};

KeyLines read_key_lines(std::string_view text, std::string_view origin) {
    KeyLines keys;
    std::size_t line_number = 0;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        const std::string_view raw = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        ++line_number;
        const std::string_view line = trim(raw);
        const auto eq = line.find('=');
        if (line.empty() || line.front() == '#' || eq == std::string_view::npos) continue;
        const std::string_view name = trim(line.substr(0, eq));
        std::string_view value = trim(line.substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
            value = value.substr(1, value.size() - 2);
        }
        std::optional<std::string>* slot = name == "public-key"   ? &keys.public_key
                                           : name == "secret-key" ? &keys.secret_key
                                                                  : nullptr;
        if (slot == nullptr) continue;
        const std::string where =
            std::string(origin) + " line " + std::to_string(line_number) + ": ";
        if (slot->has_value()) throw KeyFileError(where + std::string(name) + " given twice");
        if (auto error = z85_key_error(value)) {
            throw KeyFileError(where + std::string(name) + " " + *error);
        }
        *slot = std::string(value);
    }
    return keys;
}

struct FileText {
    std::string text;
    mode_t mode = 0;
};

FileText read_small_file(const std::string& path) {
    // O_NONBLOCK: opening a FIFO returns at once (to be refused below) instead of waiting for a
    // writer; it changes nothing for a regular file.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) throw KeyFileError("cannot open " + path + ": " + std::strerror(errno));
    FileText file;
    struct stat st {};
    std::string error;
    if (::fstat(fd, &st) != 0) {
        error = "cannot stat " + path + ": " + std::strerror(errno);
    } else if (!S_ISREG(st.st_mode)) {
        error = path + " is not a regular file";
    } else if (static_cast<std::size_t>(st.st_size) > kMaxKeyFileBytes) {
        error = path + " is too large for a key file";
    } else {
        file.mode = st.st_mode;
        file.text.resize(static_cast<std::size_t>(st.st_size));
        std::size_t done = 0;
        while (done < file.text.size()) {
            const ssize_t n = ::read(fd, file.text.data() + done, file.text.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                error = "cannot read " + path +
                        (n < 0 ? std::string(": ") + std::strerror(errno)
                               : std::string(": file shrank"));
                break;
            }
            done += static_cast<std::size_t>(n);
        }
    }
    ::close(fd);
    if (!error.empty()) throw KeyFileError(error);
    return file;
}

void write_new_file(const std::string& path, std::string_view text, mode_t mode) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) throw KeyFileError("cannot create " + path + ": " + std::strerror(errno));
    // The umask may have taken permissions away; it must not leave a secret key readable.
    bool ok = ::fchmod(fd, mode) == 0;
    while (ok && !text.empty()) {
        const ssize_t n = ::write(fd, text.data(), text.size());
        if (n < 0 && errno == EINTR) continue;
        ok = n > 0;
        if (ok) text.remove_prefix(static_cast<std::size_t>(n));
    }
    const int saved = errno;
    if (::close(fd) != 0) ok = false;
    if (!ok) {
        ::unlink(path.c_str());
        throw KeyFileError("cannot write " + path + ": " + std::strerror(saved));
    }
}

}  // namespace

std::optional<std::string> z85_key_error(std::string_view key) {
    if (key.size() != kZ85KeyLength) {
        return "must be " + std::to_string(kZ85KeyLength) + " Z85 characters, not " +
               std::to_string(key.size());
    }
    for (std::size_t i = 0; i < key.size(); ++i) {
        if (kZ85Alphabet.find(key[i]) == std::string_view::npos) {
            return "has a character that is not Z85 at position " + std::to_string(i + 1);
        }
    }
    std::uint8_t decoded[32];
    const std::string text(key);
    if (zmq_z85_decode(decoded, text.c_str()) == nullptr) return "is not valid Z85";
    return std::nullopt;
}

bool curve_available() { return zmq_has("curve") != 0; }

CurveKeyPair generate_key_pair() {
    char public_key[kZ85KeyLength + 1] = {};
    char secret_key[kZ85KeyLength + 1] = {};
    if (zmq_curve_keypair(public_key, secret_key) != 0) {
        throw std::runtime_error(std::string("cannot make a CURVE key pair: ") +
                                 zmq_strerror(zmq_errno()));
    }
    return {public_key, secret_key};
}

std::string format_secret_key_file(const CurveKeyPair& pair) {
    return "#   ZeroMQ CURVE **Secret** Certificate (taskpipe keygen)\n"
           "#   Keep this file to yourself (mode 0600); give out the .pub file instead.\n"
           "\n"
           "metadata\n"
           "curve\n"
           "    public-key = \"" +
           pair.public_key + "\"\n    secret-key = \"" + pair.secret_key + "\"\n";
}

std::string format_public_key_file(std::string_view public_key) {
    return "#   ZeroMQ CURVE Public Certificate (taskpipe keygen)\n"
           "\n"
           "metadata\n"
           "curve\n"
           "    public-key = \"" +
           std::string(public_key) + "\"\n";
}

CurveKeyPair parse_key_pair(std::string_view text, std::string_view origin) {
    KeyLines keys = read_key_lines(text, origin);
    if (!keys.secret_key) {
        throw KeyFileError(std::string(origin) + " holds no secret-key (is it a .pub file?)");
    }
    char derived[kZ85KeyLength + 1] = {};
    if (zmq_curve_public(derived, keys.secret_key->c_str()) != 0) {
        throw KeyFileError(std::string(origin) +
                           ": cannot derive the public key: " + zmq_strerror(zmq_errno()));
    }
    if (keys.public_key && *keys.public_key != derived) {
        throw KeyFileError(std::string(origin) + ": public-key does not belong to secret-key");
    }
    return {derived, *keys.secret_key};
}

std::string parse_public_key(std::string_view text, std::string_view origin) {
    KeyLines keys = read_key_lines(text, origin);
    if (!keys.public_key) throw KeyFileError(std::string(origin) + " holds no public-key");
    return *keys.public_key;
}

CurveKeyPair load_key_pair(const std::string& path) {
    const FileText file = read_small_file(path);
    if ((file.mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(file.mode & 07777));
        throw KeyFileError("secret key file " + path + " is open to other users (mode " + mode +
                           "); run: chmod 600 " + path);
    }
    return parse_key_pair(file.text, path);
}

std::string load_public_key(const std::string& path) {
    return parse_public_key(read_small_file(path).text, path);
}

std::vector<std::string> load_allowed_keys(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code error;
    if (!fs::is_directory(path, error)) return {load_public_key(path)};
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(path, error)) {
        if (entry.path().extension() == ".pub") files.push_back(entry.path().string());
    }
    if (error) throw KeyFileError("cannot list " + path + ": " + error.message());
    if (files.empty()) throw KeyFileError("no *.pub files in " + path);
    std::vector<std::string> keys;
    for (const auto& file : files) keys.push_back(load_public_key(file));
    return keys;
}

void write_key_files(const std::string& base, const CurveKeyPair& pair) {
    const std::string secret_path = base + ".key";
    const std::string public_path = base + ".pub";
    for (const auto& path : {secret_path, public_path}) {
        struct stat st {};
        if (::lstat(path.c_str(), &st) == 0) {
            throw KeyFileError(path + " already exists; not overwriting it");
        }
    }
    write_new_file(secret_path, format_secret_key_file(pair), 0600);
    try {
        write_new_file(public_path, format_public_key_file(pair.public_key), 0644);
    } catch (...) {
        ::unlink(secret_path.c_str());
        throw;
    }
}

}  // namespace taskpipe
