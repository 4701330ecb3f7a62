// How fast the service-mode task store (ventilator/store.hpp) accepts submissions: group
// commits of 1, 10, 100, 1000 submissions, with and without results recorded in the same
// commits, on the file system of a directory.
//
//   store_bench [--dir DIR] [--seconds S] [--payload BYTES] [--keys] [--no-fsync] [--memory]
//               [--groups 1,10,100,1000]
//
// For each group size and mode it runs groups back to back for S seconds (at least 20 groups)
// in a fresh store in DIR, and prints one row: submissions per second over the whole run, and
// the p50/p99/max of the commit() call and of the whole group (its submissions, results and
// commit). A submission waits for the group in progress, then for its own, so its
// submit-to-answer time is at most about two group times (plus the network).
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
};

[[noreturn]] void usage(const std::string& error) {
    std::cerr << "store_bench: " << error
              << "\nusage: store_bench [--dir DIR] [--seconds S] [--payload BYTES] [--keys] "
                 "[--no-fsync] [--memory] [--groups 1,10,100,1000]\n";
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

struct Run {
    std::size_t submissions = 0;
    double seconds = 0;
    double cpu_seconds = 0;
    std::vector<double> commit_ms, group_ms;
};

Run run(const Options& o, std::size_t group, bool results) {
    const auto path = o.dir + "/store_bench." + std::to_string(::getpid()) + ".db";
    std::filesystem::remove(path);
    std::filesystem::remove(path + "-wal");
    Run r;
    {
        std::unique_ptr<TaskStore> store =
            o.memory ? taskpipe::make_memory_store()
                     : taskpipe::open_sqlite_store(path, {.fsync_commits = o.fsync});
        const std::string payload(o.payload, 'p');
        StoredResult result;
        result.out = std::string(200, 'o');
        result.worker = "bench-host:4242";
        result.exit_code = 0;
        // With results, tasks finish `lag` ids behind the newest and expire `keep` ids later.
        const std::uint64_t lag = 2000, keep = 10000;
        std::uint64_t next = 1, clock_us = 1;

        const auto deadline = Clock::now() + std::chrono::duration<double>(o.seconds);
        const auto start = Clock::now();
        const auto cpu_start = cpu_seconds();
        while (Clock::now() < deadline || r.group_ms.size() < 20) {
            const auto group_start = Clock::now();
            for (std::size_t i = 0; i < group; ++i, ++next, ++clock_us) {
                Submission s{payload, std::nullopt, 0, clock_us};
                if (o.keys) s.key = "key-" + std::to_string(next);
                store->submit(s);
                if (results && next > lag) {
                    const auto id = next - lag;
                    store->mark_sent(id, 1);
                    result.finished_us = clock_us;
                    store->record(id, result);
                }
            }
            if (results && clock_us > keep) store->expire(clock_us - keep, group);
            const auto commit_start = Clock::now();
            store->commit();
            const auto end = Clock::now();
            r.commit_ms.push_back(millis(end - commit_start));
            r.group_ms.push_back(millis(end - group_start));
            r.submissions += group;
        }
        r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
        r.cpu_seconds = cpu_seconds() - cpu_start;
    }
    std::filesystem::remove(path);
    std::filesystem::remove(path + "-wal");
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
        std::printf("%6s %8s %10s %8s %9s %9s %9s %9s %9s %9s\n", "group", "results", "subm/s",
                    "cpu_us", "commit50", "commit99", "commitmx", "group50", "group99", "groupmx");
        for (const bool results : {false, true}) {
            for (const auto group : o.groups) {
                auto r = run(o, group, results);
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
