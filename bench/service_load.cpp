// service_load: a load generator for taskpipe's service mode (ventilator --serve): N producers,
// each its own DEALER connection to the head's listen endpoint, speaking the producer protocol
// of docs/protocol.md ("Service mode") with the project's codec.
//
//   service_load --connect ENDPOINT [--producers N] [--tasks N] [--window W] [--rate R]
//                [--payload BYTES] [--no-notify] [--timeout S]
//
// Without --rate (closed loop): each producer keeps W submissions outstanding (sent, not yet
// answered) and submits its share of the tasks as fast as the head answers. With --rate R
// (open loop): the producers together submit R per second on a fixed schedule (at most W
// outstanding each), for latency at a given load.
//
// Before the clock starts, every producer connects and runs one warm-up task to its `done`;
// then all start together. With notify (the default) a producer waits for the `done` of every
// task it submitted; with --no-notify only for the answers.
//
// Prints one JSON object on stdout:
//   accepted_per_s   tasks / (first submit to last `accepted`), over all producers
//   done_per_s       tasks / (first submit to last `done`) (notify only)
//   accept_us        p50, p99, max of each task's submit -> `accepted` time
//   done_us          p50, p99, max of each task's submit -> `done` time (notify only)
//   errors           `error` answers by code; any makes the exit status 1
// Exit status: 0 ok, 1 some submissions were refused or some tasks did not finish ok, 2 usage
// or a timeout (--timeout, 600 s by default, from the start).
#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include <zmq.hpp>

#include "taskpipe/codec.hpp"
#include "taskpipe/message.hpp"
#include "taskpipe/message_io.hpp"
#include "taskpipe/overload.hpp"
#include "taskpipe/sockets.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using taskpipe::Accepted;
using taskpipe::Done;
using taskpipe::Error;
using taskpipe::State;
using taskpipe::Submit;
using taskpipe::ToHead;
using taskpipe::ToProducer;

struct Options {
    std::string connect;
    int producers = 4;
    std::size_t tasks = 50'000;
    std::size_t window = 256;
    double rate = 0;  // 0: closed loop
    std::size_t payload = 39;
    bool notify = true;
    double timeout_s = 600;
};

[[noreturn]] void usage(const std::string& error) {
    std::cerr << "service_load: " << error
              << "\nusage: service_load --connect ENDPOINT [--producers N] [--tasks N] "
                 "[--window W] [--rate R] [--payload BYTES] [--no-notify] [--timeout S]\n";
    std::exit(2);
}

Options parse_options(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(arg + " needs a value");
            return argv[++i];
        };
        try {
            if (arg == "--connect") {
                o.connect = value();
            } else if (arg == "--producers") {
                o.producers = std::stoi(value());
            } else if (arg == "--tasks") {
                o.tasks = std::stoul(value());
            } else if (arg == "--window") {
                o.window = std::stoul(value());
            } else if (arg == "--rate") {
                o.rate = std::stod(value());
            } else if (arg == "--payload") {
                o.payload = std::stoul(value());
            } else if (arg == "--no-notify") {
                o.notify = false;
            } else if (arg == "--timeout") {
                o.timeout_s = std::stod(value());
            } else {
                usage("unknown argument " + arg);
            }
        } catch (const std::logic_error&) {
            usage("bad value for " + arg);
        }
    }
    if (o.connect.empty()) usage("--connect is required");
    if (o.producers < 1 || o.producers > 64) usage("--producers must be 1 to 64");
    if (o.tasks < static_cast<std::size_t>(o.producers)) usage("--tasks must be >= --producers");
    if (o.window < 1 || o.window > 5000) usage("--window must be 1 to 5000");
    if (o.rate < 0) usage("--rate must be positive");
    return o;
}

// What one producer saw. Times are microseconds since the common start.
struct Outcome {
    std::vector<double> accept_us, done_us;
    double first_send_us = 0, last_accept_us = 0, last_done_us = 0;
    std::map<std::string, std::size_t> errors;
    std::size_t not_ok = 0;      // finished in a state other than ok
    std::size_t unexpected = 0;  // malformed frames, or answers to requests never sent
    bool timed_out = false;
};

// A producer's DEALER: deep queues both ways (the head may push a `done` for every task in the
// window and more), no ZMTP heartbeats on a loopback benchmark.
taskpipe::SocketOptions producer_socket_options() {
    taskpipe::SocketOptions o;
    o.send_hwm = 10'000;
    o.receive_hwm = 100'000;
    o.heartbeat_interval_ms = 0;
    return o;
}

// One producer: its own connection, its share of the tasks, what it heard. Used by one thread
// at a time (warm_up, then run); the context must outlive it.
class Producer {
  public:
    Producer(zmq::context_t& context, const Options& o, std::size_t tasks, double rate)
        : o_(o),
          tasks_(tasks),
          rate_(rate),
          socket_(taskpipe::connect_socket(context, zmq::socket_type::dealer,
                                           producer_socket_options(), o.connect)),
          payload_(o.payload, 'x'),
          sent_(tasks + 1) {}

