// The --curve-* options, the same on every program that takes them (docs/security.md):
//
//   --curve-key FILE          this program's key pair (a secret key file); turns CURVE on
//   --curve-allow FILE|DIR    servers (ventilator, sink): public keys allowed to connect; a
//                             directory means each *.pub file in it; may be repeated
//   --curve-server FILE       clients (worker, ventilator): the public key of the server(s) it
//                             connects to; the ventilator and the sink share one server key pair
//
// Options hold file names only; the keys are read when the program starts (load_curve_keys),
// so that a file mode error is a start-up error rather than a usage error.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "taskpipe/curve.hpp"
#include "taskpipe/sockets.hpp"

namespace taskpipe {

// Which CURVE roles a program plays: a server binds sockets others connect to, a client
// connects to a server.
struct CurveRoles {
    bool server = false;
    bool client = false;
};

struct CurveFiles {
    std::string key;                 // --curve-key; empty: no security
    std::vector<std::string> allow;  // --curve-allow
    std::string server;              // --curve-server
    bool enabled() const { return !key.empty(); }
};

// The keys a program runs with.
struct CurveKeys {
    CurveKeyPair own;
    // Servers: the public keys of --curve-allow, the workers. The program's own key is not
    // among them: a server decides per socket whom it admits (zap_handler.hpp), and only the
    // sink's control socket admits the server key pair, which the ventilator shares.
    std::vector<std::string> allowed;
    // Clients: the public key of the server(s) it connects to.
    std::string server_key;
};

void add_curve_options(boost::program_options::options_description& options, CurveFiles& files,
                       CurveRoles roles);

// Throws UsageError for options that do not go together (--curve-allow without --curve-key,
// a worker without --curve-server, ...).
void check_curve_options(const CurveFiles& files, CurveRoles roles);

// Reads the key files; nullopt when CURVE is off. Throws StartupError when this libzmq has no
// CURVE, or when a program that is both server and client (the ventilator) is given a
// --curve-server other than its own public key: the sink admits on its control socket only the
// server key pair the two share. Throws KeyFileError for an unusable file.
std::optional<CurveKeys> load_curve_keys(const CurveFiles& files, CurveRoles roles);

// CURVE options for a server socket called `name` (its ZAP domain) and for a client socket.
CurveSocketOptions curve_server_socket(const CurveKeys& keys, const std::string& name);
CurveSocketOptions curve_client_socket(const CurveKeys& keys);

}  // namespace taskpipe
