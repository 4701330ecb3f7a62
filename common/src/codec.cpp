#include "taskpipe/codec.hpp"

#include <array>
#include <limits>
#include <new>
#include <type_traits>

namespace taskpipe {

const char* to_string(Status status) {
    switch (status) {
        case Status::ok:
            return "ok";
        case Status::failed:
            return "failed";
        case Status::error:
            return "error";
        case Status::timeout:
            return "timeout";
        case Status::lost:
            return "lost";
    }
    return "error";
}

std::optional<Status> status_from_string(std::string_view text) {
    for (auto s : {Status::ok, Status::failed, Status::error, Status::timeout, Status::lost}) {
        if (text == to_string(s)) return s;
    }
    return std::nullopt;
}

namespace {

// Limits applied while unpacking, before any field is looked at. They bound what a hostile
// frame can make the decoder allocate: no container longer than a message can legally hold,
// no nesting deeper than the deepest message (map > array > array), no ext types at all.
const msgpack::unpack_limit kLimits(/*array=*/kMaxIdsPerMessage + 16, /*map=*/64,
                                    /*str=*/64u << 20, /*bin=*/64u << 20, /*ext=*/0,
                                    /*depth=*/4);

struct Malformed {
    std::string reason;
};

[[noreturn]] void malformed(std::string reason) { throw Malformed{std::move(reason)}; }

std::string_view as_text(const msgpack::object& o, const char* field) {
    if (o.type == msgpack::type::STR) return {o.via.str.ptr, o.via.str.size};
    malformed(std::string("field '") + field + "' is not a string");
}

// Byte fields accept bin (what taskpipe sends) and str (what some clients find easier).
std::string as_bytes(const msgpack::object& o, const char* field) {
    if (o.type == msgpack::type::BIN) return {o.via.bin.ptr, o.via.bin.size};
    if (o.type == msgpack::type::STR) return {o.via.str.ptr, o.via.str.size};
    malformed(std::string("field '") + field + "' is not bytes");
}

template <typename T>
T as_uint(const msgpack::object& o, const char* field) {
    if (o.type != msgpack::type::POSITIVE_INTEGER || o.via.u64 > std::numeric_limits<T>::max()) {
        malformed(std::string("field '") + field + "' is not an unsigned integer in range");
    }
    return static_cast<T>(o.via.u64);
}

std::int32_t as_int32(const msgpack::object& o, const char* field) {
    if (o.type == msgpack::type::POSITIVE_INTEGER && o.via.u64 <= INT32_MAX) {
        return static_cast<std::int32_t>(o.via.u64);
    }
    if (o.type == msgpack::type::NEGATIVE_INTEGER && o.via.i64 >= INT32_MIN) {
        return static_cast<std::int32_t>(o.via.i64);
    }
    malformed(std::string("field '") + field + "' is not a 32-bit integer");
}

std::optional<std::int32_t> as_optional_int32(const msgpack::object& o, const char* field) {
    if (o.type == msgpack::type::NIL) return std::nullopt;
    return as_int32(o, field);
}

bool as_bool(const msgpack::object& o, const char* field) {
    if (o.type == msgpack::type::BOOLEAN) return o.via.boolean;
    malformed(std::string("field '") + field + "' is not a boolean");
}

std::vector<std::uint64_t> as_id_list(const msgpack::object& o, const char* field) {
    if (o.type != msgpack::type::ARRAY) malformed(std::string("field '") + field + "' not array");
    std::vector<std::uint64_t> ids;
    ids.reserve(o.via.array.size);
    for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
        ids.push_back(as_uint<std::uint64_t>(o.via.array.ptr[i], field));
    }
    return ids;
}

std::vector<TaskRef> as_task_refs(const msgpack::object& o) {
    if (o.type != msgpack::type::ARRAY) malformed("a field of [batch, id] pairs is not an array");
    std::vector<TaskRef> refs;
    refs.reserve(o.via.array.size);
    for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
        const auto& pair = o.via.array.ptr[i];
        if (pair.type != msgpack::type::ARRAY || pair.via.array.size != 2) {
            malformed("field 'tasks' holds something other than [batch, id] pairs");
        }
        refs.push_back({as_uint<std::uint64_t>(pair.via.array.ptr[0], "tasks"),
                        as_uint<std::uint64_t>(pair.via.array.ptr[1], "tasks")});
    }
    return refs;
}

