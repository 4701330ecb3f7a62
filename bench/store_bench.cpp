// How fast the service-mode task store (ventilator/store.hpp) accepts submissions: group
// commits of 1, 10, 100, 1000 submissions, with and without results recorded in the same
// commits, on the file system of a directory.
//
//   store_bench [--dir DIR] [--seconds S] [--payload BYTES] [--keys] [--no-fsync] [--memory]
//               [--groups 1,10,100,1000 | --rate 50000,...]
//
// For each group size and mode it runs groups back to back for S seconds (at least 20 groups)
// in a fresh store in DIR, and prints one row: submissions per second over the whole run, and
// the p50/p99/max of the commit() call and of the whole group (its submissions, results and
// commit). A submission waits for the group in progress, then for its own, so its
// submit-to-answer time is at most about two group times (plus the network).
//
// --rate runs the head's loop in miniature instead (run_open_loop): submissions arrive at a
// fixed rate, each loop iteration commits all that have arrived as one group, and the row
// gives the latency from arrival to the end of the commit: what the store adds to a
// producer's submit-to-answer time at that rate.
//
// "with results" is the steady state of a busy head: each group also marks as many earlier
// tasks sent, records their results (200 bytes of stdout), and expires as many old ones, so
// the database stays the same size.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "store.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using taskpipe::StoredResult;
using taskpipe::Submission;
using taskpipe::TaskStore;

struct Options {
    std::string dir = "/tmp";
    double seconds = 2.0;
    std::size_t payload = 100;
    bool keys = false;
    bool fsync = true;
    bool memory = false;
    std::vector<std::size_t> groups = {1, 10, 100, 1000};
    std::vector<double> rates;  // open-loop rows at these rates, instead of the group rows
};

[[noreturn]] void usage(const std::string& error) {
    std::cerr << "store_bench: " << error
              << "\nusage: store_bench [--dir DIR] [--seconds S] [--payload BYTES] [--keys] "
                 "[--no-fsync] [--memory] [--groups 1,10,100,1000 | --rate R,...]\n";
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(arg + " needs a value");
            return argv[++i];
        };
        if (arg == "--dir") {
            o.dir = value();
        } else if (arg == "--seconds") {
            o.seconds = std::stod(value());
        } else if (arg == "--payload") {
            o.payload = std::stoul(value());
        } else if (arg == "--keys") {
            o.keys = true;
        } else if (arg == "--no-fsync") {
            o.fsync = false;
        } else if (arg == "--memory") {
            o.memory = true;
        } else if (arg == "--rate") {
            std::stringstream list(value());
            for (std::string item; std::getline(list, item, ',');)
                o.rates.push_back(std::stod(item));
        } else if (arg == "--groups") {
            o.groups.clear();
            std::stringstream list(value());
            for (std::string item; std::getline(list, item, ',');)
                o.groups.push_back(std::stoul(item));
        } else {
            usage("unknown argument " + arg);
        }
    }
    return o;
}

double millis(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// The q-quantile of `samples` (sorted in place).
double quantile(std::vector<double>& samples, double q) {
    std::sort(samples.begin(), samples.end());
    const auto index = static_cast<std::size_t>(q * static_cast<double>(samples.size() - 1) + 0.5);
    return samples[index];
}

// This process's resident set now and at its peak, in MiB, from /proc/self/status.
std::string memory_use() {
    std::ifstream status("/proc/self/status");
    std::string line, rss = "?", peak = "?";
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) rss = line.substr(6);
        if (line.rfind("VmHWM:", 0) == 0) peak = line.substr(6);
    }
    const auto trim = [](std::string s) {
        s.erase(0, s.find_first_not_of(" \t"));
        return s;
    };
    return "RSS " + trim(rss) + ", peak " + trim(peak);
}

