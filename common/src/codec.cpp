#include "taskpipe/codec.hpp"

#include <array>
#include <cstdint>
#include <limits>
#include <new>
#include <tuple>
#include <type_traits>
#include <utility>

#include "msgpack_reader.hpp"

namespace taskpipe {

std::optional<Status> status_from_string(std::string_view text) {
    for (Status s : kAllStatuses) {
        if (text == to_string(s)) return s;
    }
    return std::nullopt;
}

namespace {

using msgpack_reader::MapIndex;
using msgpack_reader::Value;

// The limits that msgpack_reader::validate applies before any field is looked at. They bound
// what a hostile frame can make the decoder allocate: no container longer than a message can
// legally hold, no nesting deeper than the deepest message (map > array > array), no ext types.
static_assert(msgpack_reader::kMaxArray == kMaxIdsPerMessage + 16);

struct Malformed {
    std::string reason;
};

[[noreturn]] void malformed(std::string reason) { throw Malformed{std::move(reason)}; }

[[noreturn]] void wrong_type(std::string_view key, const char* what) {
    malformed("field '" + std::string(key) + "' is not " + what);
}

// The message's default-constructed value: a field left out of a frame keeps it.
template <typename M>
const M kDefault{};

// --- Decoding: one value of each kind -----------------------------------------------------

std::string_view as_text(const Value& o, std::string_view key) {
    if (o.type == Value::Type::str) return o.bytes;
    wrong_type(key, "a string");
}

// Byte fields accept bin (what taskpipe sends) and str (what some clients find easier).
std::string_view as_bytes(const Value& o, std::string_view key) {
    if (o.type == Value::Type::bin || o.type == Value::Type::str) return o.bytes;
    wrong_type(key, "bytes");
}

template <typename T>
T as_uint(const Value& o, std::string_view key) {
    if (o.type != Value::Type::positive || o.u64 > std::numeric_limits<T>::max()) {
        wrong_type(key, "an unsigned integer in range");
    }
    return static_cast<T>(o.u64);
}

// The elements of an array, read one by one.
class Elements {
  public:
    Elements(const Value& o, std::string_view key) : next_(o.items), left_(o.size) {
        if (o.type != Value::Type::array) wrong_type(key, "an array");
    }
    std::uint32_t size() const { return left_; }
    bool more() const { return left_ > 0; }
    Value next() {
        --left_;
        return msgpack_reader::read(next_);
    }

