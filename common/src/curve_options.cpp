#include "taskpipe/curve_options.hpp"

#include "taskpipe/program.hpp"

namespace po = boost::program_options;

namespace taskpipe {

void add_curve_options(po::options_description& options, CurveFiles& files, CurveRoles roles) {
    auto add = options.add_options();
    add("curve-key", po::value(&files.key)->value_name("FILE"),
        "this program's CURVE key pair (made by keygen; mode 0600); turns on authentication "
        "and encryption");
    if (roles.server) {
        add("curve-allow", po::value(&files.allow)->value_name("FILE|DIR")->composing(),
            "public key file, or directory of *.pub files, of the clients allowed to connect; "
            "may be repeated");
    }
    if (roles.client) {
        add("curve-server", po::value(&files.server)->value_name("FILE"),
            roles.server ? "public key file of the sink: this program's own public key (the "
                           "default), as the ventilator and the sink share one server key pair"
                         : "public key file of the ventilator and the sink (they share one "
                           "server key pair)");
    }
}

void check_curve_options(const CurveFiles& files, CurveRoles roles) {
    if (!files.enabled()) {
        if (!files.allow.empty() || !files.server.empty()) {
            throw UsageError("--curve-allow and --curve-server need --curve-key");
        }
        return;
    }
    if (roles.server && files.allow.empty()) {
        throw UsageError("--curve-key needs --curve-allow: the public keys allowed to connect");
    }
    if (roles.client && !roles.server && files.server.empty()) {
        throw UsageError("--curve-key needs --curve-server: the public key of the servers");
    }
}

std::optional<CurveKeys> load_curve_keys(const CurveFiles& files, CurveRoles roles) {
    if (!files.enabled()) return std::nullopt;
    if (!curve_available()) {
        throw StartupError("--curve-key given, but this libzmq was built without CURVE");
    }
    CurveKeys keys;
    keys.own = load_key_pair(files.key);
    if (roles.server) {
        for (const auto& path : files.allow) {
            for (auto& key : load_allowed_keys(path)) keys.allowed.push_back(std::move(key));
        }
    }
    if (roles.client) {
        keys.server_key =
            files.server.empty() ? keys.own.public_key : load_public_key(files.server);
        if (roles.server && keys.server_key != keys.own.public_key) {
            throw StartupError("--curve-server " + files.server +
                               " is not this program's own public key: the sink lets onto its "
                               "control socket only the server key pair it shares with the "
                               "ventilator; give both programs the same --curve-key");
        }
    }
    return keys;
}

CurveSocketOptions curve_server_socket(const CurveKeys& keys, const std::string& name) {
    CurveSocketOptions o;
    o.server = true;
    o.public_key = keys.own.public_key;
    o.secret_key = keys.own.secret_key;
    o.zap_domain = name;
    return o;
}

CurveSocketOptions curve_client_socket(const CurveKeys& keys) {
    CurveSocketOptions o;
    o.public_key = keys.own.public_key;
    o.secret_key = keys.own.secret_key;
    o.server_key = keys.server_key;
    return o;
}

}  // namespace taskpipe
