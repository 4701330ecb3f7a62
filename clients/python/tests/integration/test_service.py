"""The client against the real programs: a head (`ventilator --serve`), a `sink --serve` and
workers, each test with its own set on ipc:// endpoints (conftest.py)."""

import asyncio
import os
import subprocess
import threading
import time

import pytest

import taskpipe
from programs import binary, wait_for

ECHO = ("--builtin", "echo")     # stdout: the payload and a newline
SLEEP = ("--builtin", "sleep")   # sleeps the payload's milliseconds


def test_submit_and_wait(service):
    s = service().start(*ECHO)
    with s.client() as client:
        task = client.submit(b"hello")
        assert task.id > 0 and task.created
        result = task.wait(30)
        assert result.ok and result.stdout == b"hello\n", s.logs()
        assert result.exit_code == 0 and result.attempts >= 1
        assert result.worker and result.worker.endswith(f":{s.workers[0].pid}")
        assert result.finished_us >= result.submitted_us > 0
        assert client.status(task.id).state == "ok"
        assert client.status(task.id).stdout == b"hello\n"


def test_json_payload_and_many_tasks_as_completed(service):
    s = service().start(*ECHO, workers=2)
    with s.client() as client:
        tasks = [client.submit_json({"n": i}) for i in range(200)]
        assert len({t.id for t in tasks}) == 200
        done = list(client.as_completed(tasks, timeout=60))
        assert sorted(t.id for t in done) == sorted(t.id for t in tasks)
        assert sorted(t.wait(0).json()["n"] for t in done) == list(range(200))


def test_a_failing_handler(service):
    s = service().start("--builtin", "fail")
    with s.client() as client:
        result = client.submit(b"it broke").wait(30)
        assert result.state == "failed" and result.exit_code == 1
        assert b"it broke" in result.stderr
        with pytest.raises(taskpipe.TaskFailed, match="it broke"):
            result.raise_for_status()


def test_duplicate_key(service):
    s = service().start(*ECHO)
    with s.client() as client:
        first = client.submit(b"a.jpg", key="upload-1")
        again = client.submit(b"a.jpg", key="upload-1")
        assert again.id == first.id and first.created and not again.created
        assert first.wait(30).stdout == b"a.jpg\n"
        after = client.submit(b"a.jpg", key="upload-1")  # finished and kept: still the same task
        assert after.id == first.id and not after.created
        assert after.wait(30).stdout == b"a.jpg\n"
        assert client.status(key="upload-1").id == first.id


def test_conflict(service):
    s = service().start(*ECHO)
    with s.client() as client:
        first = client.submit(b"a.jpg", key="upload-2")
        with pytest.raises(taskpipe.Conflict) as info:
            client.submit(b"b.jpg", key="upload-2")
        assert info.value.existing_id == first.id


def test_delay(service):
    s = service().start(*ECHO)
    with s.client() as client:
        start = time.monotonic()
        task = client.submit(b"later", delay=1.5)
        assert task.state == "delayed"
        assert client.status(task.id).state == "delayed"
        result = task.wait(30)
        assert result.ok and time.monotonic() - start >= 1.4
        assert result.started_us - result.submitted_us >= 1_400_000


def test_cancel(service):
    s = service().start(*ECHO)
    with s.client() as client:
        task = client.submit(b"never", delay=60)
        assert client.cancel(task.id).state == "cancelled"
        assert task.wait(10).state == "cancelled"
        assert client.cancel(task.id).state == "cancelled"  # again: still cancelled
        finished = client.submit(b"now")
        assert finished.wait(30).ok
        assert client.cancel(finished.id).state == "ok"     # too late: it ran
        assert client.cancel(10**12).state == "unknown"


def test_cancel_a_running_task_does_not_stop_it(service):
    s = service().start(*SLEEP)
    with s.client() as client:
        task = client.submit(b"1000")
        wait_for(lambda: client.status(task.id).state == "running", 20, "the task to run")
        assert client.cancel(task.id).state == "running"
        assert task.wait(30).ok


def test_status_of_an_id_never_issued(service):
    s = service().start(*ECHO)
    with s.client() as client:
        assert client.status(10**12).state == "unknown"
        with pytest.raises(taskpipe.UnknownTask):
            client.task(10**12).wait(10)


def test_a_head_that_is_down_fails_at_once(workdir):
    with taskpipe.Client(f"ipc://{workdir}/nobody", connect_timeout=5) as client:
        start = time.monotonic()
        with pytest.raises(taskpipe.HeadUnavailable):
            client.submit(b"a")
        assert time.monotonic() - start < 1.0


