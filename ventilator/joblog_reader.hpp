// Reads a joblog written by the sink (--joblog) for `ventilator --resume` and --resume-failed:
// what an earlier run recorded for each task id.
//
// The header line may appear anywhere (several files concatenated) and is skipped. The same id
// may be recorded several times (runs appending to one file): it counts as ok if any entry is
// ok. A last line without its newline (a write cut short by a power cut) is ignored: its task
// simply runs again. Any other line that is not a well-formed entry is an error naming its
// line number.
#pragma once

#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <unordered_map>

namespace taskpipe {

struct RecordedTask {
    bool ok = false;  // some entry for the id has status ok
    // The task's input as an entry recorded it, unescaped; nullopt when only lost entries (whose
    // input the sink never saw) recorded the id.
    std::optional<std::string> input;
};

using RecordedTasks = std::unordered_map<std::uint64_t, RecordedTask>;

// Parses a joblog from `in`; `name` (the file's path) starts error messages. Throws
// std::runtime_error ("NAME:LINE: why") for a malformed line.
RecordedTasks parse_joblog(std::istream& in, const std::string& name);

// Reads the joblog at `path`. Throws StartupError when the file cannot be read or is malformed.
RecordedTasks read_joblog(const std::string& path);

}  // namespace taskpipe