  private:
    const char* next_;
    std::uint32_t left_;
};

void read(const Value& o, std::string_view key, Wire, std::uint64_t& out) {
    out = as_uint<std::uint64_t>(o, key);
}

void read(const Value& o, std::string_view key, Wire, std::uint32_t& out) {
    out = as_uint<std::uint32_t>(o, key);
}

void read(const Value& o, std::string_view key, Wire, bool& out) {
    if (o.type != Value::Type::boolean) wrong_type(key, "a boolean");
    out = o.boolean;
}

void read(const Value& o, std::string_view key, Wire, std::optional<std::int32_t>& out) {
    if (o.type == Value::Type::nil) {
        out.reset();
    } else if (o.type == Value::Type::positive && o.u64 <= INT32_MAX) {
        out = static_cast<std::int32_t>(o.u64);
    } else if (o.type == Value::Type::negative && o.i64 >= INT32_MIN) {
        out = static_cast<std::int32_t>(o.i64);
    } else {
        wrong_type(key, "a 32-bit integer or nil");
    }
}

void read(const Value& o, std::string_view key, Wire wire, std::string& out) {
    out = wire == Wire::text ? as_text(o, key) : as_bytes(o, key);
}

void read(const Value& o, std::string_view key, Wire wire, std::optional<std::string>& out) {
    out = wire == Wire::text ? as_text(o, key) : as_bytes(o, key);
}

void read(const Value& o, std::string_view key, Wire, Status& out) {
    const std::optional<Status> status = status_from_string(as_text(o, key));
    if (!status) malformed("field '" + std::string(key) + "' is not a known status");
    out = *status;
}

void read(const Value& o, std::string_view key, Wire, std::vector<std::uint64_t>& out) {
    Elements ids(o, key);
    out.clear();
    out.reserve(ids.size());
    while (ids.more()) out.push_back(as_uint<std::uint64_t>(ids.next(), key));
}

void read(const Value& o, std::string_view key, Wire, std::vector<TaskRef>& out) {
    Elements refs(o, key);
    out.clear();
    out.reserve(refs.size());
    while (refs.more()) {
        const Value pair = refs.next();
        if (pair.type != Value::Type::array || pair.size != 2) {
            wrong_type(key, "an array of [batch, id] pairs");
        }
        Elements both(pair, key);
        const auto batch = as_uint<std::uint64_t>(both.next(), key);
        out.push_back({batch, as_uint<std::uint64_t>(both.next(), key)});
    }
}

// A map inside a frame (an element of a group), read entry by entry in place.
struct InlineMap {
    const char* first;  // its first key
    std::uint32_t size;
};

template <typename M, typename Map>
M decode_fields(const Map& map);

// The messages of a `tasks` or `results` frame: each element a map of M's fields. An element
// that is not such a map is left out and counted, and the others are kept: the sender learns of
// the loss as of any lost message (the ventilator re-sends the task after its liveness timeout).
template <typename M>
void read(const Value& o, std::string_view key, Wire, Grouped<M>& out) {
    Elements elements(o, key);
    if (elements.size() > kMaxGroupItems) {
        malformed("field '" + std::string(key) + "' holds more than " +
                  std::to_string(kMaxGroupItems) + " messages");
    }
    out.items.clear();
    out.items.reserve(elements.size());
    out.refusals.clear();
    auto refuse = [&](std::string why) { out.refusals.push_back(std::move(why)); };
    while (elements.more()) {
        const Value element = elements.next();
        if (element.type != Value::Type::map) {
            refuse("an element of '" + std::string(key) + "' is not a map");
            continue;
        }
        try {
            out.items.push_back(decode_fields<M>(InlineMap{element.items, element.size}));
        } catch (const Malformed& e) {
            refuse("an element of '" + std::string(key) + "': " + e.reason);
        }
    }
}

// A list that may be absent: present, even empty, once the field is there.
template <typename T>
void read(const Value& o, std::string_view key, Wire wire, std::optional<std::vector<T>>& out) {
    read(o, key, wire, out.emplace());
}

// --- Decoding: a message from its schema --------------------------------------------------

template <typename M>
constexpr std::size_t kFieldCount = std::tuple_size_v<std::decay_t<decltype(M::fields)>>;

// Calls visit(key, where its value starts) for every string-keyed entry of a map; other keys
// are ignored, like any unknown field.
template <typename Visit>
void for_each_field(const MapIndex& map, Visit&& visit) {
    for (std::uint32_t i = 0; i < map.size; ++i) {
        const Value key = msgpack_reader::peek(map.at[2 * i]);
        if (key.type == Value::Type::str) visit(key.bytes, map.at[2 * i + 1]);
    }
}

template <typename Visit>
void for_each_field(const InlineMap& map, Visit&& visit) {
    const char* at = map.first;
    for (std::uint32_t i = 0; i < map.size; ++i) {
        const Value key = msgpack_reader::read(at);
        const char* value = at;
        at = msgpack_reader::skip(at);
        if (key.type == Value::Type::str) visit(key.bytes, value);
    }
}

template <typename M>
bool is_excluded(std::string_view key) {
    if constexpr (requires { M::excluded; }) {
        for (std::string_view name : M::excluded) {
            if (key == name) return true;
        }
    }
    return false;
}

// Whether the map holds a key that rules out M (its `excluded`).
template <typename M>
bool excludes(const MapIndex& map) {
    bool found = false;
    if constexpr (requires { M::excluded; }) {
        for_each_field(
            map, [&](std::string_view key, const char*) { found = found || is_excluded<M>(key); });
    }
    return found;
}

template <typename M>
constexpr auto kKeyList = std::apply(
    [](const auto&... f) { return std::array<std::string_view, sizeof...(f)>{f.key...}; },
    M::fields);

// The index of M's field `key`, or kFieldCount<M>. Fields usually come in the schema's order
// (taskpipe sends them so): the one after the last found is tried first.
template <typename M>
std::size_t find_field(std::string_view key, std::size_t expected) {
    constexpr auto& keys = kKeyList<M>;
    if (expected < keys.size() && keys[expected] == key) return expected;
    for (std::size_t i = 0; i < keys.size(); ++i) {
        if (keys[i] == key) return i;
    }
    return keys.size();
}

// Reads the value at `value` into field `index` of m.
template <typename M, std::size_t... I>
void read_field(M& m, std::size_t index, const char* value, std::index_sequence<I...>) {
    auto read_one = [&](const auto& f) {
        read(msgpack_reader::peek(value), f.key, f.wire, m.*f.member);
    };
    (void)((index == I && (read_one(std::get<I>(M::fields)), true)) || ...);
}

template <typename M, std::size_t... I>
void check_required(std::uint64_t seen, std::index_sequence<I...>) {
    auto check_one = [&](const auto& f, std::uint64_t bit) {
        if (f.presence == Presence::required && (seen & bit) == 0) {
            malformed("missing field '" + std::string(f.key) + "'");
        }
    };
    (check_one(std::get<I>(M::fields), std::uint64_t{1} << I), ...);
}

template <typename M, typename Map>
M decode_fields(const Map& map) {
    static_assert(kFieldCount<M> <= 64);
    constexpr auto indices = std::make_index_sequence<kFieldCount<M>>();
    M m;
    std::uint64_t seen = 0;
    std::size_t expected = 0;
    for_each_field(map, [&](std::string_view key, const char* value) {
        const std::size_t index = find_field<M>(key, expected);
        if (index < kFieldCount<M>) {
            read_field(m, index, value, indices);
            seen |= std::uint64_t{1} << index;
            expected = index + 1;
            return;
        }
        if (is_excluded<M>(key)) {
            malformed("field '" + std::string(key) + "' is not part of this form of '" +
                      std::string(M::type) + "'");
        }
    });
    check_required<M>(seen, indices);
    if constexpr (requires { M::refusal(m); }) {
        if (const char* why = M::refusal(m)) malformed(why);
    }
    return m;
}

// The message of this type: the first form whose excluded keys the map does not hold, or if
// every form is ruled out, the first form (to report why).
template <typename... Ms>
Message decode_body(std::variant<Ms...>*, std::string_view type, const MapIndex& map) {
    std::optional<Message> message;
    auto try_form = [&]<typename M>(M*, bool check_excluded) {
        if (message || M::type != type || (check_excluded && excludes<M>(map))) return;
        message.emplace(std::in_place_type<M>, decode_fields<M>(map));
    };
    (try_form(static_cast<Ms*>(nullptr), true), ...);
    (try_form(static_cast<Ms*>(nullptr), false), ...);
    if (message) return std::move(*message);
    if (type.empty()) malformed("missing field 'type'");
    malformed("unknown message type '" + std::string(type.substr(0, 40)) + "'");
}

Message decode_map(const MapIndex& map) {
    std::optional<std::uint64_t> version;
    std::string_view type;
    for_each_field(map, [&](std::string_view k, const char* v) {
        if (k == "v")
            version = as_uint<std::uint64_t>(msgpack_reader::peek(v), "v");
        else if (k == "type")
            type = as_text(msgpack_reader::peek(v), "type");
    });
    if (!version) malformed("missing field 'v'");
    if (*version != kProtocolVersion) {
        malformed("unsupported protocol version " + std::to_string(*version));
    }
    return decode_body(static_cast<Message*>(nullptr), type, map);
}

}  // namespace

DecodeResult decode(std::span<const std::byte> frame) {
    return decode(std::string_view(reinterpret_cast<const char*>(frame.data()), frame.size()));
}

DecodeResult decode(std::string_view frame) {
    using msgpack_reader::Refusal;
    MapIndex index;
    try {
        const msgpack_reader::Validation valid = msgpack_reader::validate(frame, index);
        switch (valid.refusal) {
            case Refusal::none:
                break;
            case Refusal::truncated:
                return {std::nullopt, "truncated msgpack"};
            case Refusal::too_deep:
                return {std::nullopt, "msgpack nested too deeply"};
            case Refusal::too_large:
                return {std::nullopt, "msgpack container or string over the size limit"};
            case Refusal::parse_error:
                return {std::nullopt, "invalid msgpack: parse error"};
        }
        if (valid.end != frame.size()) return {std::nullopt, "trailing bytes after the message"};
        if (msgpack_reader::peek(frame.data()).type != Value::Type::map) {
            return {std::nullopt, "message is not a map"};
        }
        return {decode_map(index), {}};
    } catch (const Malformed& e) {
        return {std::nullopt, e.reason};
    } catch (const std::bad_alloc&) {
        return {std::nullopt, "message too large to decode"};
    } catch (const std::length_error&) {
        return {std::nullopt, "message too large to decode"};
    }
}

namespace {

// --- Encoding -----------------------------------------------------------------------------

using Packer = msgpack::packer<msgpack::sbuffer>;

// Bytes known at compile time (keys, the envelope), written with one call each.
struct Packed {
    std::array<char, 48> bytes{};
    std::size_t size = 0;

