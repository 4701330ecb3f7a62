"""The six measurements of docs/performance.md. Each returns a dict of raw per-run values and
the commands it ran; report.py turns them into medians, ratios and the table."""

import json
import os
import select
import statistics
import subprocess
import time

from harness import (GNU_TIME, LOOPBACK_ANY, BenchError, Procs, free_tcp_port, run_pipeline,
                     run_timed, run_zmq_limit)

# How each program is started (ports are picked at run time; see harness.py).
SINK_CMD = "taskpipe sink --bind 'tcp://127.0.0.1:*' --control 'tcp://127.0.0.1:*' > /dev/null"
WORKER_CMD = "taskpipe worker --ventilator tcp://127.0.0.1:$VPORT --sink $RESULTS"
VENT_CMD = "taskpipe ventilator --bind tcp://127.0.0.1:$VPORT --sink $CONTROL < input"


def write_lines(path, count, line=lambda i: b"%d\n" % i):
    """Writes `count` lines (1-based), in chunks; returns the path."""
    if os.path.exists(path):
        return path
    with open(path + ".tmp", "wb") as f:
        chunk = 100_000
        for base in range(1, count + 1, chunk):
            f.write(b"".join(line(i) for i in range(base, min(base + chunk, count + 1))))
    os.rename(path + ".tmp", path)
    return path


def trivial_line(i):
    """A 39-byte payload plus its newline: the ~40-byte trivial task."""
    return b"task-%034d\n" % i


def trivial_input(workdir, count):
    return write_lines(os.path.join(workdir, f"trivial-{count}.txt"), count, trivial_line)


def log(msg):
    print(f"bench: {msg}", flush=True)


def trivial_throughput(bins, workdir, runs, count=1_000_000):
    """1: trivial tasks through taskpipe, next to the same frames through zmq_limit."""
    path = trivial_input(workdir, count)
    taskpipe, limit = [], []
    frames = summary = ""
    for r in range(runs):
        res = run_pipeline(bins, workdir, [["--builtin", "echo"]] * 2, path)
        taskpipe.append(res["wall_s"])
        summary = res["summary"]
        lim = run_zmq_limit(bins, workdir, path, count)
        limit.append(lim["wall_s"])
        frames = lim["frames"]
        log(f"trivial run {r + 1}/{runs}: taskpipe {count / taskpipe[-1]:,.0f} tasks/s, "
            f"limit {count / limit[-1]:,.0f} msgs/s")
    return {
        "count": count, "taskpipe_s": taskpipe, "limit_s": limit, "frames": frames,
        "sink_summary": summary,
        "commands": [
            SINK_CMD, f"{WORKER_CMD} --builtin echo   # twice", VENT_CMD,
            "zmq_limit collect 'tcp://127.0.0.1:*' 1000000 > /dev/null",
            "zmq_limit relay tcp://127.0.0.1:$SPORT $COLLECTOR   # twice",
            "zmq_limit source tcp://127.0.0.1:$SPORT < input",
        ],
    }


def process_per_task(bins, workdir, runs, count=10000, parallel_count=200, baseline=None):
    """2: one process per task: taskpipe's worker, xargs -P and GNU parallel, 2 at a time;
    with `baseline` (the Bins of another build), that build's taskpipe too, in turn."""
    path = write_lines(os.path.join(workdir, f"seq-{count}.txt"), count)
    ppath = write_lines(os.path.join(workdir, f"seq-{parallel_count}.txt"), parallel_count)
    parallel_bin = subprocess.run(["sh", "-c", "command -v parallel"], capture_output=True,
                                  text=True).stdout.strip()
    taskpipe, xargs, parallel, base = [], [], [], []
    for r in range(runs):
        taskpipe.append(run_pipeline(bins, workdir, [["-c", "2", "--", "true"]], path)["wall_s"])
        if baseline:
            base.append(run_pipeline(baseline, workdir, [["-c", "2", "--", "true"]],
                                     path)["wall_s"])
        xargs.append(run_timed(workdir, "xargs", ["xargs", "-P", "2", "-n", "1", "true"], path))
        if parallel_bin:
            parallel.append(run_timed(workdir, "parallel",
                                      [parallel_bin, "--will-cite", "-j", "2", "true"], ppath))
        log(f"process-per-task run {r + 1}/{runs}: taskpipe {count / taskpipe[-1]:,.0f}/s, "
            + (f"baseline {count / base[-1]:,.0f}/s, " if baseline else "")
            + f"xargs {count / xargs[-1]:,.0f}/s"
            + (f", parallel {parallel_count / parallel[-1]:,.0f}/s" if parallel_bin else ""))
    return {
        "count": count, "parallel_count": parallel_count, "taskpipe_s": taskpipe,
        "xargs_s": xargs, "parallel_s": parallel, "parallel_found": bool(parallel_bin),
        "baseline_s": base, "baseline_dir": baseline.build_dir if baseline else None,
        "commands": [
            SINK_CMD, f"{WORKER_CMD} -c 2 -- true", VENT_CMD + f"   # seq 1 {count}",
            f"xargs -P 2 -n 1 true < input   # seq 1 {count}",
            f"parallel --will-cite -j 2 true < input   # seq 1 {parallel_count}",
        ],
    }


