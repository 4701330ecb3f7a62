// zmq_limit: the physical limit for taskpipe's trivial-task path.
//
// Moves the same msgpack frames as a taskpipe batch along the same two hops, with no framework:
// no acknowledgements, heartbeats, ledger, retries or child processes. Three modes, run as
// separate processes so that each hop crosses a real socket exactly like ventilator -> worker
// -> sink:
//
//   zmq_limit collect BIND_ENDPOINT COUNT   PULL; writes each frame's stdout bytes to stdout,
//                                           exits after COUNT frames
//   zmq_limit relay SOURCE COLLECTOR        PULL from SOURCE, PUSH to COLLECTOR; for each task
//                                           frame, sends a result frame whose stdout is the
//                                           payload and a newline (what `--builtin echo` does)
//   zmq_limit source BIND_ENDPOINT          PUSH; one task frame per stdin line, then exits
//                                           once every frame is delivered (LINGER -1)
//
// Frames are msgpack maps with the fields and types of docs/protocol.md's `task` and `result`,
// so the bytes on the wire match taskpipe's. A bound endpoint with port `*` is reported on
// stderr ("zmq_limit: collect on tcp://127.0.0.1:PORT"). Relays run until killed.
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <msgpack.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <zmq.hpp>

namespace {

using Clock = std::chrono::system_clock;

std::uint64_t now_us() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch())
            .count());
}

void pack_str(msgpack::packer<msgpack::sbuffer>& pk, std::string_view s) {
    pk.pack_str(static_cast<std::uint32_t>(s.size()));
    pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

void pack_bin(msgpack::packer<msgpack::sbuffer>& pk, std::string_view s) {
    pk.pack_bin(static_cast<std::uint32_t>(s.size()));
    pk.pack_bin_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

// The `task` map of docs/protocol.md.
void pack_task(msgpack::sbuffer& buf, std::uint64_t batch, std::uint64_t id,
               std::string_view payload) {
    buf.clear();
    msgpack::packer<msgpack::sbuffer> pk(buf);
    pk.pack_map(6);
    pack_str(pk, "v"), pk.pack_uint64(1);
    pack_str(pk, "type"), pack_str(pk, "task");
    pack_str(pk, "batch"), pk.pack_uint64(batch);
    pack_str(pk, "id"), pk.pack_uint64(id);
    pack_str(pk, "attempt"), pk.pack_uint64(1);
    pack_str(pk, "payload"), pack_bin(pk, payload);
}

// The `result` map of docs/protocol.md, every field present as taskpipe's worker sends it.
void pack_result(msgpack::sbuffer& buf, std::uint64_t batch, std::uint64_t id, std::string_view out,
                 std::string_view host, std::uint32_t pid) {
    buf.clear();
    msgpack::packer<msgpack::sbuffer> pk(buf);
    pk.pack_map(15);
    pack_str(pk, "v"), pk.pack_uint64(1);
    pack_str(pk, "type"), pack_str(pk, "result");
    pack_str(pk, "batch"), pk.pack_uint64(batch);
    pack_str(pk, "id"), pk.pack_uint64(id);
    pack_str(pk, "attempt"), pk.pack_uint64(1);
    pack_str(pk, "status"), pack_str(pk, "ok");
    pack_str(pk, "exit_code"), pk.pack_int32(0);
    pack_str(pk, "signal"), pk.pack_nil();
    pack_str(pk, "stdout"), pack_bin(pk, out);
    pack_str(pk, "stderr"), pack_bin(pk, "");
    pack_str(pk, "stdout_truncated"), pk.pack_false();
    pack_str(pk, "host"), pack_str(pk, host);
    pack_str(pk, "pid"), pk.pack_uint32(pid);
    pack_str(pk, "started_us"), pk.pack_uint64(now_us());
    pack_str(pk, "duration_us"), pk.pack_uint64(1);
}

// The value of `key` in a msgpack map, or nullptr.
const msgpack::object* field(const msgpack::object& map, std::string_view key) {
    if (map.type != msgpack::type::MAP) return nullptr;
    for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
        const auto& kv = map.via.map.ptr[i];
        if (kv.key.type == msgpack::type::STR &&
            std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == key) {
            return &kv.val;
        }
    }
    return nullptr;
}

std::string_view bytes_of(const msgpack::object* o) {
    if (o == nullptr || o->type != msgpack::type::BIN) throw std::runtime_error("bad frame");
    return {o->via.bin.ptr, o->via.bin.size};
}

std::uint64_t uint_of(const msgpack::object* o) {
    if (o == nullptr || o->type != msgpack::type::POSITIVE_INTEGER) {
        throw std::runtime_error("bad frame");
    }
    return o->via.u64;
}

zmq::socket_t make_socket(zmq::context_t& ctx, zmq::socket_type type, int linger) {
    zmq::socket_t s(ctx, type);
    s.set(zmq::sockopt::linger, linger);
    return s;
}

void report_bound(const char* mode, zmq::socket_t& s) {
    std::cerr << "zmq_limit: " << mode << " on " << s.get(zmq::sockopt::last_endpoint) << std::endl;
}

// Writes whole buffers to fd 1, retrying short writes.
class StdoutBuffer {
  public:
    ~StdoutBuffer() { flush(); }
    void append(std::string_view s) {
        buf_.append(s);
        if (buf_.size() >= 256 * 1024) flush();
    }
    void flush() {
        std::string_view rest = buf_;
        while (!rest.empty()) {
            const ssize_t n = ::write(STDOUT_FILENO, rest.data(), rest.size());
            if (n < 0) throw std::runtime_error(std::string("write: ") + std::strerror(errno));
            rest.remove_prefix(static_cast<std::size_t>(n));
        }
        buf_.clear();
    }

  private:
    std::string buf_;
};

int run_source(const std::string& bind) {
    zmq::context_t ctx;
    auto push = make_socket(ctx, zmq::socket_type::push, -1);
    push.bind(bind);
    report_bound("source", push);
    msgpack::sbuffer buf;
    std::string pending;
    std::string chunk(1 << 16, '\0');
    std::uint64_t id = 0;
    const std::uint64_t batch = 0x5eed'cafe'f00d'1234ULL;
    std::size_t frame_size = 0;
    for (;;) {
        const ssize_t n = ::read(STDIN_FILENO, chunk.data(), chunk.size());
        if (n < 0) throw std::runtime_error(std::string("read: ") + std::strerror(errno));
        if (n == 0) break;
        pending.append(chunk.data(), static_cast<std::size_t>(n));
        std::size_t start = 0;
        for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos;
             start = nl + 1) {
            pack_task(buf, batch, ++id, std::string_view(pending).substr(start, nl - start));
            frame_size = buf.size();
            push.send(zmq::const_buffer(buf.data(), buf.size()), zmq::send_flags::none);
        }
        pending.erase(0, start);
    }
    if (!pending.empty()) {
        pack_task(buf, batch, ++id, pending);
        push.send(zmq::const_buffer(buf.data(), buf.size()), zmq::send_flags::none);
    }
    std::cerr << "zmq_limit: source sent " << id << " task frames of " << frame_size << " bytes"
              << std::endl;
    return 0;  // the context's destructor waits until every frame is delivered
}