    // A positive fixint.
    constexpr Packed fixint(std::uint64_t value) const {
        if (value > 0x7f || size == bytes.size()) throw "not a positive fixint";
        Packed out = *this;
        out.bytes[out.size++] = static_cast<char>(value);
        return out;
    }
    // A fixstr: every key and type of the protocol is shorter than 32 bytes.
    constexpr Packed str(std::string_view text) const {
        if (text.size() >= 32 || size + 1 + text.size() > bytes.size()) throw "not a short str";
        Packed out = *this;
        out.bytes[out.size++] = static_cast<char>(0xa0 | text.size());
        for (char c : text) out.bytes[out.size++] = c;
        return out;
    }
};

void put(Packer& p, const Packed& packed) {
    p.pack_str_body(packed.bytes.data(), static_cast<std::uint32_t>(packed.size));
}

template <typename M>
constexpr Packed kEnvelope = Packed{}.str("v").fixint(kProtocolVersion).str("type").str(M::type);

template <typename M>
constexpr auto kKeys =
    std::apply([](const auto&... f) { return std::array{Packed{}.str(f.key)...}; }, M::fields);

constexpr auto kStatusNames = [] {
    std::array<Packed, kAllStatuses.size()> names{};
    for (Status s : kAllStatuses) names[static_cast<std::size_t>(s)] = Packed{}.str(to_string(s));
    return names;
}();

void pack_str(Packer& p, std::string_view text) {
    p.pack_str(static_cast<std::uint32_t>(text.size()));
    p.pack_str_body(text.data(), static_cast<std::uint32_t>(text.size()));
}

void pack_bin(Packer& p, std::string_view bytes) {
    p.pack_bin(static_cast<std::uint32_t>(bytes.size()));
    p.pack_bin_body(bytes.data(), static_cast<std::uint32_t>(bytes.size()));
}

void write(Packer& p, Wire, std::uint64_t value) { p.pack(value); }
void write(Packer& p, Wire, std::uint32_t value) { p.pack(value); }
void write(Packer& p, Wire, bool value) { p.pack(value); }
void write(Packer& p, Wire, Status value) { put(p, kStatusNames[static_cast<std::size_t>(value)]); }
void write(Packer& p, Wire wire, const std::optional<std::string>& value) {
    if (wire == Wire::text)
        pack_str(p, *value);
    else
        pack_bin(p, *value);
}

void write(Packer& p, Wire, const std::optional<std::int32_t>& value) {
    if (value)
        p.pack(*value);
    else
        p.pack_nil();
}

void write(Packer& p, Wire wire, const std::string& value) {
    if (wire == Wire::text)
        pack_str(p, value);
    else
        pack_bin(p, value);
}

void write(Packer& p, Wire, const std::vector<std::uint64_t>& ids) {
    p.pack_array(static_cast<std::uint32_t>(ids.size()));
    for (std::uint64_t id : ids) p.pack(id);
}

void write(Packer& p, Wire, const std::vector<TaskRef>& refs) {
    p.pack_array(static_cast<std::uint32_t>(refs.size()));
    for (const TaskRef& ref : refs) {
        p.pack_array(2);
        p.pack(ref.batch);
        p.pack(ref.id);
    }
}

template <typename T>
void write(Packer& p, Wire wire, const std::optional<std::vector<T>>& list) {
    write(p, wire, *list);
}

template <typename M>
void pack_fields(Packer& p, const M& m);

template <typename M>
void write(Packer& p, Wire, const Grouped<M>& group) {
    p.pack_array(static_cast<std::uint32_t>(group.items.size()));
    for (const M& m : group.items) pack_fields(p, m);
}

template <typename M, typename F>
bool is_sent(const M& m, const F& f) {
    return f.presence != Presence::sent_if_set || !(m.*f.member == kDefault<M>.*f.member);
}

// M's map; with the envelope (v, type) when `envelope`, without it as an element of a group.
template <typename M, std::size_t... I>
void pack_message(Packer& p, const M& m, bool envelope, std::index_sequence<I...>) {
    constexpr auto& fields = M::fields;
    p.pack_map(static_cast<std::uint32_t>((envelope ? 2 : 0) +
                                          (std::size_t{is_sent(m, std::get<I>(fields))} + ...)));
    if (envelope) put(p, kEnvelope<M>);
    auto pack_one = [&](const auto& field, const Packed& key) {
        if (!is_sent(m, field)) return;
        put(p, key);
        write(p, field.wire, m.*field.member);
    };
    (pack_one(std::get<I>(fields), kKeys<M>[I]), ...);
}

template <typename M>
void pack_fields(Packer& p, const M& m) {
    pack_message(p, m, /*envelope=*/false, std::make_index_sequence<kFieldCount<M>>());
}

}  // namespace

std::string_view Encoder::encode(MessageRef message) {
    buffer_.clear();
    Packer packer(buffer_);
    message.visit([&](const auto& m) {
        using M = std::decay_t<decltype(m)>;
        pack_message(packer, m, /*envelope=*/true, std::make_index_sequence<kFieldCount<M>>());
    });
    return {buffer_.data(), buffer_.size()};
}

}  // namespace taskpipe
