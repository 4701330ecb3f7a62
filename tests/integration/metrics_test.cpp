// sink --metrics, scraped with the real curl while real programs run. README, "Live metrics":
//
//   "sink --metrics ADDR:PORT serves Prometheus text exposition format (version 0.0.4) over HTTP
//   at /metrics ... Port 0 picks a free port; the sink then logs `metrics on
//   http://ADDR:PORT/metrics` with the real port."
//
// and the issue's acceptance: the counts move during a batch and agree with it at the end, junk
// on the metrics port does not disturb the batch, and a bad address or a port in use is a
// start-up error (exit status 2, one line on stderr).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "support/binaries.hpp"
#include "support/connections.hpp"
#include "support/pipeline.hpp"
#include "support/process.hpp"
#include "support/results.hpp"
#include "support/temp_dir.hpp"

namespace taskpipe::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";
const std::string kOk = R"(taskpipe_tasks_finished_total{status="ok"})";

// The URL the sink logs once its metrics server is bound.
std::string metrics_url(Process& sink) {
    const std::string prefix = "sink info: metrics on ";
    const auto line = sink.wait_for_stderr(prefix, deadline_in(10s));
    if (!line) throw std::runtime_error("no '" + prefix + "' line\n" + sink.describe());
    return line->substr(line->find(prefix) + prefix.size());
}

int port_of(const std::string& url) {  // http://127.0.0.1:PORT/metrics
    const auto colon = url.rfind(':');
    return std::stoi(url.substr(colon + 1, url.find('/', colon) - colon - 1));
}

struct Response {
    int status = 0;
    std::string content_type;
    std::string body;
};

// GET `url` with curl; nullopt when curl fails (it says why on stderr).
std::optional<Response> scrape(const std::string& url) {
    Process curl({TASKPIPE_CURL_PATH, "-sS", "--max-time", "5", "-D", "-", url});
    if (curl.wait_for_exit(deadline_in(10s)) != 0) {
        ADD_FAILURE() << curl.describe();
        return std::nullopt;
    }
    const std::string out = curl.stdout_text();
    const auto end_of_headers = out.find("\r\n\r\n");
    if (end_of_headers == std::string::npos) return std::nullopt;
    Response response;
    response.body = out.substr(end_of_headers + 4);
    for (const std::string& line : split_lines(out.substr(0, end_of_headers + 2))) {
        const std::string header = line.substr(0, line.size() - 1);  // without the \r
        if (header.starts_with("HTTP/")) response.status = std::stoi(header.substr(9, 3));
        const std::string name = "Content-Type: ";
        if (header.starts_with(name)) response.content_type = header.substr(name.size());
    }
    return response;
}

// The value of the sample whose name and labels are exactly `series`, if there is one.
std::optional<double> sample(const std::string& body, const std::string& series) {
    for (const std::string& line : split_lines(body)) {
        if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
    }
    return std::nullopt;
}

// Scrapes until `accept` takes a body; returns that body, or nullopt at the deadline.
template <typename Accept>
std::optional<std::string> scrape_until(const std::string& url, Accept&& accept,
                                        Deadline deadline) {
    std::optional<std::string> taken;
    wait_for(
        [&] {
            const auto response = scrape(url);
            if (!response || response->status != 200 || !accept(response->body)) return false;
            taken = response->body;
            return true;
        },
        deadline, 20ms);
    return taken;
}

std::string host_name() {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0) return "unknown";
    return name;
}

