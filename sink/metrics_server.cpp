#include "metrics_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <list>
#include <thread>
#include <vector>

#include "http_request.hpp"
#include "prometheus.hpp"
#include "taskpipe/log.hpp"
#include "taskpipe/rate_limited_log.hpp"
#include "taskpipe/sockets.hpp"

namespace taskpipe {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kBacklog = 64;
constexpr std::size_t kReadChunk = 4096;
// After the response, what the client still sends is read and dropped for at most this long
// before the close, so that the close does not reset a connection whose response the client
// has not read yet (a "lingering close").
constexpr auto kLinger = std::chrono::seconds(1);
// When accept fails for lack of file descriptors, the listening socket is left alone this long
// rather than polled (it would stay readable and spin the loop).
constexpr auto kAcceptPause = std::chrono::milliseconds(200);

// A file descriptor, closed with its owner.
class Fd {
  public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        std::swap(fd_, other.fd_);
        return *this;
    }
    int get() const { return fd_; }

  private:
    int fd_;
};

struct Connection {
    enum class Phase { reading, writing, lingering };

    Fd fd;
    Clock::time_point deadline;
    Phase phase = Phase::reading;
    HttpRequestReader request;
    std::string response;
    std::size_t sent = 0;
};

std::string response_text(int status, std::string_view reason, std::string_view content_type,
                          const std::string& body, bool with_body, std::string_view extra = {}) {
    std::string text = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
                       "\r\nContent-Type: " + std::string(content_type) +
                       "\r\nContent-Length: " + std::to_string(body.size()) +
                       "\r\nConnection: close\r\n" + std::string(extra) + "\r\n";
    if (with_body) text += body;
    return text;
}

std::string_view reason_phrase(int status) {
    switch (status) {
        case 400:
            return "Bad Request";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 431:
            return "Request Header Fields Too Large";
        case 500:
            return "Internal Server Error";
        case 505:
            return "HTTP Version Not Supported";
        default:
            return "Error";
    }
}

std::string error_response(int status, bool with_body, std::string_view extra = {}) {
    const std::string_view reason = reason_phrase(status);
    return response_text(status, reason, "text/plain; charset=utf-8",
                         std::to_string(status) + " " + std::string(reason) + "\n", with_body,
                         extra);
}

}  // namespace

struct MetricsServer::Impl {
    std::function<std::string()> render;
    std::string url;
    Fd listener;
    Fd wake_read;  // a byte here stops the thread
    Fd wake_write;
    std::thread thread;

    void serve();
    void accept_connections(std::list<Connection>& connections, Clock::time_point now,
                            Clock::time_point& accept_paused_until, RateLimitedLog& log);
    // Reads or writes what the connection is ready for; false when it is done with.
    bool progress(Connection& c, short revents, Clock::time_point now);
    std::string respond(const HttpRequestReader& request);
};

MetricsServer::MetricsServer(const MetricsAddress& address, std::function<std::string()> render)
    : impl_(std::make_unique<Impl>()) {
    impl_->render = std::move(render);
    const std::string where = address.host + ":" + std::to_string(address.port);
    auto fail = [&](const std::string& what, int error) {
        throw StartupError("cannot serve --metrics on " + where + ": " + what +
                           (error != 0 ? std::string(std::strerror(error)) : ""));
    };
    sockaddr_in bound{};
    bound.sin_family = AF_INET;
    bound.sin_port = htons(address.port);
    if (inet_pton(AF_INET, address.host.c_str(), &bound.sin_addr) != 1) {
        fail("not an IPv4 address", 0);
    }
    impl_->listener = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (impl_->listener.get() < 0) fail("", errno);
    // SO_REUSEADDR, not SO_REUSEPORT: a second sink on the same port must fail, not share it.
    const int yes = 1;
    (void)::setsockopt(impl_->listener.get(), SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (::bind(impl_->listener.get(), reinterpret_cast<const sockaddr*>(&bound), sizeof bound) !=
            0 ||
        ::listen(impl_->listener.get(), kBacklog) != 0) {
        fail("", errno);
    }
    socklen_t length = sizeof bound;
    if (::getsockname(impl_->listener.get(), reinterpret_cast<sockaddr*>(&bound), &length) != 0) {
        fail("", errno);
    }
    int wake[2];
    if (::pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) fail("", errno);
    impl_->wake_read = Fd(wake[0]);
    impl_->wake_write = Fd(wake[1]);
    impl_->url =
        "http://" + address.host + ":" + std::to_string(ntohs(bound.sin_port)) + "/metrics";
    impl_->thread = std::thread([impl = impl_.get()] {
        // Signals belong to the main thread's event loop (shutdown.hpp).
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, nullptr);
        try {
            impl->serve();
        } catch (const std::exception& e) {  // e.g. out of memory: the batch goes on
            log_warning(std::string("metrics server stopped: ") + e.what());
        }
    });
}

MetricsServer::~MetricsServer() {
    const char stop = 's';
    (void)!::write(impl_->wake_write.get(), &stop, 1);
    impl_->thread.join();
}

