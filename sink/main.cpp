// sink: writes the results of a batch to stdout and exits when it is complete. See README.md.
#include <iostream>

#include "options.hpp"
#include "sink.hpp"
#include "taskpipe/program.hpp"

int main(int argc, char* argv[]) {
    return taskpipe::run_program("sink", [&] {
        auto parsed = taskpipe::parse_sink_options(argc, argv);
        if (!parsed.early_output.empty()) {
            std::cout << parsed.early_output;
            return static_cast<int>(taskpipe::kExitOk);
        }
        taskpipe::Sink sink(parsed.options);
        return sink.run();
    });
}