// The disk's own latency: `count` times, overwrite 4 KiB of a file in `dir` and fdatasync it
// (what a commit of a small group costs at least). Returns {p50, p99} in ms.
std::pair<double, double> fdatasync_latency(const std::string& dir, int count) {
    const auto path = dir + "/store_bench." + std::to_string(::getpid()) + ".sync";
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error("cannot create " + path);
    const std::string block(4096, 'x');
    std::vector<double> samples;
    for (int i = 0; i < count; ++i) {
        const auto start = Clock::now();
        if (::pwrite(fd, block.data(), block.size(), 0) != static_cast<ssize_t>(block.size()) ||
            ::fdatasync(fd) != 0) {
            ::close(fd);
            throw std::runtime_error("cannot write " + path);
        }
        samples.push_back(millis(Clock::now() - start));
    }
    ::close(fd);
    std::filesystem::remove(path);
    return {quantile(samples, 0.5), quantile(samples, 0.99)};
}

std::string load_average() {
    std::ifstream in("/proc/loadavg");
    std::string one, five;
    in >> one >> five;
    return one + " " + five;
}

// CPU time this process has used (all threads, user and system), in seconds.
double cpu_seconds() {
    struct rusage usage {};
    ::getrusage(RUSAGE_SELF, &usage);
    const auto seconds = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// A fresh store in `dir` (removed afterwards) and the tasks that go through it.
class Workload {
  public:
    Workload(const Options& o, bool results)
        : path_(o.dir + "/store_bench." + std::to_string(::getpid()) + ".db"),
          keys_(o.keys),
          results_(results),
          payload_(o.payload, 'p') {
        remove_files();
        store_ = o.memory ? taskpipe::make_memory_store()
                          : taskpipe::open_sqlite_store(path_, {.fsync_commits = o.fsync});
        result_.out = std::string(200, 'o');
        result_.worker = "bench-host:4242";
        result_.exit_code = 0;
    }
    ~Workload() {
        store_.reset();
        remove_files();
    }
    Workload(const Workload&) = delete;
    Workload& operator=(const Workload&) = delete;

    // One submission; with results, also the result of the task `kLag` ids older.
    void add() {
        Submission s{payload_, std::nullopt, 0, next_};
        if (keys_) s.key = "key-" + std::to_string(next_);
        store_->submit(s);
        if (results_ && next_ > kLag) {
            const auto id = next_ - kLag;
            store_->mark_sent(id, 1);
            result_.finished_us = next_;
            store_->record(id, result_);
        }
        ++next_;
        ++in_group_;
    }

    // Ends the group: with results, expires as many old tasks as it added; commits.
    void commit() {
        if (results_ && next_ > kKeep) store_->expire(next_ - kKeep, in_group_);
        in_group_ = 0;
        store_->commit();
    }

  private:
    // With results, tasks finish kLag ids behind the newest and expire kKeep ids after that.
    static constexpr std::uint64_t kLag = 2000, kKeep = 10000;

    void remove_files() {
        for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + suffix);
    }

    std::string path_;
    bool keys_, results_;
    std::string payload_;
    std::unique_ptr<TaskStore> store_;
    StoredResult result_;
    std::uint64_t next_ = 1;  // also the clock, in made-up microseconds
    std::size_t in_group_ = 0;
};

struct Run {
    std::size_t submissions = 0;
    double seconds = 0;
    double cpu_seconds = 0;
    std::vector<double> commit_ms, group_ms;
};

// Groups of `group` submissions back to back.
Run run_groups(const Options& o, std::size_t group, bool results) {
    Workload work(o, results);
    Run r;
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::duration<double>(o.seconds);
    const auto cpu_start = cpu_seconds();
    while (Clock::now() < deadline || r.group_ms.size() < 20) {
        const auto group_start = Clock::now();
        for (std::size_t i = 0; i < group; ++i) work.add();
        const auto commit_start = Clock::now();
        work.commit();
        const auto end = Clock::now();
        r.commit_ms.push_back(millis(end - commit_start));
        r.group_ms.push_back(millis(end - group_start));
        r.submissions += group;
    }
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    r.cpu_seconds = cpu_seconds() - cpu_start;
    return r;
}

struct OpenLoop {
    std::size_t submissions = 0;
    std::size_t groups = 0;
    std::size_t backlog = 0;  // arrived but not committed when the time was up
    std::vector<double> latency_ms;
};

