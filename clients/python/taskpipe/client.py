"""The blocking client: Client, and the Task handles it returns.

    with taskpipe.Client("tcp://head:5560") as client:
        task = client.submit(b"photo.jpg", key="thumb-42")
        result = task.wait(timeout=30)          # a Result, or WaitTimeout
        print(result.state, result.stdout)

Thread safety: a Client may be shared by any number of threads (one I/O thread owns the
socket, see _engine.py). It must not cross a fork: create it in the process that uses it.

Time: no call blocks longer than its timeout. submit, status and cancel wait at most
`timeout` (5 s) for the head's answer (status with wait=W: W + timeout); a head that is down
fails them at once with HeadUnavailable. Task.wait and as_completed wait at most the timeout
they are given, and ride out a head that restarts in the meantime.
"""

import datetime
import json
import math
import os
import queue
import time

from . import errors, protocol
from ._engine import Engine
from .curve import as_curve

DEFAULT_TIMEOUT = 5.0
DEFAULT_CONNECT_TIMEOUT = 1.0
_GRACE = 2.0  # beyond the I/O thread's own deadline, in case that thread is wedged
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class Task:
    """A task the head has accepted, as returned by submit (or any task id of that head, from
    Client.task).

    `id` is the head's id for it, `key` its idempotency key if it was given one, `created`
    False when a submit with an existing key returned the existing task (None for a handle
    made by Client.task). Handles for the same id share what the client knows of the task.
    Safe to use from any thread.
    """

    def __init__(self, client, slot, key=None, created=None):
        self.id = slot.id
        self.key = key if key is not None else slot.key
        self.created = created
        self._client = client
        self._slot = slot

    @property
    def state(self):
        """The last state this client heard of (no request is made)."""
        return self._slot.state

    @property
    def result(self):
        """The Result once the task has finished, else None (no request is made)."""
        return self._slot.result

    def done(self):
        """True once the task has finished (or is known to be unknown to the head)."""
        return self._slot.done()

    def wait(self, timeout):
        """Waits at most `timeout` seconds (None: for ever) for the task to finish; returns its
        Result, whatever its state (see Result.ok, Result.raise_for_status). Raises WaitTimeout
        when the time is up, UnknownTask if the head does not know the id. A head restarted
        meanwhile (with --store) is waited for within the same timeout."""
        slot = self._slot
        if not slot.done():
            _check_timeout(timeout)
            self._client._check_open()
            engine = self._client._engine
            engine.watch(slot)
            try:
                finished = slot.finished.wait(timeout)
            finally:
                engine.unwatch(slot)
            if not finished:
                raise self._client._wait_timeout([slot], timeout)
        return slot.outcome()

    def status(self, wait=0):
        """Asks the head for this task's state now (see Client.status)."""
        return self._client.status(self.id, wait=wait)

    def cancel(self):
        """Cancels the task if it has not been sent to a worker yet (see Client.cancel)."""
        return self._client.cancel(self.id)

    def __repr__(self):
        key = f", key={self.key!r}" if self.key is not None else ""
        return f"<Task {self.id}{key} {self.state or '?'}>"