// Calls visit(key, value) for every string-keyed entry of a map; other keys are ignored, like
// any unknown field.
template <typename Visit>
void for_each_field(const msgpack::object& map, Visit&& visit) {
    for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
        const auto& kv = map.via.map.ptr[i];
        if (kv.key.type != msgpack::type::STR) continue;
        visit(std::string_view(kv.key.via.str.ptr, kv.key.via.str.size), kv.val);
    }
}

// Tracks which required fields a message has seen.
class Required {
  public:
    Required(std::initializer_list<std::string_view> names) {
        for (auto name : names) names_[count_++] = name;
    }
    void saw(std::string_view name) {
        for (std::size_t i = 0; i < count_; ++i) {
            if (name == names_[i]) seen_ |= 1u << i;
        }
    }
    void check() const {
        for (std::size_t i = 0; i < count_; ++i) {
            if (!(seen_ & (1u << i))) malformed("missing field '" + std::string(names_[i]) + "'");
        }
    }

  private:
    std::array<std::string_view, 4> names_{};
    std::size_t count_ = 0;
    std::uint32_t seen_ = 0;
};

Message decode_task(const msgpack::object& map) {
    Task t;
    Required req{"batch", "id", "payload"};
    for_each_field(map, [&](std::string_view k, const msgpack::object& v) {
        req.saw(k);
        if (k == "batch")
            t.batch = as_uint<std::uint64_t>(v, "batch");
        else if (k == "id")
            t.id = as_uint<std::uint64_t>(v, "id");
        else if (k == "attempt")
            t.attempt = as_uint<std::uint32_t>(v, "attempt");
        else if (k == "payload")
            t.payload = as_bytes(v, "payload");
        else if (k == "sent_us")
            t.sent_us = as_uint<std::uint64_t>(v, "sent_us");
        else if (k == "echo_input")
            t.echo_input = as_bool(v, "echo_input");
    });
    req.check();
    if (t.id == 0) malformed("task id 0 (ids start at 1)");
    return t;
}

Message decode_result(const msgpack::object& map) {
    Result r;
    Required req{"batch", "id", "status"};
    for_each_field(map, [&](std::string_view k, const msgpack::object& v) {
        req.saw(k);
        if (k == "batch")
            r.batch = as_uint<std::uint64_t>(v, "batch");
        else if (k == "id")
            r.id = as_uint<std::uint64_t>(v, "id");
        else if (k == "attempt")
            r.attempt = as_uint<std::uint32_t>(v, "attempt");
        else if (k == "status") {
            auto s = status_from_string(as_text(v, "status"));
            if (!s || *s == Status::lost) malformed("unknown result status");
            r.status = *s;
        } else if (k == "exit_code")
            r.exit_code = as_optional_int32(v, "exit_code");
        else if (k == "signal")
            r.signal = as_optional_int32(v, "signal");
        else if (k == "stdout")
            r.out = as_bytes(v, "stdout");
        else if (k == "stderr")
            r.err = as_bytes(v, "stderr");
        else if (k == "stdout_truncated")
            r.out_truncated = as_bool(v, "stdout_truncated");
        else if (k == "host")
            r.host = as_text(v, "host");
        else if (k == "pid")
            r.pid = as_uint<std::uint32_t>(v, "pid");
        else if (k == "started_us")
            r.started_us = as_uint<std::uint64_t>(v, "started_us");
        else if (k == "duration_us")
            r.duration_us = as_uint<std::uint64_t>(v, "duration_us");
        else if (k == "input")
            r.input = as_bytes(v, "input");
        else if (k == "sent_us")
            r.sent_us = as_uint<std::uint64_t>(v, "sent_us");
    });
    req.check();
    if (r.id == 0) malformed("result id 0 (ids start at 1)");
    return r;
}

Message decode_heartbeat(const msgpack::object& map) {
    Heartbeat h;
    Required req{"host", "pid"};
    for_each_field(map, [&](std::string_view k, const msgpack::object& v) {
        req.saw(k);
        if (k == "host")
            h.host = as_text(v, "host");
        else if (k == "pid")
            h.pid = as_uint<std::uint32_t>(v, "pid");
        else if (k == "concurrency")
            h.concurrency = as_uint<std::uint32_t>(v, "concurrency");
        else if (k == "capacity")
            h.capacity = as_uint<std::uint32_t>(v, "capacity");
        else if (k == "draining")
            h.draining = as_bool(v, "draining");
        else if (k == "tasks")
            h.tasks = as_task_refs(v);
        else if (k == "running")
            h.running = as_task_refs(v);
    });
    req.check();
    return h;
}

