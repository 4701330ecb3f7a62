#include "output.hpp"

#include <unistd.h>

#include <boost/archive/iterators/base64_from_binary.hpp>
#include <boost/archive/iterators/transform_width.hpp>
#include <cerrno>
#include <nlohmann/json.hpp>
#include <system_error>

namespace taskpipe {

namespace {

constexpr std::size_t kFlushThreshold = 256 * 1024;

std::string base64(std::string_view bytes) {
    using namespace boost::archive::iterators;
    using Encode = base64_from_binary<transform_width<std::string_view::const_iterator, 6, 8>>;
    std::string out(Encode(bytes.begin()), Encode(bytes.end()));
    out.append((3 - bytes.size() % 3) % 3, '=');
    return out;
}

bool is_utf8(std::string_view bytes) {
    try {
        (void)nlohmann::json(bytes).dump();
        return true;
    } catch (const nlohmann::json::type_error&) {
        return false;
    }
}

// Text fields are JSON strings. Bytes that are not valid UTF-8 appear there with U+FFFD in
// place of each invalid sequence, and the exact bytes are added as FIELD_base64.
void put_bytes(nlohmann::json& object, const char* field, std::string_view bytes) {
    object[field] = bytes;
    if (!is_utf8(bytes)) object[std::string(field) + "_base64"] = base64(bytes);
}

class RawWriter : public ResultWriter {
  public:
    explicit RawWriter(int fd) : ResultWriter(fd) {}
    void write(const Result& result) override { append(result.out); }
};

class JsonLinesWriter : public ResultWriter {
  public:
    explicit JsonLinesWriter(int fd) : ResultWriter(fd) {}
    void write(const Result& result) override {
        append(result_to_json(result));
        append("\n");
    }
};

}  // namespace

std::string result_to_json(const Result& r) {
    nlohmann::json j;
    j["id"] = r.id;
    j["status"] = to_string(r.status);
    j["exit_code"] = r.exit_code ? nlohmann::json(*r.exit_code) : nlohmann::json(nullptr);
    j["signal"] = r.signal ? nlohmann::json(*r.signal) : nlohmann::json(nullptr);
    put_bytes(j, "stdout", r.out);
    put_bytes(j, "stderr", r.err);
    if (r.out_truncated) j["stdout_truncated"] = true;
    j["worker"] = r.host.empty() ? nlohmann::json(nullptr)
                                 : nlohmann::json(r.host + ":" + std::to_string(r.pid));
    j["attempt"] = r.attempt;
    j["duration_s"] = static_cast<double>(r.duration_us) / 1e6;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void ResultWriter::append(std::string_view bytes) {
    buffer_.append(bytes);
    if (buffer_.size() >= kFlushThreshold) flush();
}

void ResultWriter::flush() {
    std::string_view rest = buffer_;
    while (!rest.empty()) {
        const ssize_t n = ::write(fd_, rest.data(), rest.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            buffer_.clear();
            throw std::system_error(errno, std::generic_category(), "cannot write results");
        }
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    buffer_.clear();
}

std::unique_ptr<ResultWriter> ResultWriter::make(bool jsonl, int fd) {
    if (jsonl) return std::make_unique<JsonLinesWriter>(fd);
    return std::make_unique<RawWriter>(fd);
}

}  // namespace taskpipe