class Client:
    """A producer connected to one head (`ventilator --serve --listen ENDPOINT`).

    `curve`: a taskpipe.Curve, or a (server_public_file, key_file) pair, for a head run with
    --curve-key and --curve-producers. `timeout`: seconds to wait for the head's answer to a
    request. `connect_timeout`: how long the first request waits for the first connection.
    """

    def __init__(self, endpoint, curve=None, *, timeout=DEFAULT_TIMEOUT,
                 connect_timeout=DEFAULT_CONNECT_TIMEOUT):
        _check_timeout(timeout, allow_none=False)
        _check_timeout(connect_timeout, allow_none=False)
        self.endpoint = endpoint
        self.timeout = timeout
        self._pid = os.getpid()
        self._engine = Engine(endpoint, as_curve(curve), connect_timeout)

    # ---- the verbs ----

    def submit(self, payload, key=None, delay=None, *, notify=True):
        """Submits one task; returns its Task once the head has accepted it (with --store: once
        it is on disk). `payload`: bytes, or str (sent as UTF-8), at most 1 MiB; the handler
        gets it as a batch task gets its input line. `key`: an idempotency key (1 to 256 bytes):
        a second submit with the same key returns the first task (Task.created False), or raises
        Conflict if the payload differs. `delay`: seconds (a number or a timedelta) to wait
        before running it, or a timezone-aware datetime to run it no earlier than.
        `notify=False` when this process will not wait for it (wait() then polls)."""
        slot, created = self._call(self._submit_future(payload, key, delay, notify),
                                   self.timeout)
        return Task(self, slot, key, created)

    def submit_json(self, value, key=None, delay=None, *, notify=True):
        """submit() with `value` encoded as compact JSON, for handlers that read JSON."""
        return self.submit(dumps_json(value), key, delay, notify=notify)

    def submit_many(self, payloads, keys=None, delay=None, *, notify=True):
        """Submits every payload without waiting for one answer before sending the next, and
        returns their Tasks in order once the head has answered them all: a bulk producer's
        submit. `keys`: None, or one key (or None) per payload; `delay` applies to each. The
        client's timeout covers the whole call. If any submission fails, raises
        SubmitManyFailed after all have their answers (.tasks, .errors)."""
        return self._many_tasks(self._call(
            self._submit_many_future(payloads, keys, delay, notify), self.timeout))

    def status(self, id=None, *, key=None, wait=0):
        """The head's Result for a task, by id or by key. `wait`: if it has not finished, wait
        up to this many seconds (at most 600) for it to finish. The state may be `unknown`."""
        future, timeout = self._status_future(id, key, wait)
        return self._call(future, timeout)

    def cancel(self, id):
        """Cancels a task that has not been sent to a worker yet; returns its Result after the
        request: state `cancelled`, or its current state if it was running or had finished."""
        return self._call(self._cancel_future(id), self.timeout)

    def task(self, id):
        """A Task handle for an id this client did not submit (from a database, another
        process); wait() on it long-polls the head."""
        protocol.check_id(id)
        return Task(self, self._engine.slot(id))

    def as_completed(self, tasks, timeout=None):
        """Yields the tasks as they finish (in that order). Raises WaitTimeout if `timeout`
        seconds pass before all have finished. Each yielded task's wait(0) gives its Result."""
        _check_timeout(timeout)
        self._check_process()
        self._check_open()
        tasks = _unique(tasks)
        if any(t._client is not self for t in tasks):
            raise ValueError("as_completed() takes tasks of this client only")
        deadline = None if timeout is None else time.monotonic() + timeout
        finished = queue.SimpleQueue()
        left = _by_slot(tasks)
        slots = [handles[0]._slot for handles in left.values()]
        for slot in slots:
            slot.add_callback(finished.put)
        for slot in slots:
            self._engine.watch(slot)
        try:
            while left:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    slot = finished.get(timeout=remaining)
                except queue.Empty:
                    raise self._wait_timeout([h[0]._slot for h in left.values()],
                                             timeout) from None
                yield from left.pop(id(slot), ())
        finally:
            for slot in slots:
                slot.remove_callback(finished.put)
                self._engine.unwatch(slot)

    def connection(self):
        """('connecting' | 'up' | 'down', reason): the client's view of its connection."""
        return self._engine.connection()

    def close(self):
        """Stops the I/O thread; pending calls fail with ClientClosed. Idempotent."""
        self._engine.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state, _ = self._engine.connection()
        return f"<taskpipe.Client {self.endpoint} {state}>"

    # ---- shared with AsyncClient ----

    def _submit_future(self, payload, key, delay, notify):
        self._check_process()
        payload = as_payload(payload)
        if key is not None:
            protocol.check_key(key)
        delay_ms, not_before_us = delay_fields(delay)
        return self._engine.request("submit", {
            "payload": payload, "key": key, "delay_ms": delay_ms,
            "not_before_us": not_before_us, "notify": bool(notify),
        }, self.timeout, retry=key is not None)

    def _submit_many_future(self, payloads, keys, delay, notify):
        self._check_process()
        payloads = [as_payload(p) for p in payloads]
        if keys is None:
            keys = [None] * len(payloads)
        else:
            keys = list(keys)
            if len(keys) != len(payloads):
                raise ValueError(f"{len(keys)} keys for {len(payloads)} payloads")
            for key in keys:
                if key is not None:
                    protocol.check_key(key)
        delay_ms, not_before_us = delay_fields(delay)
        return self._engine.request_many("submit", [
            {"payload": p, "key": k, "delay_ms": delay_ms, "not_before_us": not_before_us,
             "notify": bool(notify)} for p, k in zip(payloads, keys)
        ], self.timeout, retry=lambda fields: fields["key"] is not None)

    def _many_tasks(self, outcomes, task_class=None):
        task_class = task_class or (lambda slot, key, created: Task(self, slot, key, created))
        tasks, failures = [], []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                tasks.append(None)
                failures.append(outcome)
            else:
                slot, created = outcome
                tasks.append(task_class(slot, slot.key, created))
                failures.append(None)
        if any(f is not None for f in failures):
            raise errors.SubmitManyFailed(tasks, failures)
        return tasks

    def _status_future(self, task_id, key, wait):
        self._check_process()
        if (task_id is None) == (key is None):
            raise TypeError("status() takes an id or a key=, not both")
        if task_id is not None:
            protocol.check_id(task_id)
        else:
            protocol.check_key(key)
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not (
                0 <= wait <= protocol.MAX_WAIT_MS / 1000):
            raise ValueError(f"wait= is 0 to {protocol.MAX_WAIT_MS // 1000} seconds")
        timeout = wait + self.timeout
        return self._engine.request("status", {
            "id": task_id, "key": key, "wait_ms": math.ceil(wait * 1000),
        }, timeout, retry=True), timeout

    def _cancel_future(self, task_id):
        self._check_process()
        protocol.check_id(task_id)
        return self._engine.request("cancel", {"id": task_id}, self.timeout, retry=True)

    def _call(self, future, timeout):
        try:
            return future.result(timeout + _GRACE)
        except TimeoutError:
            if future.done():
                raise  # the request's own RequestTimeout (TimeoutError is its base)
            raise errors.RequestTimeout("the client's I/O thread did not answer in time") \
                from None

    def _check_open(self):
        if self._engine.closed:
            raise errors.ClientClosed("the client is closed")

    def _check_process(self):
        if os.getpid() != self._pid:
            raise errors.TaskpipeError(
                "this taskpipe Client was created in another process (before a fork); "
                "create one in each process that uses it")

    def _wait_timeout(self, unfinished, timeout):
        """The WaitTimeout for these slots."""
        state, reason = self._engine.connection()
        head = f"; the head is unavailable: {reason}" if state != "up" else ""
        first = unfinished[0]
        if len(unfinished) == 1:
            message = (f"task {first.id} not finished after {timeout:g} s "
                       f"(last state: {first.state or 'unknown to this client'}){head}")
        else:
            message = (f"{len(unfinished)} tasks not finished after {timeout:g} s "
                       f"(task {first.id}: {first.state or '?'}, ...){head}")
        return errors.WaitTimeout(message, first.id, first.state)