// Hello, Welcome, Bye: a batch and nothing else required.
template <typename T>
Message decode_batch_only(const msgpack::object& map) {
    T m;
    Required req{"batch"};
    for_each_field(map, [&](std::string_view k, const msgpack::object& v) {
        req.saw(k);
        if (k == "batch") m.batch = as_uint<std::uint64_t>(v, "batch");
        if constexpr (std::is_same_v<T, Welcome> || std::is_same_v<T, Hello>) {
            if (k == "sink") m.sink = as_uint<std::uint64_t>(v, "sink");
        }
        if constexpr (std::is_same_v<T, Welcome>) {
            if (k == "capacity") m.capacity = as_uint<std::uint64_t>(v, "capacity");
            if (k == "reorder_window") {
                m.reorder_window = as_uint<std::uint64_t>(v, "reorder_window");
            }
            if (k == "echo_input") m.echo_input = as_bool(v, "echo_input");
        }
        if constexpr (std::is_same_v<T, Reject>) {
            if (k == "reason") m.reason = as_text(v, "reason");
        }
    });
    req.check();
    return m;
}

Message decode_end(const msgpack::object& map) {
    End e;
    Required req{"batch", "total"};
    for_each_field(map, [&](std::string_view k, const msgpack::object& v) {
        req.saw(k);
        if (k == "batch")
            e.batch = as_uint<std::uint64_t>(v, "batch");
        else if (k == "total")
            e.total = as_uint<std::uint64_t>(v, "total");
    });
    req.check();
    return e;
}

Message decode_lost(const msgpack::object& map) {
    Lost l;
    Required req{"batch", "id"};
    for_each_field(map, [&](std::string_view k, const msgpack::object& v) {
        req.saw(k);
        if (k == "batch")
            l.batch = as_uint<std::uint64_t>(v, "batch");
        else if (k == "id")
            l.id = as_uint<std::uint64_t>(v, "id");
        else if (k == "attempts")
            l.attempts = as_uint<std::uint32_t>(v, "attempts");
    });
    req.check();
    return l;
}

Message decode_skip(const msgpack::object& map) {
    Skip s;
    Required req{"batch", "ids"};
    for_each_field(map, [&](std::string_view k, const msgpack::object& v) {
        req.saw(k);
        if (k == "batch")
            s.batch = as_uint<std::uint64_t>(v, "batch");
        else if (k == "ids")
            s.ids = as_id_list(v, "ids");
        else if (k == "failed")
            s.failed = as_id_list(v, "failed");
    });
    req.check();
    return s;
}

Message decode_progress(const msgpack::object& map) {
    Progress m;
    Required req{"batch"};
    for_each_field(map, [&](std::string_view k, const msgpack::object& v) {
        req.saw(k);
        if (k == "batch")
            m.batch = as_uint<std::uint64_t>(v, "batch");
        else if (k == "read")
            m.read = as_uint<std::uint64_t>(v, "read");
        else if (k == "in_flight")
            m.in_flight = as_uint<std::uint64_t>(v, "in_flight");
        else if (k == "resent")
            m.resent = as_uint<std::uint64_t>(v, "resent");
        else if (k == "expected")
            m.expected = as_uint<std::uint64_t>(v, "expected");
    });
    req.check();
    return m;
}

Message decode_ack(const msgpack::object& map) {
    Ack a;
    Required req{"batch", "ids"};
    for_each_field(map, [&](std::string_view k, const msgpack::object& v) {
        req.saw(k);
        if (k == "batch")
            a.batch = as_uint<std::uint64_t>(v, "batch");
        else if (k == "ids")
            a.ids = as_id_list(v, "ids");
        else if (k == "failed")
            a.failed = as_id_list(v, "failed");
    });
    req.check();
    return a;
}

