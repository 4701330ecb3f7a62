#include "taskpipe/program.hpp"

#include <sstream>

#include <zmq.hpp>

#include "taskpipe/log.hpp"
#include "taskpipe/open_files.hpp"
#include "taskpipe/sockets.hpp"

namespace po = boost::program_options;

namespace taskpipe {

std::string parse_command_line(int argc, const char* const argv[],
                               const po::options_description& options,
                               const po::positional_options_description& positional,
                               po::variables_map& values, const std::string& usage_line) {
    std::string level = "info";
    po::options_description generic("Generic options");
    auto add = generic.add_options();
    add("log-level", po::value(&level)->default_value(level),
        "least important messages logged on stderr: error, warning, info or debug");
    add("help,h", "print this help and exit");
    add("version,V", "print the version and exit");
    po::options_description all;
    all.add(options).add(generic);
    try {
        po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(),
                  values);
        if (values.count("help")) {
            std::ostringstream text;
            text << "Usage: " << usage_line << "\n\n" << all;
            return text.str();
        }
        if (values.count("version")) {
            return "taskpipe-" + program_name() + " (taskpipe) " TASKPIPE_VERSION "\n";
        }
        po::notify(values);
    } catch (const po::error& e) {
        throw UsageError(e.what());
    }
    const auto parsed_level = log_level_from_string(level);
    if (!parsed_level) {
        throw UsageError("--log-level must be error, warning, info or debug, not '" + level + "'");
    }
    set_log_level(*parsed_level);
    log_open_file_limit(raise_open_file_limit());
    return {};
}

int run_program(const char* name, const std::function<int()>& body) {
    set_program_name(name);
    try {
        return body();
    } catch (const UsageError& e) {
        log_error(std::string(e.what()) + " (see --help)");
        return kExitUsage;
    } catch (const StartupError& e) {
        log_error(e.what());
        return kExitUsage;
    } catch (const zmq::error_t& e) {
        log_error(std::string("ZeroMQ: ") + e.what());
        return kExitUsage;
    } catch (const std::exception& e) {
        log_error(e.what());
        return kExitUsage;
    }
}

}  // namespace taskpipe
