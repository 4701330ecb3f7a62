"""A small head that speaks the producer protocol (docs/protocol.md, service mode), for the
client's unit tests: a ROUTER in a thread of its own, an in-memory task table, and no workers.
A task finishes only when the test calls finish(); the test can also slow the answers down,
silence them, send garbage, stop the head, and start it again with or without its tasks.
"""

import heapq
import itertools
import queue
import threading
import time

import msgpack
import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

FINAL = {"ok", "failed", "error", "timeout", "lost", "cancelled"}


class FakeTask:
    def __init__(self, task_id, payload, key, state, conn, notify):
        self.id = task_id
        self.payload = payload
        self.key = key
        self.state = state
        self.conn = conn
        self.notify = notify
        self.submitted_us = int(time.time() * 1e6)
        self.fields = {}


class FakeHead:
    def __init__(self, endpoint, curve_keys=None, allowed_dir=None):
        """`endpoint` to bind (ipc:// in a temporary directory); `curve_keys`: the server's
        (public, secret) Z85 pair and `allowed_dir` a directory of allowed *.pub files."""
        self.endpoint = endpoint
        self.curve_keys = curve_keys
        self.allowed_dir = allowed_dir
        self.tasks = {}
        self.by_key = {}
        self.received = []          # every well-formed request, as a dict
        self.answer_delay = 0.0     # seconds before each answer goes out
        self.silent = False         # answer nothing
        self.push_done = True       # push `done` to the submitter
        self.error_for = {}         # payload -> (code, message): answer submit with an error
        self.max_wait_ms = 600_000
        self._ids = itertools.count(1)
        self._commands = queue.SimpleQueue()
        self._waiters = []          # (deadline, seq, conn, req, id)
        self._delayed = []          # (when, seq, conn, frame)
        self._seq = itertools.count()
        self._thread = None
        self._lock = threading.Lock()
        self._ctx = zmq.Context()
        self._auth = None

    # ---- life ----

    def start(self):
        assert self._thread is None
        self._stop = False
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.linger = 0
        if self.curve_keys is not None:
            if self._auth is None:
                self._auth = ThreadAuthenticator(self._ctx)
                self._auth.start()
                self._auth.configure_curve(domain="producers", location=self.allowed_dir)
                # configure_curve reaches the authenticator's thread later: wait for it.
                deadline = time.monotonic() + 5
                while "producers" not in self._auth.thread.authenticator.certs:
                    assert time.monotonic() < deadline, "the authenticator was not configured"
                    time.sleep(0.001)
            self._sock.curve_server = True
            self._sock.curve_publickey, self._sock.curve_secretkey = self.curve_keys
            self._sock.zap_domain = b"producers"
        self._sock.bind(self.endpoint)
        self._thread = threading.Thread(target=self._run, daemon=True, name="fake head")
        self._thread.start()
        return self

    def stop(self, forget=False):
        """Closes the socket (clients see the connection close). `forget`: lose every task,
        as a head restarted without --store does; new ids then start past the old ones."""
        self._stop = True
        self._thread.join(5)
        assert not self._thread.is_alive()
        self._thread = None
        self._sock.close(linger=0)
        self._waiters.clear()
        self._delayed.clear()
        if forget:
            self.tasks.clear()
            self.by_key.clear()

    def close(self):
        if self._thread is not None:
            self.stop()
        if self._auth is not None:
            self._auth.stop()
        self._ctx.term()

    # ---- what the test does ----

    def finish(self, task_id, state="ok", **fields):
        """Records the task's result, answers its long polls and pushes its `done`."""
        self._commands.put(("finish", task_id, state, fields))

    def set_state(self, task_id, state):
        self._commands.put(("set_state", task_id, state, {}))

    def send_raw(self, conn, frame):
        self._commands.put(("raw", conn, frame, None))

    def wait_for_requests(self, count, timeout=10):
        """Waits until `count` requests have arrived; returns them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.002)
        raise AssertionError(f"the fake head got {len(self.received)} requests, not {count}")

    def requests(self, type_=None):
        with self._lock:
            return [r for r in self.received if type_ is None or r["type"] == type_]

    # ---- the thread ----

    def _run(self):
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        while not self._stop:
            poller.poll(5)
            while True:
                try:
                    conn, frame = self._sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                except ValueError:
                    continue
                self._on_frame(conn, frame)
            while True:
                try:
                    command = self._commands.get_nowait()
                except queue.Empty:
                    break
                self._on_command(*command)
            now = time.monotonic()
            while self._waiters and self._waiters[0][0] <= now:
                _, _, conn, req, task_id = heapq.heappop(self._waiters)
                self._answer(conn, self._state_msg("state", self.tasks.get(task_id), task_id,
                                                   req))
            while self._delayed and self._delayed[0][0] <= now:
                _, _, conn, frame = heapq.heappop(self._delayed)
                self._sock.send_multipart([conn, frame])

    def _on_command(self, what, a, b, c):
        if what == "raw":
            self._sock.send_multipart([a, b])
            return
        task = self.tasks.get(a)
        if task is None:
            return
        if what == "set_state":
            task.state = b
            return
        task.state = b
        task.fields = {} if b == "cancelled" else {
            "status": b, "exit_code": 0 if b == "ok" else 1, "signal": None, "stdout": b"",
            "stdout_truncated": False, "stderr": b"", "worker": "fake:1", "started_us": 1,
            "duration_us": 1, "finished_us": int(time.time() * 1e6), **c}
        keep = []
        for entry in self._waiters:
            if entry[4] == a:
                self._answer(entry[2], self._state_msg("state", task, a, entry[3]))
            else:
                keep.append(entry)
        heapq.heapify(keep)
        self._waiters = keep
        if task.notify and self.push_done:
            self._answer(task.conn, self._state_msg("done", task, a, None))

    def _on_frame(self, conn, frame):
        try:
            msg = msgpack.unpackb(frame, raw=False)
            assert msg["v"] == 1
            kind, req = msg["type"], msg["req"]
        except Exception:
            return
        with self._lock:
            self.received.append(msg)
        if self.silent:
            return
        if kind == "submit":
            self._answer(conn, self._submit(conn, req, msg))
        elif kind == "status":
            task_id = msg.get("id")
            if task_id is None:
                task_id = self.by_key.get(msg.get("key"))
            task = self.tasks.get(task_id)
            wait_ms = min(msg.get("wait_ms", 0), self.max_wait_ms)
            if task is not None and task.state not in FINAL and wait_ms > 0:
                heapq.heappush(self._waiters, (time.monotonic() + wait_ms / 1000,
                                               next(self._seq), conn, req, task_id))
            else:
                self._answer(conn, self._state_msg("state", task, task_id, req))
        elif kind == "cancel":
            task = self.tasks.get(msg["id"])
            if task is not None and task.state in ("queued", "delayed"):
                self._on_command("finish", task.id, "cancelled", {})
            self._answer(conn, self._state_msg("state", task, msg["id"], req))

    def _submit(self, conn, req, msg):
        payload, key = msg["payload"], msg.get("key")
        if payload in self.error_for:
            code, text = self.error_for[payload]
            return {"type": "error", "req": req, "code": code, "message": text}
        if key is not None and key in self.by_key:
            task = self.tasks[self.by_key[key]]
            if task.payload != payload:
                return {"type": "error", "req": req, "code": "conflict",
                        "message": f"key {key!r} names task {task.id}, another payload",
                        "id": task.id}
            return {"type": "accepted", "req": req, "id": task.id, "created": False,
                    "state": task.state}
        task_id = next(self._ids)
        delayed = msg.get("delay_ms", 0) or msg.get("not_before_us", 0)
        task = FakeTask(task_id, payload, key, "delayed" if delayed else "queued", conn,
                        msg.get("notify", True))
        self.tasks[task_id] = task
        if key is not None:
            self.by_key[key] = task_id
        return {"type": "accepted", "req": req, "id": task_id, "created": True,
                "state": task.state}

    def _state_msg(self, type_, task, task_id, req):
        msg = {"type": type_, "state": "unknown"}
        if task_id:
            msg["id"] = task_id
        if req is not None:
            msg["req"] = req
        if task is not None:
            msg.update(state=task.state, submitted_us=task.submitted_us, attempts=1)
            if task.key is not None:
                msg["key"] = task.key
            if task.state in FINAL:
                msg.update(task.fields)
        return msg

    def _answer(self, conn, msg):
        frame = msgpack.packb({"v": 1, **msg}, use_bin_type=True)
        if self.answer_delay:
            heapq.heappush(self._delayed, (time.monotonic() + self.answer_delay,
                                           next(self._seq), conn, frame))
        else:
            self._sock.send_multipart([conn, frame])
