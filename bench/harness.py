"""Process plumbing for the benchmark: start programs, find their endpoints, time them, reap
them with their peak RSS, and never leave one behind.

Every process is started through `Procs.start` and is killed (SIGTERM, then SIGKILL) when the
`Procs` context exits, whatever happened. Every wait has a deadline.
"""

import os
import re
import select
import signal
import socket
import subprocess
import time


GNU_TIME = "/usr/bin/time"


class BenchError(RuntimeError):
    pass


def free_tcp_port():
    """A loopback port the OS just handed out, for a program that cannot bind `*` itself."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise BenchError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


class Proc:
    """One child process. `wait` reaps it with wait4, so its peak RSS (ru_maxrss) is known."""

    def __init__(self, argv, stdin, stdout, stderr_path, name, measure_rss=False, env=None,
                 cwd=None):
        self.name = name
        self.argv = argv
        self.stderr_path = stderr_path
        # A child's ru_maxrss starts at its parent's RSS at fork time (Linux records the old
        # address space's high-water mark at exec), so this 15 MiB Python would put a floor
        # under every figure. GNU time is a small parent: its own ~2 MiB is the floor.
        self.rss_path = stderr_path + ".rss" if measure_rss else None
        if measure_rss:
            argv = [GNU_TIME, "-f", "%M", "-o", self.rss_path, *argv]
        with open(stderr_path, "wb") as err:
            self.popen = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=err, env=env,
                                          cwd=cwd)
        self.pid = self.popen.pid
        self.pidfd = os.pidfd_open(self.pid)
        self.returncode = None
        self.maxrss_kib = None
        self.ended = None
        self.target = self.pid if not measure_rss else wait_for(
            self._only_child, 10, f"{name} to start under {GNU_TIME}")

    def _only_child(self):
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
                children = f.read().split()
        except FileNotFoundError:
            raise BenchError(f"{GNU_TIME} exited before starting {self.name}")
        return int(children[0]) if children else None

    def running(self):
        return self.returncode is None

    def stderr_text(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def endpoint(self, label, timeout=10):
        """The endpoint the program logged as 'LABEL on ENDPOINT' on stderr."""
        pattern = re.compile(re.escape(label) + r" on (\S+)")

        def found():
            m = pattern.search(self.stderr_text())
            if m is None and not self._alive():
                raise BenchError(f"{self.name} exited before logging '{label}':\n"
                                 + self.stderr_text())
            return m.group(1) if m else None

        return wait_for(found, timeout, f"{self.name} to log '{label} on ...'")

    def _alive(self):
        return self.returncode is None and not select.select([self.pidfd], [], [], 0)[0]

    def wait(self, timeout):
        """Reaps the process; returns its exit code. Kills it and raises after `timeout` s."""
        if self.returncode is not None:
            return self.returncode
        if not select.select([self.pidfd], [], [], timeout)[0]:
            self.kill()
            raise BenchError(f"{self.name} still running after {timeout} s: killed\n"
                             + self.stderr_text()[-2000:])
        self._reap()
        return self.returncode

    def _reap(self):
        _, status, usage = os.wait4(self.pid, 0)
        self.ended = time.monotonic()
        self.returncode = os.waitstatus_to_exitcode(status)
        self.maxrss_kib = usage.ru_maxrss
        if self.rss_path:
            with open(self.rss_path) as f:
                self.maxrss_kib = int(f.read().split()[-1])
        self.popen.returncode = self.returncode  # so that Popen never waits for it again
        os.close(self.pidfd)

    def signal(self, sig):
        """Signals the program (not GNU time, which would die of SIGTERM and report nothing)."""
        if self.returncode is None and not select.select([self.pidfd], [], [], 0)[0]:
            os.kill(self.target, sig)  # safe: it is alive, so its pid is not reused

    def kill(self):
        if self.returncode is None:
            if self.target != self.pid and not select.select([self.pidfd], [], [], 0)[0]:
                os.kill(self.target, signal.SIGKILL)
            os.kill(self.pid, signal.SIGKILL)
            self._reap()


class Procs:
    """The set of processes of one measurement; a context manager that ends them all."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = []

    def start(self, name, argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
              measure_rss=False, env=None, cwd=None):
        proc = Proc(argv, stdin, stdout, os.path.join(self.workdir, name + ".err"), name,
                    measure_rss, env, cwd)
        self.procs.append(proc)
        return proc

    def stop(self, proc, timeout=10):
        """SIGTERM (a clean shutdown for taskpipe programs), then reap."""
        proc.signal(signal.SIGTERM)
        return proc.wait(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.signal(signal.SIGTERM)
        deadline = time.monotonic() + 3
        for p in self.procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except BenchError:
                pass  # wait() killed it
        return False


class Bins:
    def __init__(self, build_dir, need_limit=True):
        self.build_dir = build_dir

        # This build's programs (bin/taskpipe-*), or an older build's (ventilator/ventilator...).
        def program(name):
            installed = os.path.join(build_dir, "bin", "taskpipe-" + name)
            return installed if os.access(installed, os.X_OK) else os.path.join(build_dir, name, name)

        self.taskpipe = os.path.join(build_dir, "bin", "taskpipe")
        self.ventilator = program("ventilator")
        self.worker = program("worker")
        self.sink = program("sink")
        self.zmq_limit = os.path.join(build_dir, "bench", "zmq_limit")
        self.service_load = os.path.join(build_dir, "bench", "service_load")
        needed = [self.ventilator, self.worker, self.sink] + ([self.zmq_limit] if need_limit else [])
        for path in needed:
            if not os.access(path, os.X_OK):
                raise BenchError(f"{path} not found: build first")


LOOPBACK_ANY = "tcp://127.0.0.1:*"


def run_pipeline(bins, workdir, workers, input_path, output=subprocess.DEVNULL,
                 sink_args=(), timeout=120, measure_rss=False):
    """One taskpipe batch on loopback: sink and workers first, then the ventilator.

    `workers` is a list of worker argument lists (handler and options). Returns the wall time
    from the ventilator's start to the sink's exit, the exit codes, the peak RSS of every
    program in KiB (with `measure_rss`, else None), and the sink's summary line.
    """
    with Procs(workdir) as procs:
        sink = procs.start("sink", [bins.sink, "--bind", LOOPBACK_ANY, "--control", LOOPBACK_ANY,
                                    *sink_args], stdout=output, measure_rss=measure_rss)
        results = sink.endpoint("sink info: results")
        control = sink.endpoint("sink info: control")
        tasks = f"tcp://127.0.0.1:{free_tcp_port()}"
        started_workers = [
            procs.start(f"worker{i}", [bins.worker, "--ventilator", tasks, "--sink", results, *w],
                        measure_rss=measure_rss)
            for i, w in enumerate(workers)]
        with open(input_path, "rb") as stdin:
            start = time.monotonic()
            vent = procs.start("ventilator", [bins.ventilator, "--bind", tasks, "--sink", control],
                               stdin=stdin, measure_rss=measure_rss)
            sink_rc = sink.wait(timeout)
        wall = sink.ended - start
        vent_rc = vent.wait(10)
        worker_rcs = [procs.stop(w) for w in started_workers]
        summary = next((line for line in sink.stderr_text().splitlines()
                        if re.search(r"sink info: \d+ tasks", line)), "")
        if sink_rc != 0 or vent_rc != 0:
            raise BenchError(f"pipeline failed: sink {sink_rc}, ventilator {vent_rc}\n"
                             f"sink: {sink.stderr_text()[-1500:]}\n"
                             f"ventilator: {vent.stderr_text()[-1500:]}")
        return {
            "wall_s": wall,
            "worker_rcs": worker_rcs,
            "rss_kib": {"ventilator": vent.maxrss_kib, "sink": sink.maxrss_kib,
                        "worker": max(w.maxrss_kib for w in started_workers)}
            if measure_rss else None,
            "summary": summary,
            "worker_pids": [w.pid for w in started_workers],
        }


def run_zmq_limit(bins, workdir, input_path, count, relays=2, timeout=120):
    """The framework-free baseline, started and timed exactly like run_pipeline."""
    with Procs(workdir) as procs:
        collect = procs.start("collect", [bins.zmq_limit, "collect", LOOPBACK_ANY, str(count)])
        collector = collect.endpoint("zmq_limit: collect")
        source_ep = f"tcp://127.0.0.1:{free_tcp_port()}"
        for i in range(relays):
            procs.start(f"relay{i}", [bins.zmq_limit, "relay", source_ep, collector])
        with open(input_path, "rb") as stdin:
            start = time.monotonic()
            source = procs.start("source", [bins.zmq_limit, "source", source_ep], stdin=stdin)
            rc = collect.wait(timeout)
        wall = collect.ended - start
        source_rc = source.wait(10)
        if rc != 0 or source_rc != 0:
            raise BenchError(f"zmq_limit failed: collect {rc}, source {source_rc}\n"
                             + collect.stderr_text() + source.stderr_text())
        return {"wall_s": wall, "frames": collect.stderr_text().strip().splitlines()[-1]
                + "; " + source.stderr_text().strip().splitlines()[-1]}


def run_timed(workdir, name, argv, input_path, timeout=300):
    """Wall time of one command reading `input_path`, for xargs and GNU parallel."""
    with Procs(workdir) as procs, open(input_path, "rb") as stdin:
        start = time.monotonic()
        proc = procs.start(name, argv, stdin=stdin)
        rc = proc.wait(timeout)
        if rc != 0:
            raise BenchError(f"{name} exited {rc}: {proc.stderr_text()[-1500:]}")
        return proc.ended - start