    // Submits one task and waits for its `done`: the connection is up and the head serves.
    void warm_up(Clock::time_point deadline) {
        send(0, /*notify=*/true);
        bool done = false;
        while (!done) {
            if (Clock::now() > deadline) throw std::runtime_error("the warm-up task timed out");
            std::vector<zmq::pollitem_t> items{{socket_.handle(), 0, ZMQ_POLLIN, 0}};
            taskpipe::poll(items, std::chrono::milliseconds(100));
            while (auto received = taskpipe::recv_message<ToProducer>(socket_)) {
                if (!received->message) continue;
                std::visit(taskpipe::Overload{
                               [&](const Error& e) {
                                   throw std::runtime_error("the warm-up task was refused: " +
                                                            e.code + ": " + e.message);
                               },
                               [&](const Done&) { done = true; },
                               [](const Accepted&) {},
                               [](const State&) {},
                           },
                           *received->message);
            }
        }
    }

    Outcome run(Clock::time_point start, Clock::time_point deadline) {
        start_ = start;
        out_.accept_us.reserve(tasks_);
        if (o_.notify) out_.done_us.reserve(tasks_);
        std::size_t next = 1;  // the next req to send; reqs are 1..tasks_
        const auto interval = rate_ > 0 ? std::chrono::duration<double>(1.0 / rate_)
                                        : std::chrono::duration<double>(0);
        while (accepted_ + refused_ < tasks_ || (o_.notify && finished_ < accepted_)) {
            const auto now = Clock::now();
            if (now > deadline) {
                out_.timed_out = true;
                break;
            }
            // Send what the window (and the schedule) allows.
            std::optional<Clock::time_point> next_due;
            while (next <= tasks_ && next - 1 - accepted_ - refused_ < o_.window) {
                if (rate_ > 0) {
                    const auto due = start + std::chrono::duration_cast<Clock::duration>(
                                                 interval * static_cast<double>(next - 1));
                    if (due > Clock::now()) {
                        next_due = due;
                        break;
                    }
                }
                if (!send(next, o_.notify)) break;  // the socket's queue is full: read first
                ++next;
            }
            auto wait = std::chrono::milliseconds(100);
            if (next_due) {
                wait = std::max(
                    std::chrono::milliseconds(0),
                    std::chrono::ceil<std::chrono::milliseconds>(*next_due - Clock::now()));
            }
            if (!receive_all() && wait.count() > 0) {
                std::vector<zmq::pollitem_t> items{{socket_.handle(), 0, ZMQ_POLLIN, 0}};
                taskpipe::poll(items, wait);
                receive_all();
            }
        }
        return std::move(out_);
    }

  private:
    double since_start_us(Clock::time_point t) const {
        return std::chrono::duration<double, std::micro>(t - start_).count();
    }

    bool send(std::size_t req, bool notify) {
        const Submit submit{req, payload_, std::nullopt, 0, 0, notify};
        const auto now = Clock::now();
        if (!taskpipe::send_message<ToHead>(socket_, encoder_, submit)) return false;
        if (req > 0) {
            sent_[req] = now;
            if (req == 1) out_.first_send_us = since_start_us(now);
        }
        return true;
    }

    // Handles every message queued on the socket; false when there was none.
    bool receive_all() {
        bool any = false;
        while (auto received = taskpipe::recv_message<ToProducer>(socket_)) {
            any = true;
            const auto now = Clock::now();
            if (!received->message) {
                ++out_.unexpected;
                continue;
            }
            std::visit(
                taskpipe::Overload{
                    [&](const Accepted& m) {
                        if (m.req == 0) return;  // the warm-up task's
                        if (m.req > tasks_) return void(++out_.unexpected);
                        ++accepted_;
                        out_.accept_us.push_back(
                            std::chrono::duration<double, std::micro>(now - sent_[m.req]).count());
                        out_.last_accept_us = since_start_us(now);
                        if (o_.notify) submitted_by_id_.emplace(m.id, sent_[m.req]);
                    },
                    [&](const Done& m) {
                        const auto it = submitted_by_id_.find(m.id);
                        if (it == submitted_by_id_.end()) return;  // the warm-up's
                        ++finished_;
                        out_.not_ok += m.state != "ok";
                        out_.done_us.push_back(
                            std::chrono::duration<double, std::micro>(now - it->second).count());
                        out_.last_done_us = since_start_us(now);
                        submitted_by_id_.erase(it);
                    },
                    [&](const Error& m) {
                        ++refused_;
                        ++out_.errors[m.code];
                    },
                    [&](const State&) { ++out_.unexpected; },
                },
                *received->message);
        }
        return any;
    }

