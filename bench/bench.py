"""Runs the benchmark scenarios and writes the results section of docs/performance.md.

Usage: python3 bench/bench.py --build-dir DIR [--quick] [--only NAME,...] [--out FILE]
(bench/run.sh is the front door: it builds zmq_limit if needed and installs GNU parallel.)
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile

import report
import scenarios
from harness import BenchError, Bins

ALL = ["trivial", "process", "latency", "fairness", "fairness_per_task", "memory", "scaling",
       "run", "service"]


def sh(cmd, cwd=None):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True, cwd=cwd)
    return r.stdout.strip() if r.returncode == 0 else ""


def machine_info(build_dir, repo):
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), "unknown")
    cache = os.path.join(build_dir, "CMakeCache.txt")
    build_type = next((line.split("=", 1)[1].strip() for line in open(cache)
                       if line.startswith("CMAKE_BUILD_TYPE:")), "?") if os.path.exists(cache) else "?"
    commit = sh("git rev-parse --short HEAD", repo)
    dirty = " (working tree modified)" if sh("git status --porcelain -uno", repo) else ""
    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": str(os.cpu_count()),
        "CPU": cpu,
        "kernel": f"{platform.system()} {platform.release()}",
        "memory": sh("free -m | awk '/^Mem:/ {print $2 \" MiB\"}'"),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "taskpipe": f"{commit}{dirty}, {build_type} build",
        "compiler": sh(f"grep -m1 '^CMAKE_CXX_COMPILER:' {shlex.quote(cache)} | cut -d= -f2 "
                       "| xargs -r -I{} sh -c '{} --version | head -1'"),
        "libzmq": sh("pkg-config --modversion libzmq") or "?",
        "GNU parallel": sh("parallel --version 2>/dev/null | head -1") or "not installed",
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--quick", action="store_true",
                    help="3 runs everywhere, 1,000 processes instead of 10,000 (100 instead of "
                    "200 for GNU parallel) and 10^6 instead of 10^7 tasks for memory")
    ap.add_argument("--baseline", help="another build directory, run in turn with the first in "
                    "the process per task measurement")
    ap.add_argument("--only", default=",".join(ALL), help="comma-separated: " + ",".join(ALL))
    ap.add_argument("--out", help="markdown file to update (default docs/performance.md)")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--command", default="bench/run.sh", help="how the harness was invoked")
    args = ap.parse_args()

    # SIGTERM unwinds like Ctrl-C, so that every `with Procs` block ends its processes.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = args.out or os.path.join(repo, "docs", "performance.md")
    bins = Bins(os.path.abspath(args.build_dir))
    baseline = Bins(os.path.abspath(args.baseline), need_limit=False) if args.baseline else None
    machine = machine_info(args.build_dir, repo)
    if baseline:
        machine["baseline (process per task only)"] = f"`{args.baseline}`"
    only = args.only.split(",")
    unknown = set(only) - set(ALL)
    if unknown:
        ap.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    cheap = 3 if args.quick else 5
    results = {}
    with tempfile.TemporaryDirectory(prefix="taskpipe-bench-") as work:
        plan = {
            "trivial": lambda: scenarios.trivial_throughput(bins, work, cheap),
            "process": lambda: scenarios.process_per_task(
                bins, work, 3, *((1000, 100) if args.quick else (10000, 200)), baseline=baseline),
            "latency": lambda: scenarios.latency(bins, work, 3),
            "fairness": lambda: scenarios.fairness(bins, work, 3),
            "fairness_per_task": lambda: scenarios.fairness_per_task(bins, work, 3),
            "memory": lambda: scenarios.memory(
                bins, work, [100_000, 1_000_000 if args.quick else 10_000_000], 3),
            "scaling": lambda: scenarios.scaling(bins, work, 3),
            "run": lambda: scenarios.one_command(bins, work, 1 if args.quick else 3),
            "service": lambda: scenarios.service(bins, work, 3),
        }
        for name in ALL:
            if name in only:
                scenarios.log(f"--- {name}")
                results[name] = plan[name]()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "results": results}, f, indent=1)
    report.write(out, results, machine, args.command)
    scenarios.log(f"wrote {out}")


if __name__ == "__main__":
    try:
        main()
    except BenchError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        sys.exit(3)
