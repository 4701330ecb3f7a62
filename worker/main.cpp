// taskpipe-worker: runs tasks from the ventilator and sends their results to the sink. See
// README.md.
#include <iostream>
#include <variant>

#include "options.hpp"
#include "taskpipe/log.hpp"
#include "taskpipe/program.hpp"
#include "worker.hpp"

int main(int argc, char* argv[]) {
    return taskpipe::run_program("worker", [&] {
        auto parsed = taskpipe::parse_worker_options(argc, argv);
        if (!parsed.early_output.empty()) {
            std::cout << parsed.early_output;
            return static_cast<int>(taskpipe::kExitOk);
        }
        if (const auto* command = std::get_if<taskpipe::CommandHandler>(&parsed.options.handler)) {
            if (auto warning = taskpipe::payload_as_code_warning(*command)) {
                taskpipe::log_warning(*warning);
            }
        }
        taskpipe::Worker worker(parsed.options);
        return worker.run();
    });
}