const std::string& MetricsServer::url() const { return impl_->url; }

void MetricsServer::Impl::serve() {
    std::list<Connection> connections;  // oldest first
    std::vector<pollfd> fds;
    std::vector<Connection*> polled;
    RateLimitedLog log("failed accepts on the metrics port");
    Clock::time_point accept_paused_until{};
    for (;;) {
        auto now = Clock::now();
        const bool accepting = now >= accept_paused_until;
        fds.clear();
        polled.clear();
        fds.push_back({wake_read.get(), POLLIN, 0});
        fds.push_back({accepting ? listener.get() : -1, POLLIN, 0});
        auto next = now + std::chrono::seconds(1);
        if (!accepting) next = std::min(next, accept_paused_until);
        for (Connection& c : connections) {
            fds.push_back(
                {c.fd.get(),
                 static_cast<short>(c.phase == Connection::Phase::writing ? POLLOUT : POLLIN), 0});
            polled.push_back(&c);
            next = std::min(next, c.deadline);
        }
        const auto wait = std::chrono::ceil<std::chrono::milliseconds>(next - now);
        const int ready =
            ::poll(fds.data(), fds.size(), static_cast<int>(std::max<long>(wait.count(), 0)));
        if (ready < 0 && errno != EINTR) {
            throw std::system_error(errno, std::generic_category(), "poll");
        }
        if (fds[0].revents != 0) return;  // the destructor closes every connection
        now = Clock::now();
        for (std::size_t i = 0; i < polled.size(); ++i) {
            Connection& c = *polled[i];
            const short revents = fds[i + 2].revents;
            if ((revents != 0 && !progress(c, revents, now)) || now >= c.deadline) {
                c.fd = Fd();  // closed; removed below
            }
        }
        connections.remove_if([](const Connection& c) { return c.fd.get() < 0; });
        if (fds[1].revents != 0) accept_connections(connections, now, accept_paused_until, log);
        log.tick(now);
    }
}

void MetricsServer::Impl::accept_connections(std::list<Connection>& connections,
                                             Clock::time_point now,
                                             Clock::time_point& accept_paused_until,
                                             RateLimitedLog& log) {
    // Up to a backlog's worth at a time, so that a flood of connections cannot starve the ones
    // already accepted of the loop's attention.
    for (int i = 0; i < kBacklog; ++i) {
        Fd fd(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (fd.get() < 0) {
            const int error = errno;
            if (error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM) {
                log.note(std::string("metrics: cannot accept a connection: ") +
                         std::strerror(error));
                accept_paused_until = now + kAcceptPause;
            }
            return;  // EAGAIN: none left; anything else: a client that gave up
        }
        if (connections.size() >= kMaxConnections) connections.pop_front();  // the oldest
        Connection& c = connections.emplace_back();
        c.fd = std::move(fd);
        c.deadline = now + kDeadline;
    }
}

bool MetricsServer::Impl::progress(Connection& c, short revents, Clock::time_point now) {
    if (c.phase == Connection::Phase::writing) {
        if ((revents & (POLLERR | POLLHUP)) != 0 && (revents & POLLOUT) == 0) return false;
        const ssize_t n = ::send(c.fd.get(), c.response.data() + c.sent, c.response.size() - c.sent,
                                 MSG_NOSIGNAL);
        if (n < 0) return errno == EAGAIN || errno == EINTR;
        c.sent += static_cast<std::size_t>(n);
        if (c.sent < c.response.size()) return true;
        (void)::shutdown(c.fd.get(), SHUT_WR);
        c.phase = Connection::Phase::lingering;
        c.deadline = std::min(c.deadline, now + kLinger);
        c.response.clear();
        return true;
    }
    char buffer[kReadChunk];
    const ssize_t n = ::recv(c.fd.get(), buffer, sizeof buffer, 0);
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    if (n == 0) return false;  // the client closed (or, lingering, has read the response)
    if (c.phase == Connection::Phase::lingering) return true;
    if (c.request.feed(std::string_view(buffer, static_cast<std::size_t>(n))) ==
        HttpRequestReader::State::incomplete) {
        return true;
    }
    c.response = respond(c.request);
    c.phase = Connection::Phase::writing;
    return progress(c, POLLOUT, now);  // most responses leave in one send
}

std::string MetricsServer::Impl::respond(const HttpRequestReader& request) {
    if (request.state() == HttpRequestReader::State::bad) {
        return error_response(request.error_status(), true);
    }
    const bool head = request.method() == "HEAD";
    if (request.method() != "GET" && !head) {
        return error_response(405, true, "Allow: GET, HEAD\r\n");
    }
    const std::string& target = request.target();
    if (target.substr(0, target.find('?')) != "/metrics") return error_response(404, !head);
    try {
        return response_text(200, "OK", kPrometheusContentType, render(), !head);
    } catch (const std::exception& e) {
        return response_text(500, "Internal Server Error", "text/plain; charset=utf-8",
                             std::string("cannot render the metrics: ") + e.what() + "\n", !head);
    }
}

}  // namespace taskpipe