Message decode_alive(const msgpack::object& map) {
    Alive a;
    Required req{"batch", "ids"};
    for_each_field(map, [&](std::string_view k, const msgpack::object& v) {
        req.saw(k);
        if (k == "batch")
            a.batch = as_uint<std::uint64_t>(v, "batch");
        else if (k == "ids")
            a.ids = as_id_list(v, "ids");
        else if (k == "capacity")
            a.capacity = as_uint<std::uint64_t>(v, "capacity");
        else if (k == "sink")
            a.sink = as_uint<std::uint64_t>(v, "sink");
        else if (k == "running")
            a.running = as_id_list(v, "running");
    });
    req.check();
    return a;
}

Message decode_abort(const msgpack::object& map) {
    Abort a;
    Required req{"batch"};
    for_each_field(map, [&](std::string_view k, const msgpack::object& v) {
        req.saw(k);
        if (k == "batch")
            a.batch = as_uint<std::uint64_t>(v, "batch");
        else if (k == "status")
            a.status = as_uint<std::uint32_t>(v, "status");
        else if (k == "reason")
            a.reason = as_text(v, "reason");
    });
    req.check();
    return a;
}

Message decode_handover(const msgpack::object& map) {
    Handover h;
    Required req{"batch", "through"};
    for_each_field(map, [&](std::string_view k, const msgpack::object& v) {
        req.saw(k);
        if (k == "batch")
            h.batch = as_uint<std::uint64_t>(v, "batch");
        else if (k == "through")
            h.through = as_uint<std::uint64_t>(v, "through");
        else if (k == "ids")
            h.ids = as_id_list(v, "ids");
        else if (k == "failed")
            h.failed = as_id_list(v, "failed");
    });
    req.check();
    return h;
}

// Two forms: from a worker, `tasks` alone; from the sink, `batch` (non-zero) and `ids`. A frame
// mixing the two is malformed, so that every accepted Release encodes back to the same form.
Message decode_release(const msgpack::object& map) {
    Release r;
    bool has_tasks = false;
    bool has_batch = false;
    bool has_ids = false;
    for_each_field(map, [&](std::string_view k, const msgpack::object& v) {
        if (k == "batch") {
            r.batch = as_uint<std::uint64_t>(v, "batch");
            has_batch = true;
        } else if (k == "ids") {
            r.ids = as_id_list(v, "ids");
            has_ids = true;
        } else if (k == "tasks") {
            r.tasks = as_task_refs(v);
            has_tasks = true;
        }
    });
    if (has_tasks && (has_batch || has_ids)) malformed("release with both 'tasks' and 'ids'");
    if (has_tasks) return r;
    if (!has_ids) malformed("missing field 'tasks' or 'ids'");
    if (!has_batch || r.batch == 0) malformed("missing field 'batch'");
    return r;
}

Message decode_map(const msgpack::object& map) {
    std::optional<std::uint64_t> version;
    std::string_view type;
    for_each_field(map, [&](std::string_view k, const msgpack::object& v) {
        if (k == "v")
            version = as_uint<std::uint64_t>(v, "v");
        else if (k == "type")
            type = as_text(v, "type");
    });
    if (!version) malformed("missing field 'v'");
    if (*version != kProtocolVersion) {
        malformed("unsupported protocol version " + std::to_string(*version));
    }
    if (type == "task") return decode_task(map);
    if (type == "result") return decode_result(map);
    if (type == "heartbeat") return decode_heartbeat(map);
    if (type == "release") return decode_release(map);
    if (type == "hello") return decode_batch_only<Hello>(map);
    if (type == "welcome") return decode_batch_only<Welcome>(map);
    if (type == "reject") return decode_batch_only<Reject>(map);
    if (type == "end") return decode_end(map);
    if (type == "lost") return decode_lost(map);
    if (type == "skip") return decode_skip(map);
    if (type == "progress") return decode_progress(map);
    if (type == "ack") return decode_ack(map);
    if (type == "alive") return decode_alive(map);
    if (type == "bye") return decode_batch_only<Bye>(map);
    if (type == "abort") return decode_abort(map);
    if (type == "handover") return decode_handover(map);
    if (type.empty()) malformed("missing field 'type'");
    malformed("unknown message type '" + std::string(type.substr(0, 40)) + "'");
}

}  // namespace

DecodeResult decode(std::span<const std::byte> frame) {
    return decode(std::string_view(reinterpret_cast<const char*>(frame.data()), frame.size()));
}

// Strings and bins are read straight from the frame, which outlives the decoded object.
bool refer_to_frame(msgpack::type::object_type, std::size_t, void*) { return true; }