// A raw TCP connection to 127.0.0.1:`port`, for clients that do not speak HTTP.
class RawConnection {
  public:
    explicit RawConnection(int port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
        if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket");
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(static_cast<std::uint16_t>(port));
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
            const int error = errno;
            close(fd_);
            throw std::system_error(error, std::generic_category(), "connect");
        }
        const timeval timeout{10, 0};  // a read never outlasts the test
        setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    }
    ~RawConnection() { close(fd_); }
    RawConnection(const RawConnection&) = delete;
    RawConnection& operator=(const RawConnection&) = delete;

    // Sends what it can of `bytes`; the server may close the connection part-way.
    void send_bytes(const std::string& bytes) {
        (void)::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    }

    // Reads until the server closes the connection (true) or 10 s pass without a byte (false).
    bool read_until_closed() {
        char buffer[4096];
        for (;;) {
            const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
            if (n == 0) return true;
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return errno == ECONNRESET;
        }
    }

  private:
    int fd_;
};

// "The counts move during a batch and agree with it at the end." The input is held open after
// its 60 tasks, so that the batch (whose size is not known before the input ends) stays open
// once every task has its result: the end state can then be scraped before the sink exits.
TEST(Metrics, ScrapesFollowABatchWhileItRunsAndAgreeWithItAtTheEnd) {
    constexpr int kTasks = 60;
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--metrics", "127.0.0.1:0"});
    const std::string url = metrics_url(sink);
    EXPECT_TRUE(url.starts_with("http://127.0.0.1:")) << url;
    EXPECT_GT(port_of(url), 0) << url;

    const auto first = scrape(url);
    ASSERT_TRUE(first);
    EXPECT_EQ(first->status, 200);
    EXPECT_EQ(first->content_type, kContentType);
    EXPECT_EQ(sample(first->body, kOk), 0.0) << first->body;

    Process& ventilator = pipeline.start_ventilator(Stdin::held_open());
    pipeline.start_worker({"-c", "2", "--builtin", "sleep"});
    pipeline.start_worker({"-c", "2", "--builtin", "sleep"});
    const int tasks_port = tcp_port(pipeline.endpoints().tasks);
    ASSERT_TRUE(wait_for([&] { return accepted_connections(tasks_port) >= 2; }, deadline_in(10s)));
    std::string input;
    for (int i = 0; i < kTasks; ++i) input += "150\n";  // 150 ms each: 2.25 s on 4 slots
    ventilator.feed_stdin(input);

    // Two scrapes during the batch, the second seeing more tasks done than the first.
    double seen = 0;
    const auto during = scrape_until(
        url,
        [&](const std::string& body) {
            seen = sample(body, kOk).value_or(0);
            return seen > 0 && seen < kTasks;
        },
        deadline_in(30s));
    ASSERT_TRUE(during) << "no scrape saw the batch part-done\n" << sink.describe();
    const auto later = scrape_until(
        url, [&](const std::string& body) { return sample(body, kOk).value_or(0) > seen; },
        deadline_in(30s));
    ASSERT_TRUE(later) << "ok stayed at " << seen << "\n" << sink.describe();

    // The ventilator reports how far it has read about once a second: that figure may trail
    // the results by up to a second.
    const auto end = scrape_until(
        url,
        [&](const std::string& body) {
            return sample(body, kOk) == kTasks &&
                   sample(body, "taskpipe_tasks_read_total") == kTasks;
        },
        deadline_in(60s));
    ASSERT_TRUE(end) << sink.describe();
    const std::string& body = *end;
    EXPECT_EQ(sample(body, "taskpipe_task_latency_seconds_count"), kTasks) << body;
    EXPECT_EQ(sample(body, R"(taskpipe_task_latency_seconds_bucket{le="+Inf"})"), kTasks);
    EXPECT_EQ(sample(body, "taskpipe_tasks_failed_total"), 0);
    EXPECT_EQ(sample(body, "taskpipe_tasks_read_total"), kTasks);
    EXPECT_GE(sample(body, "taskpipe_results_received_total").value_or(0), kTasks);
    EXPECT_FALSE(sample(body, "taskpipe_batch_tasks")) << "the input has not ended yet";
    // Every task waited at least its own 150 ms between send and result.
    EXPECT_EQ(sample(body, R"(taskpipe_task_latency_seconds_bucket{le="0.1"})"), 0) << body;
    double by_workers = 0;
    for (const auto& worker : pipeline.workers()) {
        const std::string name = host_name() + ":" + std::to_string(worker->pid());
        const auto tasks = sample(body, R"(taskpipe_worker_tasks_total{worker=")" + name + "\"}");
        ASSERT_TRUE(tasks) << name << " is missing\n" << body;
        EXPECT_GT(*tasks, 0) << name;
        EXPECT_EQ(sample(body, R"(taskpipe_worker_up{worker=")" + name + "\"}"), 1) << name;
        by_workers += *tasks;
    }
    EXPECT_EQ(by_workers, kTasks);
    EXPECT_EQ(sample(body, "taskpipe_workers_live"), 2);

    ventilator.close_stdin();
    const auto deadline = deadline_in(30s);
    EXPECT_EQ(sink.wait_for_exit(deadline), 0) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline), 0) << ventilator.describe();
    EXPECT_EQ(split_lines(sink.stdout_text()).size(), 0u) << "sleep writes nothing";
}

