#include "taskpipe/open_files.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <string>

#include "taskpipe/log.hpp"

namespace taskpipe {

OpenFileLimit raise_open_file_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return {};
    const auto cap = [](rlim_t value) {
        return value == RLIM_INFINITY ? kMaxOpenFiles
                                      : std::min<std::uint64_t>(value, kMaxOpenFiles);
    };
    OpenFileLimit result;
    result.before = limit.rlim_cur == RLIM_INFINITY ? kMaxOpenFiles : limit.rlim_cur;
    result.hard = limit.rlim_max == RLIM_INFINITY ? kMaxOpenFiles : limit.rlim_max;
    result.now = result.before;
    const std::uint64_t wanted = cap(limit.rlim_max);
    if (wanted > result.before) {
        limit.rlim_cur = static_cast<rlim_t>(wanted);
        if (::setrlimit(RLIMIT_NOFILE, &limit) == 0) result.now = wanted;
    }
    return result;
}

void log_open_file_limit(const OpenFileLimit& limit) {
    if (limit.now > limit.before) {
        log_debug("raised the open-file limit from " + std::to_string(limit.before) + " to " +
                  std::to_string(limit.now));
    }
    if (limit.now != 0 && limit.now < kFewOpenFiles) {
        log_warning("the open-file limit is only " + std::to_string(limit.now) + " (hard limit " +
                    std::to_string(limit.hard) +
                    "); every connection takes one, so a flood of them can shut peers out: "
                    "raise it (ulimit -n, systemd's LimitNOFILE=)");
    }
}

}  // namespace taskpipe