def _read_line(fd, buf, timeout):
    """Reads up to and including the next newline from fd; returns (line, rest)."""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise BenchError("no result within %.0f s" % timeout)
        data = os.read(fd, 65536)
        if not data:
            raise BenchError("the sink closed its stdout")
        buf += data
    line, _, rest = buf.partition(b"\n")
    return line, rest


def latency(bins, workdir, runs, samples=1000, rate=100, warmup=20):
    """3: one task at a time at `rate`/s; latency from the ventilator's stdin to the sink's
    stdout, as seen by this driver."""
    per_run = []
    for r in range(runs):
        with Procs(workdir) as procs:
            sink = procs.start("sink", [bins.sink, "--bind", LOOPBACK_ANY, "--control",
                                        LOOPBACK_ANY], stdout=subprocess.PIPE)
            results, control = sink.endpoint("sink info: results"), sink.endpoint("sink info: control")
            tasks = f"tcp://127.0.0.1:{free_tcp_port()}"
            for i in range(2):
                procs.start(f"worker{i}", [bins.worker, "--ventilator", tasks, "--sink", results,
                                           "--builtin", "echo"])
            vent = procs.start("ventilator", [bins.ventilator, "--bind", tasks, "--sink", control],
                               stdin=subprocess.PIPE)
            to_vent, from_sink = vent.popen.stdin.fileno(), sink.popen.stdout.fileno()
            lat, buf = [], b""
            next_send = time.monotonic()
            for i in range(warmup + samples):
                time.sleep(max(0.0, next_send - time.monotonic()))
                next_send += 1.0 / rate
                payload = b"lat-%08d" % i
                t0 = time.perf_counter_ns()
                os.write(to_vent, payload + b"\n")
                line, buf = _read_line(from_sink, buf, 10)
                t1 = time.perf_counter_ns()
                if line != payload:
                    raise BenchError(f"expected {payload!r}, got {line!r}")
                if i >= warmup:
                    lat.append((t1 - t0) / 1e3)
            vent.popen.stdin.close()
            if sink.wait(30) != 0 or vent.wait(10) != 0:
                raise BenchError("latency pipeline failed")
        lat.sort()
        p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99) - 1]
        per_run.append({"p50_us": p50, "p99_us": p99, "max_us": lat[-1]})
        log(f"latency run {r + 1}/{runs}: p50 {p50:.0f} us, p99 {p99:.0f} us")
    return {"samples": samples, "rate": rate, "warmup": warmup, "runs": per_run,
            "commands": [SINK_CMD.replace("> /dev/null", "| driver"),
                         f"{WORKER_CMD} --builtin echo   # twice",
                         VENT_CMD.replace("< input", "< driver")]}


def _per_worker(jsonl_path, pids):
    """Tasks and mean handler duration per worker, from the sink's --jsonl output."""
    by_pid = {pid: [] for pid in pids}
    with open(jsonl_path, "rb") as f:
        for line in f:
            rec = json.loads(line)
            if rec["status"] != "ok":
                raise BenchError(f"task not ok: {rec}")
            pid = int(rec["worker"].rsplit(":", 1)[1])
            by_pid.setdefault(pid, []).append(rec["duration_s"])
    return [{"tasks": len(d), "mean_s": statistics.fmean(d) if d else 0.0}
            for d in (by_pid[p] for p in pids)]


