// Writes the seed corpus and the dictionary of codec_fuzzer, both from the schema that the codec
// runs on (message.hpp), so that a new message or field needs no edit here:
//
//   make_codec_corpus SEED_DIRECTORY DICTIONARY_FILE
//
// Seeds: for every message of the protocol, one encoding with every field set and one with only
// the required fields, each also truncated and with a trailing byte; then the hostile frames the
// integration tests send (huge length prefixes, deep nesting, an ext type) and a release that
// mixes its two forms. Dictionary: the msgpack strings of every key, type and status, and the
// markers of msgpack's containers. Exit status 0, or 2 on a usage or file error, or when a seed
// that the schema should accept does not decode.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <msgpack.hpp>

#include "taskpipe/codec.hpp"
#include "taskpipe/message.hpp"

namespace {

using namespace taskpipe;

template <typename M>
M filled(bool all);

// A value of each member type unlike its default, chosen to reach the wider encodings.
template <typename T>
T sample(Wire wire) {
    if constexpr (is_grouped<T>) {
        using M = typename decltype(T::items)::value_type;
        return T{{filled<M>(true), filled<M>(false)}};
    } else if constexpr (std::is_same_v<T, std::uint64_t>) {
        return 0x1234567890u;
    } else if constexpr (std::is_same_v<T, std::uint32_t>) {
        return 70000;
    } else if constexpr (std::is_same_v<T, bool>) {
        return true;
    } else if constexpr (std::is_same_v<T, std::optional<std::int32_t>>) {
        return -300;
    } else if constexpr (std::is_same_v<T, std::string>) {
        return wire == Wire::text ? "h\xc3\xa9te" : std::string("\0\xff bytes\n", 9);
    } else if constexpr (std::is_same_v<T, std::optional<std::string>>) {
        return wire == Wire::text ? std::string("k\xc3\xa9y") : std::string("in\0put", 6);
    } else if constexpr (std::is_same_v<T, std::vector<std::uint64_t>> ||
                         std::is_same_v<T, std::optional<std::vector<std::uint64_t>>>) {
        return std::vector<std::uint64_t>{1, 2, 70000};
    } else if constexpr (std::is_same_v<T, std::vector<TaskRef>> ||
                         std::is_same_v<T, std::optional<std::vector<TaskRef>>>) {
        return std::vector<TaskRef>{{7, 1}, {7, 0x1234567890u}};
    } else {
        static_assert(std::is_same_v<T, Status>, "a sample for every member type");
        return Status::failed;
    }
}

// M with every field set (all), or with only the required ones.
template <typename M>
M filled(bool all) {
    M m;
    std::apply(
        [&](const auto&... f) {
            auto fill = [&](const auto& field) {
                using T = std::decay_t<decltype(m.*field.member)>;
                if (all || field.presence == Presence::required) {
                    m.*field.member = sample<T>(field.wire);
                }
            };
            (fill(f), ...);
        },
        M::fields);
    return m;
}

std::vector<std::pair<std::string, Message>> valid_messages() {
    std::vector<std::pair<std::string, Message>> messages;
    [&]<typename... Ms>(std::variant<Ms...>*) {
        auto add = [&]<typename M>(M*) {
            const std::string name =
                std::to_string(messages.size() / 2) + "_" + std::string(M::type);
            messages.emplace_back(name + "_full", filled<M>(true));
            messages.emplace_back(name + "_required", filled<M>(false));
        };
        (add(static_cast<Ms*>(nullptr)), ...);
    }(static_cast<Message*>(nullptr));
    return messages;
}

std::string msgpack_str(std::string_view text) {
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer> packer(buffer);
    packer.pack_str(static_cast<std::uint32_t>(text.size()));
    packer.pack_str_body(text.data(), static_cast<std::uint32_t>(text.size()));
    return {buffer.data(), buffer.size()};
}

// The dictionary's words: the protocol's strings as msgpack writes them, and container markers.
std::set<std::string> dictionary_words() {
    std::set<std::string> words = {msgpack_str("v"), msgpack_str("type"),
                                   std::string("\x82\xa1v\x01\xa4type", 9)};
    [&]<typename... Ms>(std::variant<Ms...>*) {
        auto add = [&]<typename M>(M*) {
            words.insert(msgpack_str(M::type));
            std::apply([&](const auto&... f) { (words.insert(msgpack_str(f.key)), ...); },
                       M::fields);
        };
        (add(static_cast<Ms*>(nullptr)), ...);
    }(static_cast<Message*>(nullptr));
    for (Status status : kAllStatuses) words.insert(msgpack_str(to_string(status)));
    // fixarray of 2, bin8, nil, false, true, uint64, array16, array32, map16, map32, and the
    // fixmaps of a group's task and result elements
    for (const char* marker : {"\x92", "\xc4", "\xc0", "\xc2", "\xc3", "\xcf", "\xdc", "\xdd",
                               "\xde", "\xdf", "\x85", "\x8d"}) {
        words.insert(marker);
    }
    return words;
}

// One line of a libFuzzer dictionary: the word in quotes, with \xNN for anything unprintable.
std::string dictionary_line(const std::string& word) {
    std::string line = "\"";
    for (char c : word) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte >= 0x20 && byte < 0x7f && c != '"' && c != '\\') {
            line.push_back(c);
        } else {
            char hex[5];
            std::snprintf(hex, sizeof hex, "\\x%02x", byte);
            line += hex;
        }
    }
    return line + "\"\n";
}