DecodeResult decode(std::string_view frame) {
    // One zone per thread, cleared after every frame: the per-message path does not allocate
    // once the zone's first chunk exists (a large frame's extra chunks are freed at once).
    thread_local msgpack::zone zone;
    struct ClearZone {
        ~ClearZone() { zone.clear(); }
    } clear_zone;
    try {
        std::size_t offset = 0;
        bool referenced = false;
        const msgpack::object root = msgpack::unpack(zone, frame.data(), frame.size(), offset,
                                                     referenced, refer_to_frame, nullptr, kLimits);
        if (offset != frame.size()) return {std::nullopt, "trailing bytes after the message"};
        if (root.type != msgpack::type::MAP) return {std::nullopt, "message is not a map"};
        return {decode_map(root), {}};
    } catch (const Malformed& e) {
        return {std::nullopt, e.reason};
    } catch (const msgpack::insufficient_bytes&) {
        return {std::nullopt, "truncated msgpack"};
    } catch (const msgpack::depth_size_overflow&) {
        return {std::nullopt, "msgpack nested too deeply"};
    } catch (const msgpack::size_overflow&) {
        return {std::nullopt, "msgpack container or string over the size limit"};
    } catch (const msgpack::unpack_error& e) {
        return {std::nullopt, std::string("invalid msgpack: ") + e.what()};
    } catch (const msgpack::type_error&) {
        return {std::nullopt, "msgpack type error"};
    } catch (const std::bad_alloc&) {
        return {std::nullopt, "message too large to decode"};
    } catch (const std::length_error&) {
        return {std::nullopt, "message too large to decode"};
    }
}

namespace {

using Packer = msgpack::packer<msgpack::sbuffer>;

void pack_key(Packer& p, std::string_view key) {
    p.pack_str(static_cast<std::uint32_t>(key.size()));
    p.pack_str_body(key.data(), static_cast<std::uint32_t>(key.size()));
}

void pack_text(Packer& p, std::string_view key, std::string_view value) {
    pack_key(p, key);
    p.pack_str(static_cast<std::uint32_t>(value.size()));
    p.pack_str_body(value.data(), static_cast<std::uint32_t>(value.size()));
}

void pack_bytes(Packer& p, std::string_view key, std::string_view value) {
    pack_key(p, key);
    p.pack_bin(static_cast<std::uint32_t>(value.size()));
    p.pack_bin_body(value.data(), static_cast<std::uint32_t>(value.size()));
}

template <typename T>
void pack_field(Packer& p, std::string_view key, const T& value) {
    pack_key(p, key);
    p.pack(value);
}

void pack_header(Packer& p, std::uint32_t fields, std::string_view type) {
    p.pack_map(fields + 2);
    pack_field(p, "v", kProtocolVersion);
    pack_text(p, "type", type);
}

void pack_optional_int(Packer& p, std::string_view key, const std::optional<std::int32_t>& v) {
    pack_key(p, key);
    if (v)
        p.pack(*v);
    else
        p.pack_nil();
}

struct PackVisitor {
    Packer& p;