def fairness(bins, workdir, runs, count=2000, ms=20):
    """4a: A and B -c 5, C -c 1, all --builtin sleep MS: C has a fifth of A's speed."""
    path = write_lines(os.path.join(workdir, f"sleep{ms}-{count}.txt"), count,
                       lambda i: b"%d\n" % ms)
    out = os.path.join(workdir, "fair.jsonl")
    walls, split = [], []
    for r in range(runs):
        workers = [["-c", "5", "--builtin", "sleep"]] * 2 + [["-c", "1", "--builtin", "sleep"]]
        with open(out, "wb") as f:
            res = run_pipeline(bins, workdir, workers, path, output=f, sink_args=["--jsonl"])
        walls.append(res["wall_s"])
        split.append([w["tasks"] for w in _per_worker(out, res["worker_pids"])])
        log(f"fairness run {r + 1}/{runs}: {walls[-1]:.2f} s, tasks A/B/C {split[-1]}")
    return {"count": count, "ms": ms, "slots": 11, "ideal_s": count * ms / 1000 / 11,
            "wall_s": walls, "split": split,
            "commands": [SINK_CMD.replace("> /dev/null", "--jsonl > results.jsonl"),
                         f"{WORKER_CMD} -c 5 --builtin sleep   # A and B",
                         f"{WORKER_CMD} -c 1 --builtin sleep   # C",
                         VENT_CMD + f"   # {count} lines '{ms}'"]}


def fairness_per_task(bins, workdir, runs, count=300):
    """4b: three workers -c 1, C's handler 5x slower per task (sleep 0.1 against 0.02).

    The handlers fork a shell, so the ideal makespan uses each worker's measured mean handler
    time (from the sink's --jsonl `duration_s`): ideal = tasks / sum of the workers' rates."""
    path = write_lines(os.path.join(workdir, f"seq-{count}.txt"), count)
    out = os.path.join(workdir, "fair5.jsonl")
    walls, ideals, split, means = [], [], [], []
    for r in range(runs):
        fast = ["-c", "1", "--shell", "sleep 0.02"]
        slow = ["-c", "1", "--shell", "sleep 0.1"]
        with open(out, "wb") as f:
            res = run_pipeline(bins, workdir, [fast, fast, slow], path, output=f,
                               sink_args=["--jsonl"])
        per = _per_worker(out, res["worker_pids"])
        # Each worker's rate from its own mean; a worker that got no task is costed from its
        # handler's nominal time plus the others' measured fork overhead.
        nominal = [0.02, 0.02, 0.1]
        overhead = statistics.fmean(p["mean_s"] - nominal[i] for i, p in enumerate(per)
                                    if p["tasks"])
        rates = [1 / (p["mean_s"] if p["tasks"] else nominal[i] + overhead)
                 for i, p in enumerate(per)]
        walls.append(res["wall_s"])
        ideals.append(count / sum(rates))
        split.append([p["tasks"] for p in per])
        means.append([p["mean_s"] for p in per])
        log(f"fairness (5x per task) run {r + 1}/{runs}: {walls[-1]:.2f} s, ideal "
            f"{ideals[-1]:.2f} s, tasks A/B/C {split[-1]}")
    return {"count": count, "wall_s": walls, "ideal_s": ideals, "split": split,
            "mean_s": means,
            "commands": [SINK_CMD.replace("> /dev/null", "--jsonl > results.jsonl"),
                         f"{WORKER_CMD} -c 1 --shell 'sleep 0.02'   # A and B",
                         f"{WORKER_CMD} -c 1 --shell 'sleep 0.1'    # C",
                         VENT_CMD + f"   # seq 1 {count}"]}


def memory(bins, workdir, counts, runs):
    """5: peak RSS (GNU time's %M: wait4's ru_maxrss, i.e. VmHWM at exit) of every program."""
    if not os.access(GNU_TIME, os.X_OK):
        return {"skipped": f"{GNU_TIME} not installed", "commands": []}
    out = {}
    for count in counts:
        path = trivial_input(workdir, count)
        rows = []
        for r in range(runs):
            res = run_pipeline(bins, workdir, [["--builtin", "echo"]] * 2, path,
                               timeout=max(120, count / 20_000), measure_rss=True)
            rows.append({**res["rss_kib"], "wall_s": res["wall_s"]})
            log(f"memory {count:,} run {r + 1}/{runs}: {rows[-1]}")
        out[str(count)] = rows
        if count >= 10_000_000:
            os.unlink(path)  # 400 MB
    return {"counts": counts, "runs": out,
            "commands": [f"{GNU_TIME} -f %M -o rss.txt {c}" for c in
                         (SINK_CMD, f"{WORKER_CMD} --builtin echo   # twice", VENT_CMD)]}


