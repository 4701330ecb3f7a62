#include "metrics_server.hpp"

#include <sys/socket.h>

#include <httplib.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "prometheus.hpp"
#include "taskpipe/log.hpp"
#include "taskpipe/sockets.hpp"

namespace taskpipe {

namespace {

constexpr std::size_t kThreads = 2;     // connections served at once
constexpr std::size_t kMaxWaiting = 8;  // accepted connections waiting for a thread
constexpr time_t kTimeoutSeconds = 2;   // to send a request (or the next, kept alive) or read
constexpr std::size_t kMaxBody = 4096;  // a scrape has no body at all
constexpr std::size_t kMaxRequestsPerConnection = 100;

// cpp-httplib's connection queue, bounded: when kMaxWaiting connections already wait, the
// accepting thread serves the new one itself and so accepts no more until it is done; further
// clients wait in the kernel's small listen backlog, then are refused. Every connection it runs
// is itself bounded by the timeouts, so this never blocks for long.
class BoundedQueue final : public httplib::TaskQueue {
  public:
    BoundedQueue() {
        for (std::size_t i = 0; i < kThreads; ++i) threads_.emplace_back([this] { work(); });
    }
    ~BoundedQueue() override { shutdown(); }
    BoundedQueue(const BoundedQueue&) = delete;
    BoundedQueue& operator=(const BoundedQueue&) = delete;

    void enqueue(std::function<void()> job) override {
        {
            std::lock_guard lock(mutex_);
            if (jobs_.size() < kMaxWaiting) {
                jobs_.push_back(std::move(job));
                changed_.notify_one();
                return;
            }
        }
        job();
    }

    // Runs the jobs still waiting, then joins the threads.
    void shutdown() override {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        changed_.notify_all();
        for (auto& thread : threads_) {
            if (thread.joinable()) thread.join();
        }
    }

  private:
    void work() {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock lock(mutex_);
                changed_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
                if (jobs_.empty()) return;
                job = std::move(jobs_.front());
                jobs_.pop_front();
            }
            job();
        }
    }

    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<std::function<void()>> jobs_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace

struct MetricsServer::Impl {
    httplib::Server server;
    std::string url;
    std::thread thread;
    std::promise<void> stopped;  // set when the serving thread is about to end
};

MetricsServer::MetricsServer(const MetricsAddress& address, std::function<std::string()> render)
    : impl_(std::make_unique<Impl>()) {
    httplib::Server& server = impl_->server;
    server.new_task_queue = [] { return new BoundedQueue; };
    server.set_address_family(AF_INET);
    // SO_REUSEADDR only: cpp-httplib's default adds SO_REUSEPORT, with which a second sink could
    // bind the same port and share its scrapes instead of failing.
    server.set_socket_options([](socket_t fd) {
        const int yes = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    server.set_read_timeout(kTimeoutSeconds, 0);
    server.set_write_timeout(kTimeoutSeconds, 0);
    server.set_keep_alive_timeout(kTimeoutSeconds);
    server.set_keep_alive_max_count(kMaxRequestsPerConnection);
    server.set_payload_max_length(kMaxBody);
    server.Get("/metrics", [render = std::move(render)](const httplib::Request&,
                                                        httplib::Response& response) {
        try {
            response.set_content(render(), std::string(kPrometheusContentType));
        } catch (const std::exception& e) {
            response.status = 500;
            response.set_content(std::string("cannot render the metrics: ") + e.what() + "\n",
                                 "text/plain; charset=utf-8");
        }
    });

    // cpp-httplib reports only failure; the errno of the failed bind() or listen() survives.
    errno = 0;
    int port = -1;
    if (address.port == 0) {
        port = server.bind_to_any_port(address.host);
    } else if (server.bind_to_port(address.host, address.port)) {
        port = address.port;
    }
    if (port <= 0) {
        const int error = errno;
        throw StartupError("cannot serve --metrics on " + address.host + ":" +
                           std::to_string(address.port) +
                           (error != 0 ? std::string(": ") + std::strerror(error) : ""));
    }
    impl_->url = "http://" + address.host + ":" + std::to_string(port) + "/metrics";
    impl_->thread = std::thread([impl = impl_.get()] {
        try {
            impl->server.listen_after_bind();
        } catch (const std::exception& e) {  // e.g. no thread for the pool: the batch goes on
            log_warning(std::string("metrics server stopped: ") + e.what());
        }
        impl->stopped.set_value();
    });
}

MetricsServer::~MetricsServer() {
    // stop() does nothing until the thread has started listening, so it is repeated until the
    // thread ends; it then waits for the connections being served (bounded by the timeouts).
    const auto stopped = impl_->stopped.get_future();
    do {
        impl_->server.stop();
    } while (stopped.wait_for(std::chrono::milliseconds(10)) != std::future_status::ready);
    impl_->thread.join();
}

const std::string& MetricsServer::url() const { return impl_->url; }

}  // namespace taskpipe