    void operator()(const Task& t) {
        pack_header(p, t.echo_input ? 6 : 5, "task");
        pack_field(p, "batch", t.batch);
        pack_field(p, "id", t.id);
        pack_field(p, "attempt", t.attempt);
        pack_bytes(p, "payload", t.payload);
        pack_field(p, "sent_us", t.sent_us);
        if (t.echo_input) pack_field(p, "echo_input", true);
    }
    void operator()(const Result& r) {
        pack_header(p, r.input ? 15 : 14, "result");
        pack_field(p, "batch", r.batch);
        pack_field(p, "id", r.id);
        pack_field(p, "attempt", r.attempt);
        pack_text(p, "status", to_string(r.status));
        pack_optional_int(p, "exit_code", r.exit_code);
        pack_optional_int(p, "signal", r.signal);
        pack_bytes(p, "stdout", r.out);
        pack_bytes(p, "stderr", r.err);
        pack_field(p, "stdout_truncated", r.out_truncated);
        pack_text(p, "host", r.host);
        pack_field(p, "pid", r.pid);
        pack_field(p, "started_us", r.started_us);
        pack_field(p, "duration_us", r.duration_us);
        pack_field(p, "sent_us", r.sent_us);
        if (r.input) pack_bytes(p, "input", *r.input);
    }
    void pack_refs(std::string_view key, const std::vector<TaskRef>& refs) {
        pack_key(p, key);
        p.pack_array(static_cast<std::uint32_t>(refs.size()));
        for (const auto& ref : refs) {
            p.pack_array(2);
            p.pack(ref.batch);
            p.pack(ref.id);
        }
    }
    void operator()(const Heartbeat& h) {
        pack_header(p, h.running ? 7 : 6, "heartbeat");
        pack_text(p, "host", h.host);
        pack_field(p, "pid", h.pid);
        pack_field(p, "concurrency", h.concurrency);
        pack_field(p, "capacity", h.capacity);
        pack_field(p, "draining", h.draining);
        pack_refs("tasks", h.tasks);
        if (h.running) pack_refs("running", *h.running);
    }
    void operator()(const Release& m) {
        if (m.batch != 0) {  // the sink's form
            pack_header(p, 2, "release");
            pack_field(p, "batch", m.batch);
            pack_field(p, "ids", m.ids);
            return;
        }
        pack_header(p, 1, "release");
        pack_refs("tasks", m.tasks);
    }
    void operator()(const Hello& m) {
        pack_header(p, m.sink != 0 ? 2 : 1, "hello");
        pack_field(p, "batch", m.batch);
        if (m.sink != 0) pack_field(p, "sink", m.sink);
    }
    void operator()(const Welcome& m) {
        pack_header(p, 5, "welcome");
        pack_field(p, "sink", m.sink);
        pack_field(p, "batch", m.batch);
        pack_field(p, "capacity", m.capacity);
        pack_field(p, "reorder_window", m.reorder_window);
        pack_field(p, "echo_input", m.echo_input);
    }
    void operator()(const Reject& m) {
        pack_header(p, 2, "reject");
        pack_field(p, "batch", m.batch);
        pack_text(p, "reason", m.reason);
    }
    void operator()(const End& m) {
        pack_header(p, 2, "end");
        pack_field(p, "batch", m.batch);
        pack_field(p, "total", m.total);
    }
    void operator()(const Lost& m) {
        pack_header(p, 3, "lost");
        pack_field(p, "batch", m.batch);
        pack_field(p, "id", m.id);
        pack_field(p, "attempts", m.attempts);
    }
    void operator()(const Skip& m) {
        pack_header(p, 3, "skip");
        pack_field(p, "batch", m.batch);
        pack_field(p, "ids", m.ids);
        pack_field(p, "failed", m.failed);
    }
    void operator()(const Progress& m) {
        pack_header(p, 5, "progress");
        pack_field(p, "batch", m.batch);
        pack_field(p, "read", m.read);
        pack_field(p, "in_flight", m.in_flight);
        pack_field(p, "resent", m.resent);
        pack_field(p, "expected", m.expected);
    }
    void operator()(const Ack& m) {
        pack_header(p, 3, "ack");
        pack_field(p, "batch", m.batch);
        pack_field(p, "ids", m.ids);
        pack_field(p, "failed", m.failed);
    }
    void operator()(const Alive& m) {
        pack_header(p, m.running ? 5 : 4, "alive");
        pack_field(p, "batch", m.batch);
        pack_field(p, "ids", m.ids);
        pack_field(p, "capacity", m.capacity);
        pack_field(p, "sink", m.sink);
        if (m.running) pack_field(p, "running", *m.running);
    }
    void operator()(const Abort& m) {
        pack_header(p, 3, "abort");
        pack_field(p, "batch", m.batch);
        pack_field(p, "status", m.status);
        pack_text(p, "reason", m.reason);
    }
    void operator()(const Handover& m) {
        pack_header(p, 4, "handover");
        pack_field(p, "batch", m.batch);
        pack_field(p, "through", m.through);
        pack_field(p, "ids", m.ids);
        pack_field(p, "failed", m.failed);
    }
    void operator()(const Bye& m) {
        pack_header(p, 1, "bye");
        pack_field(p, "batch", m.batch);
    }
};

}  // namespace

std::string_view Encoder::encode(const Message& message) {
    buffer_.clear();
    Packer packer(buffer_);
    std::visit(PackVisitor{packer}, message);
    return {buffer_.data(), buffer_.size()};
}

}  // namespace taskpipe
