#include "options.hpp"

namespace po = boost::program_options;

namespace taskpipe {

Parsed<KeygenOptions> parse_keygen_options(int argc, const char* const argv[]) {
    Parsed<KeygenOptions> parsed;
    po::options_description options("Options");
    options.add_options()("name", po::value(&parsed.options.name),
                          "writes NAME.key (the key pair, mode 0600) and NAME.pub (the public "
                          "key to hand out)");
    po::positional_options_description positional;
    positional.add("name", 1);
    po::variables_map values;
    parsed.early_output = parse_command_line(
        argc, argv, options, positional, values,
        "taskpipe keygen NAME\n\n"
        "Writes a CURVE key pair to NAME.key (mode 0600) and its public key to NAME.pub.");
    if (!parsed.early_output.empty()) return parsed;
    if (parsed.options.name.empty()) throw UsageError("give the NAME of the key files to write");
    return parsed;
}

}  // namespace taskpipe
