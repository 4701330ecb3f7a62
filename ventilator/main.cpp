// ventilator: reads tasks from stdin and hands them to the workers. See README.md.
#include <iostream>

#include "options.hpp"
#include "service.hpp"
#include "taskpipe/program.hpp"
#include "ventilator.hpp"

int main(int argc, char* argv[]) {
    return taskpipe::run_program("ventilator", [&] {
        auto parsed = taskpipe::parse_ventilator_options(argc, argv);
        if (!parsed.early_output.empty()) {
            std::cout << parsed.early_output;
            return static_cast<int>(taskpipe::kExitOk);
        }
        if (parsed.options.serve) {
            taskpipe::Service service(parsed.options);
            return service.run();
        }
        taskpipe::Ventilator ventilator(parsed.options);
        return ventilator.run();
    });
}