// The head's loop in miniature: submissions arrive at `rate` per second whether or not the
// store keeps up; each iteration takes every one that has arrived, submits and commits them as
// one group. Latency: from a submission's arrival to the end of its commit.
OpenLoop run_open_loop(const Options& o, double rate, bool results) {
    Workload work(o, results);
    OpenLoop r;
    const auto start = Clock::now();
    const auto duration = std::chrono::duration<double>(o.seconds);
    const auto arrival = [&](std::size_t i) {
        return start + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(static_cast<double>(i) / rate));
    };
    std::vector<Clock::time_point> group;
    for (;;) {
        auto now = Clock::now();
        if (now - start >= duration) break;
        if (arrival(r.submissions) > now) {
            std::this_thread::sleep_until(arrival(r.submissions));
            continue;
        }
        group.clear();
        while (arrival(r.submissions) <= now) {
            group.push_back(arrival(r.submissions++));
            work.add();
        }
        work.commit();
        now = Clock::now();
        for (const auto arrived : group) r.latency_ms.push_back(millis(now - arrived));
        ++r.groups;
    }
    const auto end = Clock::now();
    while (arrival(r.submissions + r.backlog) <= end) ++r.backlog;
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const auto o = parse(argc, argv);
        std::cout << "store_bench: " << (o.memory ? "memory store" : "SQLite store in " + o.dir)
                  << (o.memory  ? ""
                      : o.fsync ? ", fsync per commit"
                                : ", no fsync (NORMAL)")
                  << ", payload " << o.payload << " B" << (o.keys ? ", with keys" : "") << ", "
                  << o.seconds << " s per row; load average " << load_average() << "\n";
        if (!o.memory) {
            const auto [p50, p99] = fdatasync_latency(o.dir, 200);
            std::printf("the disk: 4 KiB pwrite + fdatasync p50 %.3f ms, p99 %.3f ms\n", p50, p99);
        }
        if (!o.rates.empty()) {
            std::printf("%8s %8s %10s %8s %8s %9s %9s %9s\n", "rate", "results", "subm/s",
                        "backlog", "group", "lat50", "lat99", "latmx");
            for (const bool results : {false, true}) {
                for (const auto rate : o.rates) {
                    auto r = run_open_loop(o, rate, results);
                    std::printf("%8.0f %8s %10.0f %8zu %8.1f %9.3f %9.3f %9.3f\n", rate,
                                results ? "yes" : "no",
                                static_cast<double>(r.submissions) / o.seconds, r.backlog,
                                static_cast<double>(r.submissions) /
                                    static_cast<double>(std::max<std::size_t>(r.groups, 1)),
                                quantile(r.latency_ms, 0.5), quantile(r.latency_ms, 0.99),
                                quantile(r.latency_ms, 1.0));
                    std::fflush(stdout);
                }
            }
            std::cout << "(lat: arrival to the end of its commit, ms; backlog: arrived, not yet "
                         "committed at the end; group: mean submissions per commit; "
                      << memory_use() << ")\n";
            return 0;
        }
        std::printf("%6s %8s %10s %8s %9s %9s %9s %9s %9s %9s\n", "group", "results", "subm/s",
                    "cpu_us", "commit50", "commit99", "commitmx", "group50", "group99", "groupmx");
        for (const bool results : {false, true}) {
            for (const auto group : o.groups) {
                auto r = run_groups(o, group, results);
                const auto submissions = static_cast<double>(r.submissions);
                std::printf("%6zu %8s %10.0f %8.2f %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f\n", group,
                            results ? "yes" : "no", submissions / r.seconds,
                            r.cpu_seconds * 1e6 / submissions, quantile(r.commit_ms, 0.5),
                            quantile(r.commit_ms, 0.99), quantile(r.commit_ms, 1.0),
                            quantile(r.group_ms, 0.5), quantile(r.group_ms, 0.99),
                            quantile(r.group_ms, 1.0));
                std::fflush(stdout);
            }
        }
        std::cout << "(times in ms; cpu_us: CPU time per submission, all threads; " << memory_use()
                  << ")\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "store_bench: " << e.what() << "\n";
        return 2;
    }
}
