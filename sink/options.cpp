#include "options.hpp"

#include "taskpipe/endpoints.hpp"

namespace po = boost::program_options;

namespace taskpipe {

Parsed<SinkOptions> parse_sink_options(int argc, const char* const argv[]) {
    Parsed<SinkOptions> parsed;
    SinkOptions& o = parsed.options;
    po::options_description options("Options");
    auto add = options.add_options();
    add("bind,b", po::value(&o.bind)->default_value(o.bind),
        "endpoint the workers send results to (PULL)");
    add("control", po::value(&o.control)->default_value(o.control),
        "endpoint the ventilator connects to");
    add("jsonl,j", po::bool_switch(&o.jsonl),
        "write one JSON object per result instead of each task's stdout");
    add_curve_options(options, o.curve, kSinkCurveRoles);
    add("joblog", po::value(&o.joblog)->value_name("FILE"),
        "append one line per finished task to FILE (for ventilator --resume)");
    po::variables_map values;
    parsed.early_output =
        parse_command_line(argc, argv, options, {}, values, "sink [OPTIONS] > RESULTS");
    if (!parsed.early_output.empty()) return parsed;
    if (auto error = endpoint_error(o.bind, EndpointUse::bind)) throw UsageError(*error);
    if (auto error = endpoint_error(o.control, EndpointUse::bind)) throw UsageError(*error);
    check_curve_options(o.curve, kSinkCurveRoles);
    // Two binds to port * get two different ports; any other repeat would collide.
    if (o.bind == o.control && !o.bind.ends_with(":*")) {
        throw UsageError("--bind and --control must differ");
    }
    return parsed;
}

}  // namespace taskpipe
