"""Runs the real programs: a head (`ventilator --serve`), a `sink --serve` and
workers, on ipc:// endpoints in a private directory (no ports, so tests run side by side).

The binaries come from TASKPIPE_VENTILATOR, TASKPIPE_WORKER, TASKPIPE_SINK and TASKPIPE_KEYGEN,
which the CTest registration (tests/python/CMakeLists.txt) sets from the build; run by hand,
they default to build/ at the top of the repository.

While the ventilator has no --serve (service mode not built yet) the tests that need the
programs are skipped, and the session exits 77, which CTest reports as "Skipped", not "Passed"
(serve_hooks).
"""

import os
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # clients/python: the package

REPO = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
import taskpipe  # noqa: E402


def binary(name, subdir):
    path = os.environ.get(f"TASKPIPE_{name.upper()}") or os.path.join(REPO, "build", subdir,
                                                                       name)
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} not found: build first, or set TASKPIPE_{name.upper()}")
    return path


def _serve_missing():
    """Why these tests cannot run yet, or None."""
    path = os.environ.get("TASKPIPE_VENTILATOR") or os.path.join(REPO, "build", "ventilator",
                                                                  "ventilator")
    try:
        text = subprocess.run([path, "--help"], capture_output=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return None if not os.path.exists(path) else f"{path} --help failed: {e}"
    if b"--serve" not in text:
        return (f"{path} --help has no --serve: service mode is not built yet; these tests "
                "run as soon as it is")
    return None


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


class Program:
    """One child process, its stderr in a file; stopped (SIGTERM, then SIGKILL) at the end."""

    def __init__(self, name, argv, workdir, env=None, stdout=subprocess.DEVNULL):
        self.name = name
        self.argv = argv
        self.stderr_path = os.path.join(workdir, f"{name}.err")
        with open(self.stderr_path, "ab") as err:
            self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout,
                                          stderr=err, env=env)
        self.pid = self.popen.pid

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def alive(self):
        return self.popen.poll() is None

    def kill(self, sig=signal.SIGKILL, timeout=10):
        if self.alive():
            self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)
            raise AssertionError(f"{self.name} did not end within {timeout} s of signal {sig}")

    def stop(self, timeout=10):
        return self.kill(signal.SIGTERM, timeout)


class Service:
    """A head, a sink and workers on ipc:// endpoints in `workdir`.

    `curve`: a dict with the key files (server, workers_dir, producers_dir) when the whole
    service runs with CURVE."""

    def __init__(self, workdir, store=False, curve=None, head_args=()):
        self.workdir = workdir
        self.bins = {n: binary(n, n) for n in ("ventilator", "worker", "sink")}
        self.listen = f"ipc://{workdir}/head"
        self.tasks = f"ipc://{workdir}/tasks"
        self.results = f"ipc://{workdir}/results"
        self.control = f"ipc://{workdir}/control"
        self.store = os.path.join(workdir, "head.store") if store else None
        self.curve = curve
        self.head_args = list(head_args)
        self.programs = []
        self.head = None
        self.sink = None
        self.workers = []
        self._heads_started = 0

    def _curve_server_args(self):
        if not self.curve:
            return []
        return ["--curve-key", self.curve["server_key"], "--curve-allow", self.curve["workers"]]

    def start_sink(self):
        self.sink = self._start("sink", [self.bins["sink"], "--serve", "--bind", self.results,
                                         "--control", self.control, "--quiet",
                                         *self._curve_server_args()])
        return self.sink

    def start_head(self):
        self._heads_started += 1
        argv = [self.bins["ventilator"], "--serve", "--listen", self.listen, "--bind", self.tasks,
                "--sink", self.control, "--liveness-timeout", "1", *self._curve_server_args()]
        if self.curve:
            argv += ["--curve-producers", self.curve["producers"]]
        if self.store:
            argv += ["--store", self.store]
        self.head = self._start(f"head{self._heads_started}", argv + self.head_args)
        return self.head

    def start_worker(self, *handler, concurrency=2, curve_key=None):
        argv = [self.bins["worker"], "--ventilator", self.tasks, "--sink", self.results,
                "-c", str(concurrency), "--heartbeat", "1"]
        if self.curve:
            argv += ["--curve-key", curve_key or self.curve["worker_key"],
                     "--curve-server", self.curve["server_pub"]]
        worker = self._start(f"worker{len(self.workers) + 1}", argv + list(handler))
        self.workers.append(worker)
        return worker

    def start(self, *handler, workers=1, concurrency=2):
        self.start_sink()
        self.start_head()
        for _ in range(workers):
            self.start_worker(*handler, concurrency=concurrency)
        return self

    def client(self, **kwargs):
        kwargs.setdefault("timeout", 10)
        kwargs.setdefault("connect_timeout", 10)
        client = taskpipe.Client(self.listen, **kwargs)
        try:
            wait_for(lambda: client.connection()[0] == "up" or self._died(), 20,
                     "the client to connect to the head")
        except BaseException:
            client.close()
            raise
        self._check_alive()
        return client

    def _start(self, name, argv):
        program = Program(name, argv, self.workdir)
        self.programs.append(program)
        return program

    def _died(self):
        return any(not p.alive() for p in (self.head, self.sink) if p is not None)

    def _check_alive(self):
        for p in (self.head, self.sink):
            if p is not None and not p.alive():
                raise AssertionError(f"{p.name} exited {p.popen.returncode}:\n{p.stderr()}")

    def logs(self):
        return "\n".join(f"--- {p.name} ({' '.join(p.argv)}):\n{p.stderr()[-3000:]}"
                         for p in self.programs)

    def close(self):
        for p in reversed(self.programs):
            try:
                p.stop(timeout=5)
            except AssertionError:
                pass


SERVE_MISSING = _serve_missing()


def serve_hooks(directory):
    """The pytest hooks for a conftest.py: skip the tests under `directory` that use the
    `service` fixture while the ventilator has no --serve, and end a session that skipped any
    of them, and failed none, with status 77 (CTest: "Skipped", so it does not pass unseen)."""
    skipped = 0

    def pytest_collection_modifyitems(config, items):
        if SERVE_MISSING:
            mark = pytest.mark.skip(reason=SERVE_MISSING)
            for item in items:
                if str(item.fspath).startswith(directory) and "service" in item.fixturenames:
                    item.add_marker(mark)

    def pytest_runtest_logreport(report):
        nonlocal skipped
        if report.when == "setup" and report.skipped and SERVE_MISSING:
            skipped += 1

    def pytest_sessionfinish(session, exitstatus):
        if SERVE_MISSING and exitstatus == 0 and skipped:
            session.exitstatus = 77

    return pytest_collection_modifyitems, pytest_runtest_logreport, pytest_sessionfinish
