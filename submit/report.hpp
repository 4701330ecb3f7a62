// What `taskpipe submit` prints for each task of the command, what it logs about it, and what
// it means for the exit status. Pure functions of a complete Tracker::Task.
#pragma once

#include <string>
#include <vector>

#include "taskpipe/log.hpp"
#include "tracker.hpp"

namespace taskpipe {

enum class Printing {
    ids,     // submit: the id of each task accepted, one per line
    output,  // submit --wait: each task's stdout, byte for byte
    states,  // --status, --cancel: each task's state, one per line
};

// The bytes to write on stdout for `task`. Every task has its line with `ids` and `states`,
// empty when there is nothing to show (refused, gave up), so that line N is task N.
std::string plain_text(const Tracker::Task& task, Printing printing);

// One line of JSON (with its newline): the head's answer for `ids`, everything the head told of
// the task otherwise. Bytes that are not UTF-8 appear with U+FFFD and again, exact, in
// FIELD_base64.
std::string json_line(const Tracker::Task& task, Printing printing);

struct Diagnostic {
    LogLevel level;
    std::string text;
};
// The log lines about `task`: a refusal, why it gave up, a waited task that did not succeed
// (with the last lines of its stderr).
std::vector<Diagnostic> diagnostics(const Tracker::Task& task, bool waited);

// The exit status `task` asks for (0, 1 or 4, see README); the command exits with the highest.
int exit_status(const Tracker::Task& task, bool waited);

}  // namespace taskpipe