def scaling(bins, workdir, runs, count=400, ms=20):
    """6: CPU-bound tasks on one worker slot, then on two (one per core)."""
    path = write_lines(os.path.join(workdir, f"spin{ms}-{count}.txt"), count,
                       lambda i: b"%d\n" % ms)
    one, two = [], []
    for r in range(runs):
        spin = ["-c", "1", "--builtin", "spin"]
        one.append(run_pipeline(bins, workdir, [spin], path)["wall_s"])
        two.append(run_pipeline(bins, workdir, [spin, spin], path)["wall_s"])
        log(f"scaling run {r + 1}/{runs}: 1 worker {one[-1]:.2f} s, 2 workers {two[-1]:.2f} s")
    return {"count": count, "ms": ms, "one_s": one, "two_s": two,
            "commands": [SINK_CMD, f"{WORKER_CMD} -c 1 --builtin spin   # once, then twice",
                         VENT_CMD + f"   # {count} lines '{ms}'"]}


def one_command(bins, workdir, runs, counts=(1_000, 10_000), trivial=1_000_000):
    """7: `taskpipe run` against `xargs -P 2` and GNU parallel `-j 2`: N x `true`, each timed
    from start to exit; then 10^6 trivial built-in tasks through `taskpipe run`, next to the
    same input through the three programs started by hand (one worker). At 10,000 tasks every
    tool runs once (GNU parallel needs about a minute there); at 1,000, `runs` times."""
    parallel_bin = subprocess.run(["sh", "-c", "command -v parallel"], capture_output=True,
                                  text=True).stdout.strip()
    run_cmd = [bins.taskpipe, "run", "-q", "-j", "2"]
    processes = {}
    for count in counts:
        path = write_lines(os.path.join(workdir, f"seq-{count}.txt"), count)
        times = {"taskpipe": [], "xargs": [], "parallel": []}
        for r in range(runs if count <= 1_000 else 1):
            times["taskpipe"].append(run_timed(workdir, "run", [*run_cmd, "--", "true"], path))
            times["xargs"].append(run_timed(workdir, "xargs", ["xargs", "-P", "2", "-n", "1",
                                                              "true"], path))
            if parallel_bin:
                times["parallel"].append(run_timed(workdir, "parallel", [
                    parallel_bin, "--will-cite", "-j", "2", "true"], path,
                    timeout=max(300, count / 20)))
            log(f"one command, {count:,} x true, run {r + 1}: "
                + ", ".join(f"{k} {count / v[-1]:,.0f}/s" for k, v in times.items() if v))
        processes[str(count)] = times
    path = trivial_input(workdir, trivial)
    run_s, pipeline_s = [], []
    for r in range(runs):
        run_s.append(run_timed(workdir, "run", [*run_cmd, "--builtin", "echo"], path,
                               timeout=max(120, trivial / 20_000)))
        pipeline_s.append(run_pipeline(bins, workdir, [["-c", "2", "--builtin", "echo"]],
                                       path)["wall_s"])
        log(f"one command, {trivial:,} trivial tasks, run {r + 1}: taskpipe run "
            f"{trivial / run_s[-1]:,.0f}/s, by hand {trivial / pipeline_s[-1]:,.0f}/s")
    return {
        "counts": list(counts), "processes": processes, "parallel_found": bool(parallel_bin),
        "trivial": trivial, "run_s": run_s, "pipeline_s": pipeline_s,
        "commands": [
            "taskpipe run -q -j 2 -- true < input   # seq 1 N, stdout to /dev/null",
            "xargs -P 2 -n 1 true < input",
            "parallel --will-cite -j 2 true < input",
            f"taskpipe run -q -j 2 --builtin echo < input   # {trivial:,} 39-byte payloads",
            SINK_CMD, f"{WORKER_CMD} -c 2 --builtin echo   # once", VENT_CMD,
        ],
    }


