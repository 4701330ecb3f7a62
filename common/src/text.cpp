#include "taskpipe/text.hpp"

#include <boost/archive/iterators/base64_from_binary.hpp>
#include <boost/archive/iterators/transform_width.hpp>
#include <nlohmann/json.hpp>

namespace taskpipe {

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

std::string printable(std::string_view bytes, std::size_t limit) {
    std::string text(bytes.substr(0, limit));
    for (char& c : text) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = c == '\t' ? ' ' : '?';
    }
    if (bytes.size() > limit) text += "...";
    return text;
}

std::vector<std::string> stderr_tail(std::string_view err, std::size_t lines,
                                     std::size_t line_bytes) {
    while (!err.empty() && err.back() == '\n') err.remove_suffix(1);
    std::vector<std::string> tail;
    while (!err.empty() && tail.size() < lines) {
        const auto nl = err.rfind('\n');
        const std::string_view line = nl == std::string_view::npos ? err : err.substr(nl + 1);
        tail.insert(tail.begin(), printable(line, line_bytes));
        err.remove_suffix(nl == std::string_view::npos ? err.size() : line.size() + 1);
    }
    return tail;
}

}  // namespace taskpipe
