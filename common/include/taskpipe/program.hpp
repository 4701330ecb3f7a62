// What every taskpipe program shares around its role class: exit codes, command-line parsing
// with Boost.Program_options, and the single top-level catch.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

namespace taskpipe {

// Exit statuses, stable and documented in the README.
enum ExitCode : int {
    kExitOk = 0,           // every task succeeded (worker: clean shutdown)
    kExitTasksFailed = 1,  // the batch completed but some tasks failed or were lost
    kExitUsage = 2,        // bad command line, bad endpoint, address in use, ...
    kExitInterrupted = 3,  // stopped by SIGINT/SIGTERM before the batch completed
    kExitGaveUp = 4,       // the other end of the batch (sink or ventilator) went away for good
};

// A command line the program cannot run with: exit status 2.
class UsageError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// The outcome of parsing a command line: either options to run with, or text (--help,
// --version) to print on stdout before exiting 0.
template <typename Options>
struct Parsed {
    Options options;
    std::string early_output;
};

// Parses argv with the given options and positionals, adding --help and --version. Returns
// the help or version text in `early_output` when asked for; throws UsageError otherwise.
// Once the log level is set, raises the open-file limit (open_files.hpp).
std::string parse_command_line(
    int argc, const char* const argv[], const boost::program_options::options_description& options,
    const boost::program_options::positional_options_description& positional,
    boost::program_options::variables_map& values, const std::string& usage_line);

// Runs `body` with the project's error policy: one line on stderr and exit status 2 for usage
// and start-up errors, never an uncaught exception or an abort.
int run_program(const char* name, const std::function<int()>& body);

}  // namespace taskpipe