// "404 elsewhere", and the server answers nothing but GET /metrics.
TEST(Metrics, OtherPathsAreNotFound) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--metrics", "127.0.0.1:0"});
    std::string url = metrics_url(sink);
    const auto other = scrape(url.substr(0, url.rfind('/')) + "/other");
    ASSERT_TRUE(other);
    EXPECT_EQ(other->status, 404);
    const auto root = scrape(url.substr(0, url.rfind('/') + 1));
    ASSERT_TRUE(root);
    EXPECT_EQ(root->status, 404);
}

// "GET (or HEAD) /metrics answers ...; any other method 405."
TEST(Metrics, HeadHasNoBodyAndOtherMethodsAreNotAllowed) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--metrics", "127.0.0.1:0"});
    const std::string url = metrics_url(sink);
    const auto status_of = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {TASKPIPE_CURL_PATH, "-sS", "--max-time", "5", "-o", "/dev/null",
                                   "-w", "%{http_code} %{size_download}"});
        args.push_back(url);
        Process curl(args);
        EXPECT_EQ(curl.wait_for_exit(deadline_in(10s)), 0) << curl.describe();
        return curl.stdout_text();
    };
    EXPECT_EQ(status_of({"--head"}), "200 0");
    EXPECT_EQ(status_of({"-X", "POST", "--data", "x=1"}).substr(0, 4), "405 ");
    EXPECT_EQ(status_of({"-X", "DELETE"}).substr(0, 4), "405 ");
}

// "Garbage or slow clients cannot hang or exhaust the sink": junk, an oversized request and a
// client that never sends anything, while a batch runs; the server drops each of them, the
// batch completes exactly once and scrapes keep working.
TEST(Metrics, JunkOnTheMetricsPortDoesNotDisturbTheBatch) {
    constexpr int kTasks = 500;
    std::vector<std::string> payloads;
    std::string input;
    for (int i = 1; i <= kTasks; ++i) {
        payloads.push_back("task-" + std::to_string(i));
        input += payloads.back() + "\n";
    }
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--metrics", "127.0.0.1:0"});
    const std::string url = metrics_url(sink);
    const int port = port_of(url);

    RawConnection silent(port);  // connects and says nothing
    RawConnection junk(port);
    junk.send_bytes(std::string("\x00\xff\x16\x03\x01 GARBAGE \r\n\r\n", 18));
    RawConnection huge_header(port);
    huge_header.send_bytes("GET /metrics HTTP/1.1\r\nX-Junk: " + std::string(100'000, 'x'));
    RawConnection huge_body(port);
    huge_body.send_bytes("GET /metrics HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n" +
                         std::string(10'000, 'y'));

    Process& ventilator = pipeline.start_ventilator(Stdin::data(input));
    pipeline.start_worker({"-c", "2", "--builtin", "echo"});

    EXPECT_TRUE(junk.read_until_closed());
    EXPECT_TRUE(huge_header.read_until_closed());
    EXPECT_TRUE(huge_body.read_until_closed());
    EXPECT_TRUE(silent.read_until_closed()) << "an idle client must be dropped after a timeout";

    const auto deadline = deadline_in(60s);
    ASSERT_EQ(sink.wait_for_exit(deadline), 0) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline), 0) << ventilator.describe();
    const Tally tally = tally_lines(sink.stdout_text(), payloads);
    EXPECT_TRUE(tally.exact()) << tally.describe();
    EXPECT_EQ(sink.stderr_text().find(" error: "), std::string::npos) << sink.stderr_text();
}

TEST(Metrics, ScrapesStillWorkWhileAClientHoldsAConnectionOpen) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--metrics", "127.0.0.1:0"});
    const std::string url = metrics_url(sink);
    RawConnection silent(port_of(url));
    RawConnection half_request(port_of(url));
    half_request.send_bytes("GET /metr");
    const auto response = scrape(url);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200);
    EXPECT_TRUE(sample(response->body, kOk)) << response->body;
}