def _service_load(bins, workdir, name, listen, args, timeout=180):
    """One run of bench/service_load against `listen`; its JSON, with the load average."""
    load = os.getloadavg()[0]
    with Procs(workdir) as procs:
        proc = procs.start(name, [bins.service_load, "--connect", listen, "--timeout",
                                  str(timeout - 10), *args], stdout=subprocess.PIPE)
        out = proc.popen.stdout.read()  # service_load exits by its own --timeout
        rc = proc.wait(timeout)
    if rc != 0:
        raise BenchError(f"service_load {' '.join(args)} exited {rc}: "
                         f"{out.decode(errors='replace')} {proc.stderr_text()[-1500:]}")
    return {**json.loads(out), "load": load}


# The three measurements of a service, each on its own fresh head: (name, service_load args).
SERVICE_LOADS = [
    # As fast as the head answers: 4 producers, each with at most 256 submissions unanswered.
    ("burst", ["--producers", "4", "--tasks", "100000", "--window", "256"]),
    # The target rate, offered on a fixed schedule: latency when the head keeps up.
    ("rate", ["--producers", "4", "--tasks", "100000", "--rate", "50000", "--window", "1000"]),
    # Low load: one producer, one task at a time, 500 a second.
    ("low", ["--producers", "1", "--tasks", "2000", "--rate", "500", "--window", "1"]),
]


def service(bins, workdir, runs):
    """8: service mode (ventilator --serve, sink --serve, 2 workers --builtin echo) loaded by
    bench/service_load over tcp loopback, in memory and with --store, alternating."""
    modes = {"memory": [], "store": []}
    for r in range(runs):
        for mode in (["memory", "store"] if r % 2 == 0 else ["store", "memory"]):
            run = {}
            for name, args in SERVICE_LOADS:
                store = os.path.join(workdir, f"service-{r}-{name}.db")
                with Procs(workdir) as procs:
                    sink = procs.start("sink", [bins.sink, "--serve", "--bind", LOOPBACK_ANY,
                                                "--control", LOOPBACK_ANY, "--quiet"])
                    results = sink.endpoint("sink info: results")
                    control = sink.endpoint("sink info: control")
                    head = procs.start("head", [
                        bins.ventilator, "--serve", "--listen", LOOPBACK_ANY, "--bind",
                        LOOPBACK_ANY, "--sink", control,
                        *(["--store", store] if mode == "store" else [])])
                    listen = head.endpoint("ventilator info: listening")
                    tasks = head.endpoint("ventilator info: tasks")
                    for i in range(2):
                        procs.start(f"worker{i}", [bins.worker, "--ventilator", tasks, "--sink",
                                                   results, "--builtin", "echo"])
                    run[name] = _service_load(bins, workdir, "service_load", listen, args)
                for suffix in ("", "-wal", "-shm"):
                    if os.path.exists(store + suffix):
                        os.unlink(store + suffix)
            modes[mode].append(run)
            b, t, low = run["burst"], run["rate"], run["low"]
            log(f"service run {r + 1}/{runs}, {mode}: burst {b['accepted_per_s']:,.0f} "
                f"accepted/s (p99 {b['accept_us']['p99'] / 1000:.1f} ms), "
                f"{b['done_per_s']:,.0f} done/s; at {t['rate']:,.0f}/s accepted p99 "
                f"{t['accept_us']['p99'] / 1000:.2f} ms; low load done p50 "
                f"{low['done_us']['p50'] / 1000:.2f} ms (load {b['load']:.1f}, "
                f"{t['load']:.1f}, {low['load']:.1f})")
    return {
        "runs": modes, "loads": SERVICE_LOADS,
        "commands": [
            "taskpipe sink --serve --bind 'tcp://127.0.0.1:*' --control 'tcp://127.0.0.1:*' "
            "--quiet",
            "taskpipe ventilator --serve --listen 'tcp://127.0.0.1:*' --bind "
            "'tcp://127.0.0.1:*' --sink $CONTROL [--store service.db]",
            "taskpipe worker --ventilator $TASKS --sink $RESULTS --builtin echo   # twice",
        ] + [f"build/bench/service_load --connect $LISTEN {' '.join(args)}   # {name}"
             for name, args in SERVICE_LOADS],
    }