def test_head_restarted_with_its_store_while_a_client_waits(service):
    s = service(store=True).start(*SLEEP)
    with s.client() as client:
        delayed = client.submit(b"10", delay=2.0)        # waiting for its time when the head dies
        running = client.submit(b"1500")                  # on a worker when the head dies
        wait_for(lambda: client.status(running.id).state == "running", 20, "the task to run")
        outcome = {}

        def waiter():
            try:
                outcome["results"] = [t.wait(60) for t in (delayed, running)]
            except Exception as e:
                outcome["error"] = e

        thread = threading.Thread(target=waiter)
        thread.start()
        s.head.kill()                                     # SIGKILL: only the store survives
        wait_for(lambda: client.connection()[0] == "down", 10, "the client to notice")
        s.start_head()
        thread.join(60)
        assert "error" not in outcome, f"{outcome['error']!r}\n{s.logs()}"
        assert [r.state for r in outcome["results"]] == ["ok", "ok"], s.logs()
        # The restarted head knows both tasks, and new ids do not reuse old ones.
        assert client.status(running.id).state == "ok"
        newer = client.submit(b"1")
        assert newer.id > max(delayed.id, running.id)
        assert newer.wait(30).ok


def test_head_restarted_with_its_store_keeps_keys(service):
    s = service(store=True).start(*ECHO)
    with s.client() as client:
        first = client.submit(b"x", key="kept")
        assert first.wait(30).ok
        s.head.stop()
        wait_for(lambda: client.connection()[0] == "down", 10, "the client to notice")
        s.start_head()
        # The client reconnects by itself (until then a submit fails at once).
        wait_for(lambda: client.connection()[0] == "up", 20, "the client to reconnect")
        again = client.submit(b"x", key="kept")
        assert again.id == first.id and not again.created
        assert again.wait(10).stdout == b"x\n"


def test_a_worker_killed_mid_task(service):
    s = service()
    s.start_sink()
    s.start_head()
    doomed = s.start_worker(*SLEEP, concurrency=1)
    with s.client() as client:
        task = client.submit(b"2000")
        wait_for(lambda: client.status(task.id).state == "running", 20, "the task to run")
        doomed.kill()
        rescuer = s.start_worker(*SLEEP, concurrency=1)
        result = task.wait(60)
        assert result.ok, s.logs()
        assert result.worker.endswith(f":{rescuer.pid}")
        assert result.attempts >= 2


def test_asyncio_client(service):
    s = service().start(*ECHO)
    s.client().close()  # the head listens: a client that finds nobody there fails at once

    async def main():
        async with taskpipe.AsyncClient(s.listen, timeout=10, connect_timeout=10) as client:
            tasks = await asyncio.gather(*(client.submit(f"p{i}") for i in range(50)))
            results = await asyncio.gather(*(t.wait(30) for t in tasks))
            assert [r.stdout for r in results] == [f"p{i}\n".encode() for i in range(50)]
            delayed = await client.submit(b"x", delay=30)
            assert (await delayed.cancel()).state == "cancelled"

    asyncio.run(asyncio.wait_for(main(), 60))


def test_curve(service, workdir):
    keygen = binary("keygen", "keygen")
    keys = os.path.join(workdir, "keys")
    workers = os.path.join(workdir, "workers")
    producers = os.path.join(workdir, "producers")
    for d in (keys, workers, producers):
        os.mkdir(d)
    for name in ("server", "worker", "producer", "stranger"):
        subprocess.run([keygen, name], cwd=keys, check=True, capture_output=True, timeout=10)
    os.rename(f"{keys}/worker.pub", f"{workers}/worker.pub")
    os.rename(f"{keys}/producer.pub", f"{producers}/producer.pub")
    s = service(curve={"server_key": f"{keys}/server.key", "server_pub": f"{keys}/server.pub",
                       "workers": workers, "producers": producers,
                       "worker_key": f"{keys}/worker.key"}).start(*ECHO)

    with s.client(curve=(f"{keys}/server.pub", f"{keys}/producer.key")) as client:
        assert client.submit(b"secret").wait(30).stdout == b"secret\n"

    # A worker's key does not admit a producer; a stranger's key and no key are refused too.
    for curve in ((f"{keys}/server.pub", f"{keys}/stranger.key"), None):
        with taskpipe.Client(s.listen, curve=curve, connect_timeout=10) as client:
            with pytest.raises(taskpipe.HeadUnavailable):
                client.submit(b"a")
    # A worker's key pair, allowed on the workers' sockets, is refused as a producer.
    with taskpipe.Client(s.listen, curve=(f"{keys}/server.pub", f"{keys}/worker.key"),
                         connect_timeout=10) as client:
        with pytest.raises(taskpipe.HeadUnavailable, match="allow-list|handshake"):
            client.submit(b"a")