bool write(const std::filesystem::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: make_codec_corpus SEED_DIRECTORY DICTIONARY_FILE\n");
        return 2;
    }
    const std::filesystem::path dir = argv[1];
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
        std::fprintf(stderr, "make_codec_corpus: %s: %s\n", argv[1], ec.message().c_str());
        return 2;
    }
    Encoder encoder;
    std::vector<std::pair<std::string, std::string>> files;
    for (const auto& [name, message] : valid_messages()) {
        const std::string bytes(encoder.encode(message));
        const DecodeResult decoded = decode(bytes);
        if (!decoded.message || *decoded.message != message) {
            std::fprintf(stderr, "make_codec_corpus: seed %s does not decode back: %s\n",
                         name.c_str(), decoded.error.c_str());
            return 2;
        }
        files.emplace_back(name, bytes);
        files.emplace_back(name + "_truncated", bytes.substr(0, bytes.size() / 2));
        files.emplace_back(name + "_trailing", bytes + '\0');
    }
    files.emplace_back("empty", "");
    files.emplace_back("map32_huge", "\xdf\xff\xff\xff\xff");
    files.emplace_back("array32_huge", "\xdd\xff\xff\xff\xff");
    files.emplace_back("str32_huge", "\xdb\xff\xff\xff\xff");
    files.emplace_back("bin32_huge", "\xc6\xff\xff\xff\xff");
    files.emplace_back("nested_arrays", std::string(64, '\x91') + '\xc0');
    files.emplace_back("ext", std::string("\xd4\x01\x00", 3));
    // At the limits: five containers deep, a map of 65 entries, the byte msgpack never uses, each
    // inside an otherwise valid bye.
    const std::string bye =
        "\x84\xa1v\x01\xa4type\xa3"
        "bye\xa5"
        "batch\x01\xa1x";
    files.emplace_back("bye_five_deep", bye + "\x91\x91\x91\x91\x01");
    files.emplace_back("bye_map_of_65", bye + std::string("\xde\x00\x41", 3));
    files.emplace_back("bye_parse_error", bye + "\xc1");
    // The two forms of release in one frame (refused), and a worker's release of no task.
    files.emplace_back("release_both",
                       "\x84\xa1v\x01\xa4type\xa7release\xa5"
                       "batch\x05\xa5tasks\x91\x92\x01\x02");
    files.emplace_back("release_empty_tasks", "\x83\xa1v\x01\xa4type\xa7release\xa5tasks\x90");
    // Groups: a valid element between one that is not a map and one with id 0 (two are left
    // out, the frame is taken), and an array16 claiming more elements than it holds.
    using namespace std::string_literals;
    const std::string element =
        "\x83\xa5"
        "batch\x07\xa2id\x01\xa7payload\xc4\x01p"s;
    const std::string id_zero =
        "\x83\xa5"
        "batch\x07\xa2id\x00\xa7payload\xc4\x01p"s;
    files.emplace_back("tasks_mixed",
                       "\x83\xa1v\x01\xa4type\xa5tasks\xa5tasks\x93\x2a" + element + id_zero);
    files.emplace_back("tasks_count_too_large",
                       "\x83\xa1v\x01\xa4type\xa5tasks\xa5tasks\xdc\x04\x01" + element);
    for (const auto& [name, bytes] : files) {
        if (!write(dir / name, bytes)) {
            std::fprintf(stderr, "make_codec_corpus: cannot write %s\n", (dir / name).c_str());
            return 2;
        }
    }
    std::string dictionary =
        "# libFuzzer dictionary for taskpipe::decode, written by make_codec_corpus from the "
        "schema.\n";
    for (const std::string& word : dictionary_words()) dictionary += dictionary_line(word);
    if (!write(argv[2], dictionary)) {
        std::fprintf(stderr, "make_codec_corpus: cannot write %s\n", argv[2]);
        return 2;
    }
    return 0;
}
