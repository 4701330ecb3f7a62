#include "listening_port.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace taskpipe {

namespace {

constexpr std::string_view kListen = "0A";  // TCP_LISTEN in include/net/tcp_states.h

// The inodes of the sockets among `pid`'s open files ("socket:[12345]" links in /proc/PID/fd).
std::set<unsigned long> socket_inodes(pid_t pid) {
    namespace fs = std::filesystem;
    std::set<unsigned long> inodes;
    std::error_code error;
    const fs::path dir = "/proc/" + std::to_string(pid) + "/fd";
    for (const auto& entry : fs::directory_iterator(dir, error)) {
        std::error_code link_error;
        const std::string target = fs::read_symlink(entry.path(), link_error).string();
        if (link_error || !target.starts_with("socket:[")) continue;  // closed meanwhile
        inodes.insert(std::stoul(target.substr(8)));
    }
    return inodes;  // none if the process has exited (its fd directory cannot be read)
}

}  // namespace

// A table line: "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid
// timeout inode ...", addresses as HEX_IP:HEX_PORT.
void listening_ports_in_table(std::istream& table, const std::set<unsigned long>& inodes,
                              std::set<std::uint16_t>& ports) {
    std::string line;
    std::getline(table, line);  // the header
    while (std::getline(table, line)) {
        std::istringstream fields(line);
        std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout;
        unsigned long inode = 0;
        if (!(fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
              timeout >> inode)) {
            continue;
        }
        if (state != kListen || !inodes.contains(inode)) continue;
        const auto colon = local.rfind(':');
        if (colon == std::string::npos) continue;
        ports.insert(static_cast<std::uint16_t>(std::stoul(local.substr(colon + 1), nullptr, 16)));
    }
}

std::optional<std::uint16_t> listening_tcp_port(pid_t pid) {
    const std::set<unsigned long> inodes = socket_inodes(pid);
    std::set<std::uint16_t> ports;
    for (const char* table_name : {"tcp", "tcp6"}) {
        // The tables of the process's own network namespace.
        std::ifstream table("/proc/" + std::to_string(pid) + "/net/" + table_name);
        if (table) listening_ports_in_table(table, inodes, ports);
    }
    if (ports.size() > 1) {
        throw std::runtime_error("process " + std::to_string(pid) +
                                 " listens on more than one TCP port");
    }
    if (ports.empty()) return std::nullopt;
    return *ports.begin();
}

}  // namespace taskpipe
