"""The client's I/O thread: the only owner of its DEALER socket.

ZeroMQ sockets must not be shared between threads, so every public call of Client and
AsyncClient hands a command to this thread (a queue, and a byte on a pipe to wake it) and gets
a concurrent.futures.Future back; the thread sends, receives, keeps the deadlines, and resolves
the futures. That is what makes one client safe to share between threads and event loops.

Connection. The thread watches the socket's monitor events and keeps one of three states:
CONNECTING (just created: a request waits up to `connect_timeout` for the first connection),
UP (the ZMTP handshake, CURVE included, has succeeded), DOWN (nothing listens, the handshake
failed, or the connection closed). ZeroMQ reconnects by itself in every state. While DOWN, a new
request fails at once with HeadUnavailable and a reason; requests already sent when the
connection broke are sent again after the reconnection if they are safe to repeat (status,
cancel, a submit with a key), within their deadline; a submit without a key fails with
ConnectionLost, since the head may or may not have accepted it.

Waiting. A waited task is finished by the `done` the head pushes to the connection that
submitted it, or by a `status` long poll (`wait_ms`): at once for a task this connection did
not submit (another process, an earlier connection, a duplicate key), after PUSH_GRACE_S for
one it did (in case a push was lost), and again after every reconnection.
"""

import collections
import concurrent.futures
import heapq
import itertools
import logging
import os
import queue
import threading
import time
import weakref

import zmq
from zmq.utils.monitor import recv_monitor_message

from . import errors, protocol
from .result import Result

log = logging.getLogger("taskpipe")

CONNECTING, UP, DOWN = "connecting", "up", "down"

POLL_WAIT_MS = 30_000       # each long poll for a waited task lasts at most this long
PUSH_GRACE_S = 2.0          # a task covered by a pushed `done` is polled after this long anyway
EARLY_ANSWER_BACKOFF_S = 0.2  # a long poll answered early with the task unfinished waits this
MAX_FRAME = 64 << 20        # bytes; the head's frames are far smaller (stdout is cut at 64 KiB)
MAX_LOOP_WAIT_MS = 1000
MALFORMED_LOGGED = 10

_EVENTS = (zmq.EVENT_CONNECTED | zmq.EVENT_CONNECT_RETRIED | zmq.EVENT_DISCONNECTED
           | zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
           | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH)

_ENCODERS = {
    "submit": protocol.encode_submit,
    "status": protocol.encode_status,
    "poll": protocol.encode_status,
    "cancel": protocol.encode_cancel,
}


class _Batch:
    """The requests of one request_many: one future, resolved with a list once every
    request has its answer or its error (exceptions in the list where they failed)."""

    def __init__(self, size):
        self.outcomes = [None] * size
        self.left = size
        self.future = concurrent.futures.Future()
        self.future.set_running_or_notify_cancel()
        if size == 0:
            self.future.set_result([])

    def settle(self, index, outcome):
        self.outcomes[index] = outcome
        self.left -= 1
        if self.left == 0:
            self.future.set_result(self.outcomes)


class _Request:
    """One request from submission to its answer (or its failure)."""
    __slots__ = ("kind", "fields", "future", "deadline", "timeout", "retry", "req", "sent",
                 "sent_epoch", "sent_at", "finished", "task", "batch", "index")

    def __init__(self, kind, fields, timeout, retry, task=None, batch=None, index=0):
        self.kind = kind
        self.fields = fields
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.retry = retry
        self.task = task            # polls only: the task it is for
        self.req = None
        self.sent = False           # ever sent
        self.sent_epoch = None
        self.sent_at = None
        self.finished = False
        self.future = None
        self.batch, self.index = batch, index
        if kind != "poll" and batch is None:
            self.future = concurrent.futures.Future()
            # The request is as good as on the wire: an awaiting coroutine that is cancelled
            # must not cancel the future under the I/O thread's feet.
            self.future.set_running_or_notify_cancel()

    def resolve(self, value):
        self.finished = True
        if self.future is not None:
            self.future.set_result(value)
        elif self.batch is not None:
            self.batch.settle(self.index, value)

    def fail(self, exc):
        self.finished = True
        if self.future is not None:
            self.future.set_exception(exc)
        elif self.batch is not None:
            self.batch.settle(self.index, exc)


