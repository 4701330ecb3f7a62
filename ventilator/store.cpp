#include "store.hpp"

#include <cassert>
#include <random>

namespace taskpipe {

const char* state_name(const StoredTask& task, std::uint64_t now_us) {
    switch (task.state) {
        case TaskState::queued:
            return task.not_before_us > now_us ? "delayed" : "queued";
        case TaskState::running:
            return "running";
        case TaskState::finished:
            assert(task.result);
            return to_string(task.result->status);
        case TaskState::cancelled:
            return "cancelled";
    }
    return "unknown";
}

std::uint64_t new_batch_id() {
    std::random_device device;
    std::uint64_t id = 0;
    while (id == 0) id = (std::uint64_t{device()} << 32) ^ device();
    return id;
}

}  // namespace taskpipe