# ---- argument checks, shared with AsyncClient ----

def as_payload(payload):
    if isinstance(payload, str):
        payload = payload.encode()
    elif isinstance(payload, (bytes, bytearray, memoryview)):
        payload = bytes(payload)
    else:
        raise TypeError(f"payload must be bytes or str, not {type(payload).__name__} "
                        "(submit_json() sends any JSON value)")
    if len(payload) > protocol.MAX_PAYLOAD:
        raise errors.PayloadTooLarge(
            "too_large", f"payload of {len(payload)} bytes; at most {protocol.MAX_PAYLOAD}")
    return payload


def dumps_json(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def delay_fields(delay):
    """(delay_ms, not_before_us) for submit's `delay`."""
    if delay is None:
        return 0, 0
    if isinstance(delay, datetime.datetime):
        if delay.tzinfo is None:
            raise ValueError("delay= as a datetime must be timezone-aware, e.g. "
                             "datetime.now(timezone.utc) + timedelta(minutes=5)")
        us = (delay - _EPOCH) // datetime.timedelta(microseconds=1)
        return 0, min(max(us, 0), protocol.MAX_UINT)
    if isinstance(delay, datetime.timedelta):
        seconds = delay.total_seconds()
    elif isinstance(delay, (int, float)) and not isinstance(delay, bool):
        seconds = float(delay)
    else:
        raise TypeError("delay= takes seconds (a number or a timedelta) or a datetime")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"delay= must be 0 or more seconds, not {delay!r}")
    return min(math.ceil(seconds * 1000), protocol.MAX_UINT), 0


def _check_timeout(timeout, allow_none=True):
    if timeout is None and allow_none:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (
            timeout >= 0 and math.isfinite(timeout)):
        raise ValueError(f"a timeout is a number of seconds, 0 or more, not {timeout!r}")


def _by_slot(tasks):
    """{id(slot): [handles]} for these task handles, in their order."""
    out = {}
    for t in tasks:
        out.setdefault(id(t._slot), []).append(t)
    return out


def _unique(tasks):
    seen, out = set(), []
    for t in tasks:
        if id(t) not in seen:
            seen.add(id(t))
            out.append(t)
    return out
