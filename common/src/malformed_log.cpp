#include "taskpipe/malformed_log.hpp"

#include <string>

#include "taskpipe/log.hpp"

namespace taskpipe {

namespace {

constexpr std::uint64_t kLoggedOneByOne = 10;

}  // namespace

void MalformedLog::count(std::string_view what) {
    if (++total_ <= kLoggedOneByOne) {
        log_warning(what);
    } else if (total_ == kLoggedOneByOne + 1) {
        log_warning("further " + std::string(what_) + " are counted, not logged");
    }
}

}  // namespace taskpipe
