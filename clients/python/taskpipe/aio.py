"""The asyncio client: the same verbs as Client, as coroutines.

    async with taskpipe.AsyncClient("tcp://head:5560") as client:
        task = await client.submit(b"photo.jpg")
        result = await task.wait(timeout=30)
        async for task in client.as_completed(tasks, timeout=60): ...

It shares Client's I/O thread (one per AsyncClient), so no call ever blocks the event loop,
and one AsyncClient may serve several event loops and threads. Cancelling a coroutine stops the
waiting, not the request: a submit already sent may still be accepted.
"""

import asyncio
import time

from . import errors
from .client import (DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, Client, Task, _by_slot,
                     _check_timeout, _unique, dumps_json)

_GRACE = 2.0


class AsyncTask(Task):
    """The asyncio face of a Task: the same attributes, and coroutines for the verbs."""

    def __init__(self, client, slot, key=None, created=None):
        super().__init__(client._sync, slot, key, created)
        self._async_client = client

    async def wait(self, timeout):
        """As Task.wait, without blocking the event loop."""
        slot = self._slot
        if not slot.done():
            _check_timeout(timeout)
            self._client._check_open()
            loop = asyncio.get_running_loop()
            finished = loop.create_future()

            def on_done(_):
                loop.call_soon_threadsafe(_set_if_pending, finished)

            engine = self._client._engine
            slot.add_callback(on_done)
            engine.watch(slot)
            try:
                await asyncio.wait_for(finished, timeout)
            except asyncio.TimeoutError:
                raise self._client._wait_timeout([slot], timeout) from None
            finally:
                slot.remove_callback(on_done)
                engine.unwatch(slot)
        return slot.outcome()

    async def status(self, wait=0):
        return await self._async_client.status(self.id, wait=wait)

    async def cancel(self):
        return await self._async_client.cancel(self.id)

    def __repr__(self):
        return super().__repr__().replace("<Task", "<AsyncTask", 1)


class AsyncClient:
    """See Client for the arguments and the semantics of each verb."""

    def __init__(self, endpoint, curve=None, *, timeout=DEFAULT_TIMEOUT,
                 connect_timeout=DEFAULT_CONNECT_TIMEOUT):
        self._sync = Client(endpoint, curve, timeout=timeout, connect_timeout=connect_timeout)
        self.endpoint = endpoint
        self.timeout = timeout

    async def submit(self, payload, key=None, delay=None, *, notify=True):
        future = self._sync._submit_future(payload, key, delay, notify)
        slot, created = await _await(future, self.timeout)
        return AsyncTask(self, slot, key, created)

    async def submit_json(self, value, key=None, delay=None, *, notify=True):
        return await self.submit(dumps_json(value), key, delay, notify=notify)

    async def submit_many(self, payloads, keys=None, delay=None, *, notify=True):
        future = self._sync._submit_many_future(payloads, keys, delay, notify)
        outcomes = await _await(future, self.timeout)
        return self._sync._many_tasks(
            outcomes, lambda slot, key, created: AsyncTask(self, slot, key, created))

    async def status(self, id=None, *, key=None, wait=0):
        future, timeout = self._sync._status_future(id, key, wait)
        return await _await(future, timeout)

    async def cancel(self, id):
        return await _await(self._sync._cancel_future(id), self.timeout)

    def task(self, id):
        return AsyncTask(self, self._sync.task(id)._slot)

    async def as_completed(self, tasks, timeout=None):
        """Yields the AsyncTasks as they finish; WaitTimeout after `timeout` seconds."""
        _check_timeout(timeout)
        self._sync._check_open()
        tasks = _unique(tasks)
        if any(t._client is not self._sync for t in tasks):
            raise ValueError("as_completed() takes tasks of this client only")
        loop = asyncio.get_running_loop()
        finished = asyncio.Queue()
        deadline = None if timeout is None else time.monotonic() + timeout
        left = _by_slot(tasks)
        slots = [handles[0]._slot for handles in left.values()]
        engine = self._sync._engine

        def on_done(slot):
            loop.call_soon_threadsafe(finished.put_nowait, slot)

        for slot in slots:
            slot.add_callback(on_done)
        for slot in slots:
            engine.watch(slot)
        try:
            while left:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    slot = await asyncio.wait_for(finished.get(), remaining)
                except asyncio.TimeoutError:
                    raise self._sync._wait_timeout([h[0]._slot for h in left.values()],
                                                   timeout) from None
                for t in left.pop(id(slot), ()):
                    yield t
        finally:
            for slot in slots:
                slot.remove_callback(on_done)
                engine.unwatch(slot)

    def connection(self):
        return self._sync.connection()

    async def close(self):
        await asyncio.get_running_loop().run_in_executor(None, self._sync.close)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    def __repr__(self):
        return repr(self._sync).replace("Client", "AsyncClient", 1)


def _set_if_pending(future):
    if not future.done():
        future.set_result(None)


async def _await(future, timeout):
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout + _GRACE)
    except asyncio.TimeoutError:
        if future.done():
            raise
        raise errors.RequestTimeout("the client's I/O thread did not answer in time") from None