    const Options& o_;
    std::size_t tasks_;
    double rate_;
    zmq::socket_t socket_;
    taskpipe::Encoder encoder_;
    std::string payload_;
    std::vector<Clock::time_point> sent_;  // by req
    std::unordered_map<std::uint64_t, Clock::time_point> submitted_by_id_;
    Clock::time_point start_;
    std::size_t accepted_ = 0, refused_ = 0, finished_ = 0;
    Outcome out_;
};

// Nearest-rank percentile of sorted values.
double percentile(const std::vector<double>& sorted, double p) {
    if (sorted.empty()) return 0;
    const auto rank = static_cast<std::size_t>(
        std::max(1.0, std::ceil(p / 100.0 * static_cast<double>(sorted.size()))));
    return sorted[std::min(sorted.size(), rank) - 1];
}

std::string quantiles(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    char buf[160];
    std::snprintf(buf, sizeof buf, "{\"p50\": %.1f, \"p99\": %.1f, \"max\": %.1f, \"n\": %zu}",
                  percentile(values, 50), percentile(values, 99),
                  values.empty() ? 0.0 : values.back(), values.size());
    return buf;
}

int run(const Options& o) {
    zmq::context_t context(1);
    const auto begin = Clock::now();
    const auto deadline = begin + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(o.timeout_s));
    std::vector<std::unique_ptr<Producer>> producers;
    for (int i = 0; i < o.producers; ++i) {
        const std::size_t share =
            o.tasks / static_cast<std::size_t>(o.producers) +
            (static_cast<std::size_t>(i) < o.tasks % static_cast<std::size_t>(o.producers));
        producers.push_back(std::make_unique<Producer>(context, o, share, o.rate / o.producers));
    }
    std::vector<Outcome> outcomes(producers.size());
    std::barrier ready(o.producers + 1);
    std::atomic<bool> failed{false};
    std::mutex error_mutex;
    std::string error;
    Clock::time_point start;
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < producers.size(); ++i) {
        threads.emplace_back([&, i] {
            try {
                producers[i]->warm_up(deadline);
            } catch (const std::exception& e) {
                failed = true;
                const std::lock_guard lock(error_mutex);
                error = e.what();
            }
            ready.arrive_and_wait();  // every warm-up done
            ready.arrive_and_wait();  // start set
            if (!failed) outcomes[i] = producers[i]->run(start, deadline);
        });
    }
    ready.arrive_and_wait();
    start = Clock::now();
    ready.arrive_and_wait();
    for (std::thread& t : threads) t.join();
    if (failed) {
        std::cerr << "service_load: " << error << "\n";
        return 2;
    }

    std::vector<double> accept, done;
    double first = 1e300, last_accept = 0, last_done = 0;
    std::map<std::string, std::size_t> errors;
    std::size_t not_ok = 0, unexpected = 0;
    bool timed_out = false;
    for (Outcome& r : outcomes) {
        accept.insert(accept.end(), r.accept_us.begin(), r.accept_us.end());
        done.insert(done.end(), r.done_us.begin(), r.done_us.end());
        first = std::min(first, r.first_send_us);
        last_accept = std::max(last_accept, r.last_accept_us);
        last_done = std::max(last_done, r.last_done_us);
        for (const auto& [code, n] : r.errors) errors[code] += n;
        not_ok += r.not_ok;
        unexpected += r.unexpected;
        timed_out = timed_out || r.timed_out;
    }
    const auto per_s = [&](std::size_t n, double until_us) {
        return until_us > first ? static_cast<double>(n) / ((until_us - first) / 1e6) : 0.0;
    };
    std::string error_list;
    for (const auto& [code, n] : errors) {
        error_list += (error_list.empty() ? "\"" : ", \"") + code + "\": " + std::to_string(n);
    }
    std::printf(
        "{\"producers\": %d, \"tasks\": %zu, \"window\": %zu, \"rate\": %.0f, \"notify\": %s, "
        "\"accepted\": %zu, \"done\": %zu, \"accepted_per_s\": %.0f, \"done_per_s\": %.0f, "
        "\"accept_us\": %s, \"done_us\": %s, \"errors\": {%s}, \"not_ok\": %zu, "
        "\"unexpected\": %zu, \"timed_out\": %s}\n",
        o.producers, o.tasks, o.window, o.rate, o.notify ? "true" : "false", accept.size(),
        done.size(), per_s(accept.size(), last_accept), per_s(done.size(), last_done),
        quantiles(accept).c_str(), quantiles(done).c_str(), error_list.c_str(), not_ok, unexpected,
        timed_out ? "true" : "false");
    std::fflush(stdout);
    if (timed_out) {
        std::cerr << "service_load: timed out after " << o.timeout_s << " s\n";
        return 2;
    }
    return errors.empty() && not_ok == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(parse_options(argc, argv));
    } catch (const std::exception& e) {
        std::cerr << "service_load: " << e.what() << "\n";
        return 2;
    }
}
