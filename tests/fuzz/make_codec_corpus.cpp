// Writes the seed corpus of codec_fuzzer into the directory given as the only argument: one
// valid encoding of every message type (each shape the decoder accepts: optional fields set and
// not, both forms of release), plus the hostile frames the integration tests send (truncations,
// huge length prefixes, deep nesting). Exit status 0, or 2 on a usage or file error.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "taskpipe/codec.hpp"
#include "taskpipe/message.hpp"

namespace {

using taskpipe::Message;

std::vector<std::pair<std::string, Message>> valid_messages() {
    using namespace taskpipe;
    Result full{7, 3, 2, Status::failed, 1, 9, "out\n", "err\n", true, "host", 42, 1, 2, "in", 5};
    Result bare = full;
    bare.id = 4;
    bare.attempt = 1;
    bare.status = Status::timeout;
    bare.exit_code = bare.signal = std::nullopt;
    bare.out = bare.err = bare.host = "";
    bare.out_truncated = false;
    bare.pid = 0;
    bare.started_us = bare.duration_us = bare.sent_us = 0;
    bare.input = std::nullopt;
    return {
        {"task", Task{7, 1, 1, "payload", 0, false}},
        {"task_echo", Task{7, 1, 1, "payload", 1700000000000000u, true}},
        {"task_binary", Task{0xffffffffffffffffu, 2, 3, std::string("\0\xff\x80", 3), 0, false}},
        {"result_full", full},
        {"result_bare", bare},
        {"heartbeat", Heartbeat{"host", 42, 4, 8, false, {{7, 1}, {7, 2}}}},
        {"heartbeat_draining", Heartbeat{"h", 1, 0, 0, true, {}}},
        {"release_tasks", WorkerRelease{{{7, 1}, {7, 5}}}},
        {"release_ids", SinkRelease{7, {1, 5}}},
        {"hello", Hello{7}},
        {"welcome", Welcome{7, 16, 0, false}},
        {"welcome_ordered", Welcome{7, 16, 1000, true}},
        {"reject", Reject{7, "busy"}},
        {"end", End{7, 100}},
        {"lost", Lost{7, 3, 3}},
        {"skip", Skip{7, {1, 2, 3}, {2}}},
        {"progress", Progress{7, 100, 10, 2, 1000}},
        {"ack", Ack{7, {1, 2, 3}, {2}}},
        {"alive", Alive{7, {4, 5}, 16}},
        {"bye", Bye{7}},
    };
}

bool write(const std::filesystem::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: make_codec_corpus DIRECTORY\n");
        return 2;
    }
    const std::filesystem::path dir = argv[1];
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
        std::fprintf(stderr, "make_codec_corpus: %s: %s\n", argv[1], ec.message().c_str());
        return 2;
    }
    taskpipe::Encoder encoder;
    std::vector<std::pair<std::string, std::string>> files;
    for (const auto& [name, message] : valid_messages()) {
        const std::string bytes(encoder.encode(message));
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
    // Frames that decode but whose re-encoding differs (see codec_fuzzer.cpp).
    files.emplace_back("release_empty_tasks", "\x83\xa1v\x01\xa4type\xa7release\xa5tasks\x90");
    files.emplace_back("release_both",
                       "\x84\xa1v\x01\xa4type\xa7release\xa5"
                       "batch\x05\xa5tasks\x91\x92\x01\x02");
    for (const auto& [name, bytes] : files) {
        if (!write(dir / name, bytes)) {
            std::fprintf(stderr, "make_codec_corpus: cannot write %s\n", (dir / name).c_str());
            return 2;
        }
    }
    return 0;
}
