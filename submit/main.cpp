// submit: hands tasks to a taskpipe service (ventilator --serve) from the command line, and
// tells what became of them. See README.md, "taskpipe submit".
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "options.hpp"
#include "producer.hpp"
#include "taskpipe/program.hpp"

int main(int argc, char* argv[]) {
    return taskpipe::run_program("submit", [&] {
        auto parsed = taskpipe::parse_submit_options(argc, argv, std::getenv("TASKPIPE_HEAD"));
        if (!parsed.early_output.empty()) {
            std::cout << parsed.early_output;
            return static_cast<int>(taskpipe::kExitOk);
        }
        taskpipe::Producer producer(parsed.options, STDOUT_FILENO);
        return producer.run();
    });
}
