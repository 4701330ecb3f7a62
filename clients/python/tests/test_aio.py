"""The asyncio client against the fake head: the same verbs as coroutines, and an event loop
that is never blocked (a ticker keeps running while the client waits)."""

import asyncio
import time

import pytest

import taskpipe


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


async def ticking(coro):
    """Runs coro while a ticker counts 10 ms ticks: a blocked loop would starve it."""
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    t = asyncio.create_task(ticker())
    start = time.monotonic()
    try:
        value = await coro
    finally:
        t.cancel()
    return value, ticks, time.monotonic() - start


def test_submit_wait_status_cancel(head):
    async def main():
        async with taskpipe.AsyncClient(head.endpoint, timeout=2) as client:
            task = await client.submit(b"a", key="k")
            assert isinstance(task, taskpipe.AsyncTask) and task.id == 1 and task.created
            again = await client.submit_json({"x": 1})
            assert (await client.status(key="k")).state == "queued"
            assert (await again.cancel()).state == "cancelled"
            head.finish(task.id, stdout=b"done")
            result, ticks, took = await ticking(task.wait(5))
            assert result.stdout == b"done"
            assert (await again.wait(1)).state == "cancelled"
            assert (await task.status()).state == "ok"
    run(main())
    assert head.requests("submit")[1]["payload"] == b'{"x":1}'


def test_wait_timeout_does_not_block_the_loop(head):
    async def main():
        async with taskpipe.AsyncClient(head.endpoint, timeout=2) as client:
            task = await client.submit(b"a")
            with pytest.raises(taskpipe.WaitTimeout, match="not finished after 0.3 s"):
                await ticking(task.wait(0.3))

    run(main())


def test_the_loop_keeps_running_while_a_request_waits(head):
    head.answer_delay = 0.3

    async def main():
        async with taskpipe.AsyncClient(head.endpoint, timeout=2) as client:
            task, ticks, took = await ticking(client.submit(b"a"))
            assert task.id == 1 and took >= 0.25
            assert ticks >= 10  # 0.3 s of 10 ms ticks, with room for a loaded machine
    run(main())


def test_a_head_that_is_down_fails_at_once(sockdir):
    async def main():
        async with taskpipe.AsyncClient(f"ipc://{sockdir}/nobody", connect_timeout=5) as client:
            start = time.monotonic()
            with pytest.raises(taskpipe.HeadUnavailable, match="nothing answers"):
                await client.submit(b"a")
            assert time.monotonic() - start < 1.0
    run(main())


def test_as_completed(head):
    async def main():
        async with taskpipe.AsyncClient(head.endpoint, timeout=2) as client:
            tasks = [await client.submit(str(i)) for i in range(4)]
            for i in (2, 0, 3, 1):
                head.finish(tasks[i].id, stdout=str(i).encode())
            seen = [(await t.wait(0)).stdout async for t in client.as_completed(tasks, 5)]
            assert sorted(seen) == [b"0", b"1", b"2", b"3"]
            more = [await client.submit(str(i)) for i in range(2)]
            head.finish(more[0].id)
            got = []
            with pytest.raises(taskpipe.WaitTimeout, match="task 6 not finished after 0.3 s"):
                async for t in client.as_completed(more, timeout=0.3):
                    got.append(t)
            assert got == [more[0]]
    run(main())


def test_many_concurrent_submits(head):
    async def main():
        async with taskpipe.AsyncClient(head.endpoint, timeout=5) as client:
            tasks = await asyncio.gather(*(client.submit(f"p{i}") for i in range(300)))
            assert len({t.id for t in tasks}) == 300
            for t in tasks:
                head.finish(t.id, stdout=head.tasks[t.id].payload)
            results = await asyncio.gather(*(t.wait(10) for t in tasks))
            assert [r.stdout for r in results] == [f"p{i}".encode() for i in range(300)]
    run(main())


def test_submit_many(head):
    async def main():
        async with taskpipe.AsyncClient(head.endpoint, timeout=5) as client:
            tasks = await client.submit_many([b"a", b"b"], keys=["k1", "k2"])
            assert all(isinstance(t, taskpipe.AsyncTask) for t in tasks)
            head.finish(tasks[1].id, stdout=b"b!")
            assert (await tasks[1].wait(5)).stdout == b"b!"
    run(main())


def test_a_head_restarted_while_a_coroutine_waits(head):
    async def main():
        async with taskpipe.AsyncClient(head.endpoint, timeout=2) as client:
            task = await client.submit(b"a")
            waiter = asyncio.create_task(task.wait(10))
            head.stop()
            while client.connection()[0] == "up":
                await asyncio.sleep(0.005)
            head.start()
            while not any(r.get("id") == task.id for r in head.requests("status")):
                await asyncio.sleep(0.005)
            head.finish(task.id, stdout=b"after")
            assert (await waiter).stdout == b"after"
    run(main())