class TaskSlot:
    """What a client knows of one task id, shared by every Task handle for it: its last state,
    and once it has finished its Result (or the error that ended the wait)."""

    def __init__(self, task_id, key=None, state=None):
        self.id = task_id
        self.key = key
        self.push_epoch = None   # the connection that submitted it, and gets its `done`
        self.finished = threading.Event()
        self.result = None
        self.error = None
        self._state = state
        self._lock = threading.Lock()
        self._callbacks = []

    @property
    def state(self):
        return self.result.state if self.result is not None else self._state

    def done(self):
        return self.finished.is_set()

    def outcome(self):
        if self.error is not None:
            raise self.error
        return self.result

    def note_state(self, state):
        if not self.finished.is_set():
            self._state = state

    def finish(self, result):
        self._settle(result, None)

    def fail(self, exc):
        self._settle(None, exc)

    def _settle(self, result, exc):
        with self._lock:
            if self.finished.is_set():
                return
            self.result, self.error = result, exc
            self.finished.set()
            callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            try:
                fn(self)
            except Exception:  # a waiter's bug must not stop the I/O thread
                log.exception("taskpipe client: a done callback failed")

    def add_callback(self, fn):
        """Calls fn(slot) once the task has finished: now, if it has."""
        with self._lock:
            if not self.finished.is_set():
                self._callbacks.append(fn)
                return
        fn(self)

    def remove_callback(self, fn):
        with self._lock:
            try:
                self._callbacks.remove(fn)
            except ValueError:
                pass


