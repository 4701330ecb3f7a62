#include "output.hpp"

#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <system_error>

#include "stats.hpp"
#include "taskpipe/text.hpp"

namespace taskpipe {

namespace {

constexpr std::size_t kFlushThreshold = 256 * 1024;

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

class TaggedWriter : public ResultWriter {
  public:
    explicit TaggedWriter(int fd) : ResultWriter(fd) {}
    void write(const Result& result) override {
        const std::string_view tag = result.input ? std::string_view(*result.input) : "";
        std::string_view rest = result.out;
        while (!rest.empty()) {
            const auto end = rest.find('\n');
            const std::string_view line = rest.substr(0, end);
            append(tag);
            append("\t");
            append(line);
            append("\n");  // a last line without one gets one, as with parallel --tag
            rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
        }
    }
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

std::string result_to_json(const Result& r, JsonBytes bytes) {
    nlohmann::json j;
    j["id"] = r.id;
    j["status"] = to_string(r.status);
    j["exit_code"] = r.exit_code ? nlohmann::json(*r.exit_code) : nlohmann::json(nullptr);
    j["signal"] = r.signal ? nlohmann::json(*r.signal) : nlohmann::json(nullptr);
    if (bytes == JsonBytes::included) {
        put_bytes(j, "stdout", r.out);
        put_bytes(j, "stderr", r.err);
    }
    if (r.out_truncated) j["stdout_truncated"] = true;
    j["worker"] =
        r.host.empty() ? nlohmann::json(nullptr) : nlohmann::json(worker_name(r.host, r.pid));
    j["attempt"] = r.attempt;
    j["duration_s"] = static_cast<double>(r.duration_us) / 1e6;
    if (r.input && bytes == JsonBytes::included) put_bytes(j, "input", *r.input);
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

std::unique_ptr<ResultWriter> ResultWriter::make(Format format, int fd) {
    switch (format) {
        case Format::jsonl:
            return std::make_unique<JsonLinesWriter>(fd);
        case Format::tagged:
            return std::make_unique<TaggedWriter>(fd);
        case Format::raw:
            break;
    }
    return std::make_unique<RawWriter>(fd);
}

}  // namespace taskpipe