int run_relay(const std::string& source, const std::string& collector) {
    zmq::context_t ctx;
    auto pull = make_socket(ctx, zmq::socket_type::pull, 0);
    auto push = make_socket(ctx, zmq::socket_type::push, -1);
    pull.connect(source);
    push.connect(collector);
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    const auto pid = static_cast<std::uint32_t>(::getpid());
    msgpack::sbuffer buf;
    std::string out;
    zmq::message_t msg;
    for (;;) {
        if (!pull.recv(msg, zmq::recv_flags::none)) continue;
        const auto handle = msgpack::unpack(static_cast<const char*>(msg.data()), msg.size());
        const auto& task = handle.get();
        const auto payload = bytes_of(field(task, "payload"));
        out.assign(payload).push_back('\n');
        pack_result(buf, uint_of(field(task, "batch")), uint_of(field(task, "id")), out, host, pid);
        push.send(zmq::const_buffer(buf.data(), buf.size()), zmq::send_flags::none);
    }
}

int run_collect(const std::string& bind, std::uint64_t count) {
    zmq::context_t ctx;
    auto pull = make_socket(ctx, zmq::socket_type::pull, 0);
    pull.bind(bind);
    report_bound("collect", pull);
    StdoutBuffer out;
    zmq::message_t msg;
    std::size_t frame_size = 0;
    for (std::uint64_t received = 0; received < count;) {
        if (!pull.recv(msg, zmq::recv_flags::dontwait)) {
            out.flush();  // like the sink: write what arrived before waiting for more
            if (!pull.recv(msg, zmq::recv_flags::none)) continue;
        }
        const auto handle = msgpack::unpack(static_cast<const char*>(msg.data()), msg.size());
        out.append(bytes_of(field(handle.get(), "stdout")));
        frame_size = msg.size();
        ++received;
    }
    out.flush();
    std::cerr << "zmq_limit: collected " << count << " result frames of " << frame_size << " bytes"
              << std::endl;
    return 0;
}

int usage() {
    std::cerr << "usage: zmq_limit collect BIND COUNT | relay SOURCE COLLECTOR | source BIND\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const std::string mode = argc > 1 ? argv[1] : "";
        if (mode == "source" && argc == 3) return run_source(argv[2]);
        if (mode == "relay" && argc == 4) return run_relay(argv[2], argv[3]);
        if (mode == "collect" && argc == 4) return run_collect(argv[2], std::stoull(argv[3]));
        return usage();
    } catch (const std::exception& e) {
        std::cerr << "zmq_limit: error: " << e.what() << std::endl;
        return 1;
    }
}