// A slowloris (issue 12): connections that each send a request line, then one header line
// every 100 ms, for ever, reconnecting whenever the server closes them. Runs on a thread of its
// own until destroyed.
class Slowloris {
  public:
    Slowloris(int port, int connections) : port_(port) {
        for (int i = 0; i < connections; ++i) fds_.push_back(open());
        thread_ = std::thread([this] { run(); });
    }
    ~Slowloris() {
        stop_ = true;
        thread_.join();
        for (int fd : fds_) close(fd);
    }
    Slowloris(const Slowloris&) = delete;
    Slowloris& operator=(const Slowloris&) = delete;

    // Connections the server closed on the attacker so far.
    int closed_by_server() const { return closed_.load(); }

  private:
    int open() const {
        const int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(static_cast<std::uint16_t>(port_));
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
            const std::string line = "GET /metrics HTTP/1.1\r\nHost: localhost\r\n";
            (void)::send(fd, line.data(), line.size(), MSG_NOSIGNAL);
        }
        return fd;
    }

    void run() {
        for (int line = 0; !stop_; ++line) {
            for (int& fd : fds_) {
                const std::string header = "X-Slow-" + std::to_string(line) + ": 1\r\n";
                char probe;
                const bool closed = recv(fd, &probe, 1, MSG_DONTWAIT) == 0 ||
                                    ::send(fd, header.data(), header.size(), MSG_NOSIGNAL) < 0;
                if (closed && !stop_) {
                    ++closed_;
                    close(fd);
                    fd = open();
                }
            }
            std::this_thread::sleep_for(100ms);  // the attack's pace, not a synchronisation
        }
    }

    int port_;
    std::vector<int> fds_;
    std::atomic<bool> stop_{false};
    std::atomic<int> closed_{0};
    std::thread thread_;
};

// Issue 12: "23 connections sending one header line a second: no genuine scrape succeeded; after
// the batch completed the sink did not exit for 30 s, until the attacker stopped." The server
// never waits on a client: scrapes succeed during the attack, each slow connection is closed at
// its deadline however steadily it trickles, and the sink exits as soon as the batch is done.
TEST(Metrics, ASlowlorisHoldsUpNeitherScrapesNorTheSinksExit) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--metrics", "127.0.0.1:0"});
    const std::string url = metrics_url(sink);
    Process& ventilator = pipeline.start_ventilator(Stdin::held_open());
    pipeline.start_worker({"--builtin", "echo"});
    ventilator.feed_stdin("a\nb\nc\n");

    Slowloris attack(port_of(url), 30);
    for (int i = 0; i < 3; ++i) {
        const auto response = scrape(url);  // curl --max-time 5
        ASSERT_TRUE(response) << "scrape " << i;
        EXPECT_EQ(response->status, 200);
        EXPECT_TRUE(sample(response->body, kOk)) << response->body;
    }
    // Each connection has 5 s from its accept, whatever it sends meanwhile.
    EXPECT_TRUE(wait_for([&] { return attack.closed_by_server() >= 30; }, deadline_in(20s)))
        << attack.closed_by_server() << " slow connections closed by the server";

    ventilator.close_stdin();
    EXPECT_EQ(sink.wait_for_exit(deadline_in(10s)), 0) << sink.describe();
    EXPECT_EQ(ventilator.wait_for_exit(deadline_in(10s)), 0) << ventilator.describe();
    EXPECT_EQ(split_lines(sink.stdout_text()).size(), 3u);
}

