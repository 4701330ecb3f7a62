// libFuzzer harness for the joblog reader (ventilator/joblog_reader.hpp), which reads a file
// that may come from anywhere (a joblog copied between hosts, edited, or planted).
//
// The contract it checks: "Throws std::runtime_error ("NAME:LINE: why") for a malformed line"
// and nothing else, whatever the bytes. The oracle: the reader and the sink's writer
// (sink/joblog.hpp) agree: the tasks read from the input, written again as joblog lines by
// Joblog::joblog_line, read back as the same tasks.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>

#include "joblog.hpp"
#include "joblog_reader.hpp"
#include "taskpipe/joblog_format.hpp"

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail) {
    std::fprintf(stderr, "joblog_fuzzer: %s: %s\n", what, detail.c_str());
    std::abort();
}

taskpipe::RecordedTasks parse(const std::string& text) {
    std::istringstream in(text);
    return taskpipe::parse_joblog(in, "fuzz");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    taskpipe::RecordedTasks tasks;
    try {
        tasks = parse(text);
    } catch (const std::runtime_error& e) {
        if (std::string(e.what()).rfind("fuzz:", 0) != 0)
            fail("an error not naming the file", e.what());
        return 0;
    }

    // One line per task says it all: an ok entry always has an input (only lost ones do not).
    std::string written = taskpipe::joblog::header();
    for (const auto& [id, task] : tasks) {
        if (task.ok && !task.input) fail("an ok task without an input", std::to_string(id));
        taskpipe::Result r;
        r.id = id;
        r.input = task.input;
        r.status = !task.input ? taskpipe::Status::lost
                   : task.ok   ? taskpipe::Status::ok
                               : taskpipe::Status::failed;
        written += taskpipe::Joblog::joblog_line(r);
    }
    taskpipe::RecordedTasks again;
    try {
        again = parse(written);
    } catch (const std::runtime_error& e) {
        fail("the reader refuses what the writer wrote", e.what());
    }
    if (again.size() != tasks.size()) fail("a different number of tasks read back", "");
    for (const auto& [id, task] : tasks) {
        const auto it = again.find(id);
        if (it == again.end()) fail("a task lost in the round trip", std::to_string(id));
        if (it->second.ok != task.ok) fail("ok changed in the round trip", std::to_string(id));
        if (it->second.input != task.input) {
            fail("the input changed in the round trip", std::to_string(id));
        }
    }
    return 0;
}
