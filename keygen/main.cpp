// keygen: writes a CURVE key pair for --curve-key and its public key for --curve-allow and
// --curve-server. See docs/security.md.
#include <iostream>

#include "options.hpp"
#include "taskpipe/curve.hpp"
#include "taskpipe/log.hpp"
#include "taskpipe/program.hpp"

int main(int argc, char* argv[]) {
    return taskpipe::run_program("keygen", [&] {
        auto parsed = taskpipe::parse_keygen_options(argc, argv);
        if (!parsed.early_output.empty()) {
            std::cout << parsed.early_output;
            return static_cast<int>(taskpipe::kExitOk);
        }
        if (!taskpipe::curve_available()) {
            throw std::runtime_error("this libzmq was built without CURVE");
        }
        const std::string& name = parsed.options.name;
        taskpipe::write_key_files(name, taskpipe::generate_key_pair());
        taskpipe::log_info("wrote " + name + ".key (keep it secret, mode 0600) and " + name +
                           ".pub (hand it out)");
        return static_cast<int>(taskpipe::kExitOk);
    });
}
