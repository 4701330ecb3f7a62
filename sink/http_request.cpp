#include "http_request.hpp"

namespace taskpipe {

namespace {

// RFC 9110 token characters (method and field names).
bool is_token(std::string_view text) {
    if (text.empty()) return false;
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        const bool ok = (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') ||
                        (u >= 'A' && u <= 'Z') ||
                        std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
        if (!ok) return false;
    }
    return true;
}

// Visible ASCII, the only bytes an origin-form target may hold.
bool is_visible(std::string_view text) {
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f) return false;
    }
    return true;
}

// No control character but horizontal tab (field values).
bool has_no_controls(std::string_view text) {
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
    }
    return true;
}

}  // namespace

HttpRequestReader::State HttpRequestReader::fail(int status) {
    error_status_ = status;
    state_ = State::bad;
    head_.clear();
    return state_;
}

HttpRequestReader::State HttpRequestReader::feed(std::string_view bytes) {
    if (state_ != State::incomplete) return state_;
    const std::size_t room = kMaxHeadBytes - head_.size();
    const bool too_long = bytes.size() > room;
    std::size_t scan = head_.size();
    head_.append(bytes.substr(0, room));
    for (; scan < head_.size(); ++scan) {
        if (head_[scan] != '\n') continue;
        std::string_view line(head_.data() + line_start_, scan - line_start_);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        line_start_ = scan + 1;
        if (take_line(line) != State::incomplete) return state_;
    }
    if (too_long || head_.size() >= kMaxHeadBytes) return fail(431);
    return state_;
}

HttpRequestReader::State HttpRequestReader::take_line(std::string_view line) {
    if (!have_request_line_) {
        // RFC 9112 2.2: a server SHOULD ignore at least one empty line before the request line.
        if (line.empty()) return lines_++ < 2 ? state_ : fail(400);
        ++lines_;
        return take_request_line(line);
    }
    if (line.empty()) {
        head_.clear();
        state_ = State::complete;
        return state_;
    }
    if (++lines_ > kMaxHeaderLines) return fail(431);
    // No obsolete line folding (RFC 9112 5.2), and no space before the colon (5.1).
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon)) ||
        !has_no_controls(line.substr(colon + 1))) {
        return fail(400);
    }
    return state_;
}

HttpRequestReader::State HttpRequestReader::take_request_line(std::string_view line) {
    // method SP request-target SP HTTP-version, single spaces (RFC 9112 3).
    const auto first = line.find(' ');
    const auto last = line.rfind(' ');
    if (first == std::string_view::npos || first == last) return fail(400);
    const std::string_view method = line.substr(0, first);
    const std::string_view target = line.substr(first + 1, last - first - 1);
    const std::string_view version = line.substr(last + 1);
    if (!is_token(method) || target.empty() || !is_visible(target)) return fail(400);
    if (!version.starts_with("HTTP/")) return fail(400);
    if (version != "HTTP/1.0" && version != "HTTP/1.1") return fail(505);
    method_ = method;
    target_ = target;
    have_request_line_ = true;
    return state_;
}

}  // namespace taskpipe
