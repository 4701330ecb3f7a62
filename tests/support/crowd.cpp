#include "support/crowd.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace taskpipe::testing {

namespace {

// ZMTP 3.0 (rfc.zeromq.org/spec/23): the greeting of a client with the NULL mechanism.
std::string greeting() {
    std::string g(64, '\0');
    g[0] = '\xff';
    g[9] = '\x7f';
    g[10] = 3;  // version 3.0
    g.replace(12, 4, "NULL");
    return g;
}

// A frame: flags (0x02 long, 0x04 command), its size in 1 or 8 bytes, the body.
std::string frame(std::string_view body, bool command) {
    std::string f;
    if (body.size() <= 255) {
        f += static_cast<char>(command ? 0x04 : 0x00);
        f += static_cast<char>(body.size());
    } else {
        f += static_cast<char>(command ? 0x06 : 0x02);
        for (int shift = 56; shift >= 0; shift -= 8) {
            f += static_cast<char>((static_cast<std::uint64_t>(body.size()) >> shift) & 0xff);
        }
    }
    f += body;
    return f;
}

std::string ready_command() {
    std::string body = "\x05READY";
    body += "\x0bSocket-Type";
    body += std::string("\0\0\0\x06", 4);
    body += "DEALER";
    return frame(body, /*command=*/true);
}

// A connected descriptor, or -1 when the head's listen queue is full (EAGAIN): it is
// accepting, so try again shortly.
int connect_ipc(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof address.sun_path) throw std::invalid_argument("ipc path too long");
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) return fd;
    const int error = errno;
    ::close(fd);
    if (error != EAGAIN) throw std::system_error(error, std::generic_category(), "connect " + path);
    return -1;
}

}  // namespace

Crowd::Crowd(const std::string& endpoint, std::size_t count, Deadline deadline) {
    if (!endpoint.starts_with("ipc://")) throw std::invalid_argument("Crowd takes ipc:// only");
    const std::string path = endpoint.substr(6);
    const std::string hello = greeting() + ready_command();
    peers_.resize(count);
    try {
        for (Peer& peer : peers_) {
            // While the head's listen queue is full, the connections made so far are served
            // (greetings, pings): the head closes one that is silent for 5 s.
            while ((peer.fd = connect_ipc(path)) < 0) {
                if (Clock::now() >= deadline) {
                    throw std::system_error(EAGAIN, std::generic_category(), "connect " + path);
                }
                pump(std::chrono::milliseconds(1));
            }
            peer.out = hello;
            if ((&peer - peers_.data()) % 256 == 255) pump(std::chrono::milliseconds(0));
        }
    } catch (...) {
        for (Peer& peer : peers_) close(peer);
        throw;
    }
}

Crowd::~Crowd() {
    for (Peer& peer : peers_) close(peer);
}

void Crowd::close(Peer& peer) {
    if (peer.fd >= 0) ::close(peer.fd);
    peer.fd = -1;
}

void Crowd::send(std::size_t i, std::string_view body) {
    Peer& peer = peers_[i];
    (peer.ready ? peer.out : peer.waiting) += frame(body, /*command=*/false);
}

void Crowd::pump(std::chrono::milliseconds wait) {
    std::vector<pollfd> fds;
    std::vector<Peer*> of;
    fds.reserve(peers_.size());
    of.reserve(peers_.size());
    for (Peer& peer : peers_) {
        if (peer.fd < 0) continue;
        fds.push_back({peer.fd, static_cast<short>(POLLIN | (peer.out.empty() ? 0 : POLLOUT)), 0});
        of.push_back(&peer);
    }
    if (fds.empty()) return;
    if (::poll(fds.data(), fds.size(), static_cast<int>(wait.count())) <= 0) return;
    char buffer[65536];
    for (std::size_t i = 0; i < fds.size(); ++i) {
        Peer& peer = *of[i];
        if ((fds[i].revents & POLLOUT) != 0 && !peer.out.empty()) {
            const ssize_t n = ::send(peer.fd, peer.out.data(), peer.out.size(), MSG_NOSIGNAL);
            if (n > 0) peer.out.erase(0, static_cast<std::size_t>(n));
        }
        if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        const ssize_t n = ::recv(peer.fd, buffer, sizeof buffer, 0);
        if (n > 0) {
            peer.in.append(buffer, static_cast<std::size_t>(n));
            parse(peer);
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            if (!peer.closed) ++closed_;
            peer.closed = true;
            close(peer);
        }
    }
}

void Crowd::parse(Peer& peer) {
    std::string_view in = peer.in;
    if (!peer.greeted) {
        if (in.size() < 64) return;
        peer.greeted = true;
        in.remove_prefix(64);
    }
    while (in.size() >= 2) {
        const auto flags = static_cast<unsigned char>(in[0]);
        const bool is_long = (flags & 0x02) != 0;
        const std::size_t header = is_long ? 9 : 2;
        if (in.size() < header) break;
        std::uint64_t size = 0;
        if (is_long) {
            for (std::size_t b = 1; b <= 8; ++b)
                size = (size << 8) | static_cast<unsigned char>(in[b]);
        } else {
            size = static_cast<unsigned char>(in[1]);
        }
        if (in.size() < header + size) break;
        const std::string_view body = in.substr(header, size);
        in.remove_prefix(header + size);
        if ((flags & 0x04) == 0) {
            peer.messages.emplace_back(body);  // the head sends one frame per message
            ++messages_;
            continue;
        }
        const std::size_t name_size = body.empty() ? 0 : static_cast<unsigned char>(body[0]);
        const std::string_view name = body.substr(1, name_size);
        if (name == "READY") {
            peer.ready = true;
            peer.out += std::exchange(peer.waiting, {});
        } else if (name == "PING" && body.size() >= 1 + name_size + 2) {
            const std::string_view context = body.substr(1 + name_size + 2);
            peer.out += frame("\x04PONG" + std::string(context), /*command=*/true);
        } else if (name == "ERROR") {
            if (!peer.closed) ++closed_;
            peer.closed = true;
        }
    }
    peer.in.erase(0, peer.in.size() - in.size());
}

}  // namespace taskpipe::testing