class Engine:
    """Owns the socket and the I/O thread of one client. Thread-safe entry points: request,
    watch, unwatch, slot, connection, close."""

    def __init__(self, endpoint, curve, connect_timeout, heartbeat_s=2.0):
        self.endpoint = endpoint
        self._curve = curve
        self._ctx = zmq.Context()
        try:
            self._sock = self._ctx.socket(zmq.DEALER)
            self._sock.linger = 0
            self._sock.immediate = 1            # never queue a request on a dead connection
            self._sock.rcvhwm = 0               # read pushed `done`s as fast as they come
            self._sock.sndhwm = 10_000
            self._sock.maxmsgsize = MAX_FRAME
            self._sock.reconnect_ivl = 100
            self._sock.reconnect_ivl_max = 1000
            self._sock.heartbeat_ivl = int(heartbeat_s * 1000)  # a silent head is noticed
            self._sock.heartbeat_timeout = int(heartbeat_s * 3000)
            self._sock.heartbeat_ttl = int(heartbeat_s * 3000)
            if curve is not None:
                curve.apply(self._sock)
            self._monitor = self._sock.get_monitor_socket(_EVENTS)
            try:
                self._sock.connect(endpoint)
            except zmq.ZMQError as e:
                raise ValueError(f"bad endpoint {endpoint!r}: {e}") from None
        except BaseException:
            self._ctx.destroy(linger=0)
            raise
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._commands = queue.SimpleQueue()
        self._stopping = False
        self.closed = False
        self._fatal = None

        self._state = CONNECTING
        self._reason = f"no connection to the head at {endpoint} yet"
        self._connect_deadline = time.monotonic() + connect_timeout
        self._connect_timeout = connect_timeout
        self._tcp_connected = False
        self._epoch = 0

        self._req_numbers = itertools.count(1)
        self._outbox = collections.deque()      # _Request not sent yet (or to be sent again)
        self._pending = {}                      # req -> _Request sent, no answer yet
        self._deadlines = []                    # heap of (deadline, seq, _Request)
        self._seq = itertools.count()
        self._want_out = False

        self._tasks_lock = threading.Lock()
        self._tasks = weakref.WeakValueDictionary()  # id -> TaskSlot, one per id
        self._watched = {}                      # id -> [count, TaskSlot]
        self._polls = {}                        # id -> outstanding poll _Request
        self._poll_at = []                      # heap of (when, seq, id)

        self.malformed = 0
        self.stale_answers = 0

        self._thread = threading.Thread(target=self._run, name=f"taskpipe {endpoint}",
                                        daemon=True)
        self._thread.start()

    # ---- entry points (any thread) ---------------------------------------------------------

    def request(self, kind, fields, timeout, retry):
        """Queues a request; returns its Future (a Task, a Result, or an exception)."""
        if self.closed:
            raise errors.ClientClosed("the client is closed")
        r = _Request(kind, fields, timeout, retry)
        self._post(self._add, r)
        return r.future

    def request_many(self, kind, fields_list, timeout, retry):
        """Queues many requests at once, sent without waiting for each other's answers; returns
        one Future of the list of their outcomes (a value, or an exception), in order."""
        if self.closed:
            raise errors.ClientClosed("the client is closed")
        batch = _Batch(len(fields_list))
        requests = [_Request(kind, fields, timeout, retry(fields), batch=batch, index=i)
                    for i, fields in enumerate(fields_list)]
        self._post(self._add_many, requests)
        return batch.future

    def slot(self, task_id, key=None, state=None):
        """The one TaskSlot of this client for `task_id` (alive while a Task refers to it)."""
        with self._tasks_lock:
            slot = self._tasks.get(task_id)
            if slot is None:
                slot = TaskSlot(task_id, key, state)
                self._tasks[task_id] = slot
            return slot

    def watch(self, task):
        self._post(self._watch, task)

    def unwatch(self, task):
        if not self.closed:
            self._post(self._unwatch, task)

    def connection(self):
        """(state, reason): CONNECTING, UP or DOWN, and why it is not UP."""
        return self._state, self._reason

    def close(self, timeout=2.0):
        if self.closed:
            return
        self.closed = True
        self._post(self._stop)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _post(self, fn, *args):
        self._commands.put((fn, args))
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass  # the pipe is full: the thread will wake anyway
        except OSError:
            pass  # closed: the thread has stopped, close() has failed everything

    # ---- the I/O thread ------------------------------------------------------------------

    def _run(self):
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        poller.register(self._monitor, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        out = False
        try:
            while not self._stopping:
                if self._want_out != out:
                    out = self._want_out
                    poller.modify(self._sock, zmq.POLLIN | (zmq.POLLOUT if out else 0))
                ready = dict(poller.poll(self._loop_wait_ms()))
                if self._wake_r in ready:
                    self._drain_wake()
                self._run_commands()
                if ready.get(self._sock, 0) & zmq.POLLIN:
                    self._read_answers()
                if self._monitor in ready:
                    self._read_monitor()
                now = time.monotonic()
                self._check_connect_deadline(now)
                self._schedule_polls(now)
                self._flush_outbox()
                self._expire(now)
        except BaseException as e:  # a bug here must not leave callers waiting for nothing
            log.exception("taskpipe client: the I/O thread failed")
            self._fatal = e
        finally:
            self.closed = True
            self._shutdown()

    def _loop_wait_ms(self):
        now = time.monotonic()
        until = now + MAX_LOOP_WAIT_MS / 1000
        if self._deadlines:
            until = min(until, self._deadlines[0][0])
        if self._poll_at:
            until = min(until, self._poll_at[0][0])
        if self._state == CONNECTING:
            until = min(until, self._connect_deadline)
        return max(0, int((until - now) * 1000) + 1)

    def _drain_wake(self):
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _run_commands(self):
        while True:
            try:
                fn, args = self._commands.get_nowait()
            except queue.Empty:
                return
            fn(*args)

    def _stop(self):
        self._stopping = True

    def _shutdown(self):
        if self._fatal is not None:
            exc = errors.ClientClosed(f"the client's I/O thread failed: {self._fatal!r}")
        else:
            exc = errors.ClientClosed("the client was closed")
        self._run_commands_after_close(exc)
        for r in list(self._outbox) + list(self._pending.values()):
            if not r.finished:
                r.fail(exc)
        self._outbox.clear()
        self._pending.clear()
        for _, task in list(self._watched.values()):
            task.fail(exc)
        self._watched.clear()
        self._monitor.close(linger=0)
        self._sock.close(linger=0)
        self._ctx.term()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _run_commands_after_close(self, exc):
        while True:
            try:
                fn, args = self._commands.get_nowait()
            except queue.Empty:
                return
            if fn == self._add:
                args[0].fail(exc)
            elif fn == self._add_many:
                for r in args[0]:
                    r.fail(exc)
            elif fn == self._watch:
                args[0].fail(exc)

    # ---- requests ----

    def _add(self, r):
        if self._state == DOWN:
            r.fail(errors.HeadUnavailable(self._down_message()))
            return
        self._outbox.append(r)
        heapq.heappush(self._deadlines, (r.deadline, next(self._seq), r))

    def _add_many(self, requests):
        for r in requests:
            self._add(r)

    def _flush_outbox(self):
        while self._outbox and self._state == UP:
            r = self._outbox[0]
            if r.finished:
                self._outbox.popleft()
                continue
            req = next(self._req_numbers)
            frame = _ENCODERS[r.kind](req, **r.fields)
            try:
                self._sock.send(frame, zmq.NOBLOCK)
            except zmq.Again:
                self._want_out = True
                return
            self._outbox.popleft()
            r.req, r.sent, r.sent_epoch, r.sent_at = req, True, self._epoch, time.monotonic()
            self._pending[req] = r
        self._want_out = False

    def _expire(self, now):
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, r = heapq.heappop(self._deadlines)
            if r.finished:
                continue
            if r.req is not None and self._pending.get(r.req) is r:
                del self._pending[r.req]
            if r.kind == "poll":
                r.finished = True
                if self._polls.get(r.task.id) is r:
                    del self._polls[r.task.id]
                self._poll_later(r.task.id, 0)
            elif self._state != UP:
                r.fail(errors.HeadUnavailable(self._down_message()))
            else:
                r.fail(errors.RequestTimeout(
                    f"no answer from the head at {self.endpoint} within {r.timeout:g} s"))

    # ---- answers ----

    def _read_answers(self):
        for _ in range(10_000):  # then let timers and commands have a turn
            try:
                frame = self._sock.recv(zmq.NOBLOCK, copy=True)
            except zmq.Again:
                return
            try:
                msg = protocol.decode(frame)
            except protocol.MalformedMessage as e:
                self._count_malformed(str(e))
                continue
            self._on_message(msg)

    def _count_malformed(self, why):
        self.malformed += 1
        if self.malformed <= MALFORMED_LOGGED:
            log.warning("taskpipe client: dropped a malformed message from the head: %s%s", why,
                        "; further ones are only counted" if self.malformed == MALFORMED_LOGGED
                        else "")

    def _on_message(self, msg):
        if isinstance(msg, protocol.State) and msg.pushed:
            task = self._known_task(msg.id)
            if task is not None and msg.state in protocol.FINAL_STATES:
                task.finish(_result(msg))
            return
        r = self._pending.pop(msg.req, None)
        if r is None or r.finished:
            self.stale_answers += 1   # answered after its deadline, or a late duplicate
            return
        handler = getattr(self, "_answer_" + r.kind)
        handler(r, msg)

    def _mismatch(self, r, msg):
        self._count_malformed(f"a {type(msg).__name__.lower()} answer to a {r.kind} request")
        r.fail(errors.TaskpipeError(f"the head answered a {r.kind} with an unexpected message"))

    def _answer_submit(self, r, msg):
        if isinstance(msg, protocol.Error):
            r.fail(errors.request_failed(msg.code, msg.message, msg.id))
        elif isinstance(msg, protocol.Accepted):
            slot = self.slot(msg.id, r.fields.get("key"), msg.state)
            slot.note_state(msg.state)
            if msg.created and r.fields.get("notify", True):
                slot.push_epoch = r.sent_epoch
            r.resolve((slot, msg.created))
        else:
            self._mismatch(r, msg)

    def _answer_status(self, r, msg):
        if isinstance(msg, protocol.Error):
            r.fail(errors.request_failed(msg.code, msg.message, msg.id))
        elif isinstance(msg, protocol.State):
            result = _result(msg)
            self._apply_state(result)
            r.resolve(result)
        else:
            self._mismatch(r, msg)

    _answer_cancel = _answer_status

    def _answer_poll(self, r, msg):
        r.finished = True
        task = r.task
        if self._polls.get(task.id) is r:
            del self._polls[task.id]
        if not isinstance(msg, protocol.State):
            code = getattr(msg, "code", "?")
            log.warning("taskpipe client: the head refused to report task %d (%s)", task.id,
                        code)
            self._poll_later(task.id, 1.0)
            return
        result = _result(msg)
        self._apply_state(result)
        if not task.done():
            early = time.monotonic() - r.sent_at < r.fields["wait_ms"] / 2000
            self._poll_later(task.id, EARLY_ANSWER_BACKOFF_S if early else 0)

    def _known_task(self, task_id):
        with self._tasks_lock:
            return self._tasks.get(task_id)

    def _apply_state(self, result):
        task = self._known_task(result.id)
        if task is None:
            return
        if result.finished:
            task.finish(result)
        elif result.state == protocol.UNKNOWN:
            if task.id in self._watched:
                task.fail(errors.UnknownTask(
                    f"the head at {self.endpoint} does not know task {task.id}: it never "
                    "issued it, its result has expired (--keep-results), or the head was "
                    "restarted without --store", task.id))
        else:
            task.note_state(result.state)

    # ---- waiting ----

    def _watch(self, task):
        entry = self._watched.get(task.id)
        if entry is not None:
            entry[0] += 1
            return
        self._watched[task.id] = [1, task]
        if task.done():
            return
        pushed = task.push_epoch == self._epoch and self._state == UP
        self._poll_later(task.id, PUSH_GRACE_S if pushed else 0)

    def _unwatch(self, task):
        entry = self._watched.get(task.id)
        if entry is not None:
            entry[0] -= 1
            if entry[0] <= 0:
                del self._watched[task.id]

    def _poll_later(self, task_id, delay):
        if task_id in self._watched:
            heapq.heappush(self._poll_at, (time.monotonic() + delay, next(self._seq), task_id))

    def _schedule_polls(self, now):
        while self._poll_at and self._poll_at[0][0] <= now:
            _, _, task_id = heapq.heappop(self._poll_at)
            entry = self._watched.get(task_id)
            if entry is None or entry[1].done() or task_id in self._polls:
                continue
            if self._state != UP:
                continue  # _on_up polls every watched task
            r = _Request("poll", {"id": task_id, "wait_ms": POLL_WAIT_MS},
                         POLL_WAIT_MS / 1000 + max(self._connect_timeout, 5.0), retry=False,
                         task=entry[1])
            self._polls[task_id] = r
            self._outbox.append(r)
            heapq.heappush(self._deadlines, (r.deadline, next(self._seq), r))

    # ---- connection ----

    def _read_monitor(self):
        while True:
            try:
                event = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            self._on_event(event["event"], event["value"])

    def _on_event(self, event, value):
        if event == zmq.EVENT_CONNECTED:
            self._tcp_connected = True
        elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self._on_up()
        elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            self._tcp_connected = False
            self._on_down(f"the head refused this client's CURVE key (ZAP status {value}): "
                          "its public key is not in the head's --curve-producers allow-list")
        elif event in (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                       zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL):
            self._tcp_connected = False
            self._on_down("the handshake with the head failed: " + self._handshake_hint())
        elif event == zmq.EVENT_DISCONNECTED:
            if self._state == UP:
                self._on_down(f"the connection to the head at {self.endpoint} closed")
            elif self._tcp_connected:
                self._on_down("the head closed the connection during the handshake: "
                              + self._handshake_hint())
            self._tcp_connected = False
        elif event == zmq.EVENT_CONNECT_RETRIED:
            if self._state == CONNECTING:
                self._on_down(f"nothing answers at {self.endpoint} (is `ventilator --serve` "
                              "running and listening there?)")

    def _handshake_hint(self):
        if self._curve is None:
            return "the head uses CURVE? give the client curve=(server.pub, producer.key)"
        return ("wrong server public key, this client's key not in --curve-producers, or the "
                "head does not use CURVE")

    def _check_connect_deadline(self, now):
        if self._state == CONNECTING and now >= self._connect_deadline:
            self._on_down(f"no connection to the head at {self.endpoint} within "
                          f"{self._connect_timeout:g} s")

    def _on_up(self):
        self._epoch += 1
        was = self._state
        self._state, self._reason = UP, ""
        if was == DOWN:
            log.info("taskpipe client: connected to the head at %s again", self.endpoint)
        for task_id in list(self._watched):
            self._poll_later(task_id, 0)

    def _on_down(self, reason):
        was = self._state
        self._state, self._reason = DOWN, reason
        if was != DOWN:
            log.warning("taskpipe client: head unavailable: %s", reason)
        again = []
        for r in list(self._pending.values()):
            if r.kind == "poll":
                r.finished = True
            elif r.retry:
                again.append(r)
            else:
                r.fail(errors.ConnectionLost(
                    f"{reason} before the head answered this {r.kind}; the task may or may "
                    "not have been accepted (a submit with key= is safe to repeat)"))
        self._pending.clear()
        self._polls.clear()
        kept = collections.deque(again)
        for r in self._outbox:
            if r.finished:
                continue
            if r.sent and r.retry:
                kept.append(r)
            elif r.kind == "poll":
                r.finished = True
                self._polls.pop(r.task.id, None)
            else:
                r.fail(errors.HeadUnavailable(self._down_message()))
        self._outbox = kept

    def _down_message(self):
        return f"head unavailable: {self._reason}"


def _result(msg):
    return Result.from_state(msg)