// More idle connections than the server keeps open (64): the oldest give way to new ones, so a
// scrape still gets in.
TEST(Metrics, AFloodOfIdleConnectionsDoesNotShutOutAScrape) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink({"--metrics", "127.0.0.1:0"});
    const std::string url = metrics_url(sink);
    std::vector<std::unique_ptr<RawConnection>> flood;
    for (int i = 0; i < 200; ++i) flood.push_back(std::make_unique<RawConnection>(port_of(url)));
    const auto response = scrape(url);
    ASSERT_TRUE(response) << sink.describe();
    EXPECT_EQ(response->status, 200);
    EXPECT_TRUE(flood.front()->read_until_closed()) << "the oldest was not closed";
}

// "A bad command line ...: exit status 2 and one line `TIME program error: ...` on stderr."
void expect_usage_error(Process& process, const std::string& says) {
    ASSERT_EQ(process.wait_for_exit(deadline_in(10s)), 2) << process.describe();
    const std::string err = process.stderr_text();
    const auto lines = split_lines(err);
    ASSERT_EQ(lines.size(), 1u) << err;
    EXPECT_TRUE(is_log_line(lines[0], "sink", "error")) << err;
    EXPECT_NE(lines[0].find(says), std::string::npos) << "expected '" << says << "' in: " << err;
    EXPECT_EQ(process.stdout_text(), "");
}

struct BadAddress {
    std::string name;
    std::string metrics;
    std::string says;
};

void PrintTo(const BadAddress& bad, std::ostream* out) { *out << bad.name; }

class MetricsBadAddressTest : public ::testing::TestWithParam<BadAddress> {};

TEST_P(MetricsBadAddressTest, ExitsTwoWithOneLineOnStderr) {
    Process sink({sink_path(), "--metrics", GetParam().metrics});
    expect_usage_error(sink, GetParam().says);
}

INSTANTIATE_TEST_SUITE_P(
    Metrics, MetricsBadAddressTest,
    ::testing::Values(BadAddress{"NoPort", "127.0.0.1", "expected ADDR:PORT"},
                      BadAddress{"EmptyPort", "127.0.0.1:", "port"},
                      BadAddress{"PortTooLarge", "127.0.0.1:65536", "port"},
                      BadAddress{"PortNotANumber", "127.0.0.1:http", "port"},
                      BadAddress{"HostName", "example.com:9100", "IPv4 address, localhost or *"},
                      BadAddress{"IPv6", "[::1]:9100", "IPv4 address, localhost or *"},
                      BadAddress{"Empty", "", "expected ADDR:PORT"}),
    [](const auto& test) { return test.param.name; });

// "A port already in use -> StartupError at start-up (exit 2)."
TEST(Metrics, APortInUseExitsTwo) {
    Pipeline first;
    Process& taken = first.start_sink({"--metrics", "127.0.0.1:0"});
    const int port = port_of(metrics_url(taken));

    TempDir dir;  // ipc endpoints: the second sink logs nothing before its error
    Process second({sink_path(), "--bind", dir.ipc_endpoint("results"), "--control",
                    dir.ipc_endpoint("control"), "--metrics", "127.0.0.1:" + std::to_string(port)});
    expect_usage_error(second, "Address already in use");
    EXPECT_TRUE(taken.running()) << "the first sink must not be disturbed";
}

}  // namespace
}  // namespace taskpipe::testing
