"""The blocking client against the fake head: the verbs, the errors, the timeouts, a head that
is down or restarts, and many threads sharing one client."""

import datetime
import json
import os
import threading
import time

import msgpack
import pytest

import taskpipe
from taskpipe import _engine
from fake_head import FakeHead


def raises_within(exc_type, seconds, fn):
    """fn() raises exc_type, and does so within `seconds`; returns the exception."""
    start = time.monotonic()
    with pytest.raises(exc_type) as info:
        fn()
    took = time.monotonic() - start
    assert took < seconds, f"{exc_type.__name__} after {took:.2f} s, expected < {seconds} s"
    return info.value


def wait_until(condition, timeout=10, what="the condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


# ---- submit and wait ----

def test_submit_then_wait_returns_the_pushed_result(head, client):
    task = client.submit(b"photo.jpg")
    assert task.id == 1 and task.created is True and task.state == "queued"
    assert head.requests("submit")[0]["payload"] == b"photo.jpg"
    head.finish(task.id, stdout=b"made photo.thumb.jpg\n")
    result = task.wait(timeout=5)
    assert result.ok and result.finished and result.state == "ok"
    assert result.stdout == b"made photo.thumb.jpg\n" and result.text().strip().endswith("jpg")
    assert result.raise_for_status() is result
    assert task.done() and task.result is result
    # "done" came pushed: the client never had to ask.
    assert head.requests("status") == []


def test_a_failed_task_is_a_result_and_raise_for_status_raises(head, client):
    task = client.submit("x")
    head.finish(task.id, "failed", exit_code=3, stderr=b"convert: no such file\n")
    result = task.wait(5)
    assert not result.ok and result.exit_code == 3
    with pytest.raises(taskpipe.TaskFailed, match="exit code 3.*no such file"):
        result.raise_for_status()


def test_str_payload_is_utf8_and_submit_json_is_compact_json(head, client):
    client.submit("héllo")
    client.submit_json({"kind": "thumbnail", "path": "a b.jpg", "n": [1, 2]})
    sent = head.requests("submit")
    assert sent[0]["payload"] == "héllo".encode()
    assert sent[1]["payload"] == b'{"kind":"thumbnail","path":"a b.jpg","n":[1,2]}'


def test_result_json_reads_the_handlers_stdout(head, client):
    task = client.submit_json({"n": 2})
    head.finish(task.id, stdout=json.dumps({"square": 4}).encode())
    assert task.wait(5).json() == {"square": 4}


def test_bad_arguments_fail_before_anything_is_sent(head, client):
    with pytest.raises(taskpipe.PayloadTooLarge):
        client.submit(b"x" * ((1 << 20) + 1))
    with pytest.raises(TypeError):
        client.submit(42)
    with pytest.raises(ValueError):
        client.submit(b"x", key="")
    with pytest.raises(ValueError):
        client.submit(b"x", delay=-1)
    with pytest.raises(ValueError, match="timezone-aware"):
        client.submit(b"x", delay=datetime.datetime(2030, 1, 1))
    with pytest.raises(TypeError):
        client.status(1, key="k")
    with pytest.raises(ValueError):
        client.status(1, wait=601)
    client.submit(b"x" * (1 << 20))  # exactly 1 MiB is allowed
    assert len(head.requests("submit")) == 1


# ---- submit_many ----

def test_submit_many_sends_without_waiting_for_each_answer(head):
    head.answer_delay = 0.4
    with taskpipe.Client(head.endpoint, timeout=5) as client:
        start = time.monotonic()
        tasks = client.submit_many([f"p{i}" for i in range(20)])
        took = time.monotonic() - start
    assert [t.id for t in tasks] == list(range(1, 21))
    assert [r["payload"] for r in head.requests("submit")] == [f"p{i}".encode()
                                                                 for i in range(20)]
    assert took < 3.0  # one answer delay, not twenty (8 s)


def test_submit_many_with_keys_and_a_refused_payload(head, client):
    head.error_for[b"bad"] = ("full", "the queue is full")
    with pytest.raises(taskpipe.SubmitManyFailed) as info:
        client.submit_many([b"a", b"bad", b"c"], keys=["ka", None, "kc"])
    tasks, errors_ = info.value.tasks, info.value.errors
    assert tasks[1] is None and isinstance(errors_[1], taskpipe.QueueFull)
    assert errors_[0] is None and errors_[2] is None
    assert (tasks[0].key, tasks[2].key) == ("ka", "kc")
    head.finish(tasks[2].id, stdout=b"c done")
    assert tasks[2].wait(5).stdout == b"c done"
    with pytest.raises(ValueError, match="2 keys for 3 payloads"):
        client.submit_many([b"a", b"b", b"c"], keys=["x", "y"])
    assert client.submit_many([]) == []


# ---- keys ----

def test_a_duplicate_key_returns_the_first_task(head, client):
    first = client.submit(b"a.jpg", key="upload-42")
    again = client.submit(b"a.jpg", key="upload-42")
    assert again.id == first.id and first.created is True and again.created is False
    assert again.key == "upload-42"
    head.finish(first.id)
    assert again.wait(5).ok and first.done()  # handles of one id share what is known
    assert head.requests("submit")[1]["key"] == "upload-42"


def test_a_key_reused_with_another_payload_is_a_conflict(head, client):
    first = client.submit(b"a.jpg", key="upload-42")
    error = raises_within(taskpipe.Conflict, 3, lambda: client.submit(b"b.jpg", key="upload-42"))
    assert error.code == "conflict" and error.existing_id == first.id


def test_status_by_key(head, client):
    task = client.submit(b"a", key="k1")
    result = client.status(key="k1")
    assert result.id == task.id and result.state == "queued" and result.key == "k1"


# ---- delay ----

def test_delay_in_seconds_timedelta_and_datetime(head, client):
    task = client.submit(b"a", delay=1.5)
    client.submit(b"b", delay=datetime.timedelta(minutes=2))
    at = datetime.datetime(2030, 1, 2, 3, 4, 5, 600000, tzinfo=datetime.timezone.utc)
    client.submit(b"c", delay=at)
    sent = head.requests("submit")
    assert sent[0]["delay_ms"] == 1500 and "not_before_us" not in sent[0]
    assert sent[1]["delay_ms"] == 120_000
    assert sent[2]["not_before_us"] == int(at.timestamp()) * 1_000_000 + 600_000
    assert "delay_ms" not in sent[2]
    assert task.state == "delayed"


# ---- errors from the head ----

@pytest.mark.parametrize("code, exc", [
    ("full", taskpipe.QueueFull), ("store", taskpipe.StoreFailed),
    ("draining", taskpipe.Draining), ("invalid", taskpipe.InvalidRequest),
    ("too_large", taskpipe.PayloadTooLarge), ("a_code_from_the_future", taskpipe.RequestFailed),
])
def test_error_codes_become_exceptions(head, client, code, exc):
    head.error_for[b"p"] = (code, "no")
    error = raises_within(exc, 3, lambda: client.submit(b"p"))
    assert error.code == code and "no" in str(error)


# ---- status and cancel ----

def test_cancel_a_queued_task(head, client):
    task = client.submit(b"a")
    result = client.cancel(task.id)
    assert result.state == "cancelled" and result.finished and not result.ok
    assert task.wait(1).state == "cancelled"
    with pytest.raises(taskpipe.TaskFailed):
        result.raise_for_status()


def test_cancel_a_running_task_reports_running(head, client):
    task = client.submit(b"a")
    head.set_state(task.id, "running")
    wait_until(lambda: client.status(task.id).state == "running", what="running")
    assert task.cancel().state == "running"


def test_status_of_an_id_never_issued_is_unknown(head, client):
    assert client.status(12345).state == "unknown"


def test_status_of_a_key_never_used_is_unknown(head, client):
    result = client.status(key="nobody")
    assert result.state == "unknown" and result.id == 0


def test_waiting_for_an_unknown_id_raises_unknown_task(head, client):
    error = raises_within(taskpipe.UnknownTask, 3, lambda: client.task(999).wait(5))
    assert error.task_id == 999 and "does not know task 999" in str(error)


def test_status_with_wait_returns_when_the_task_finishes(head, client):
    task = client.submit(b"a")
    threading.Timer(0.2, head.finish, (task.id,)).start()
    result = client.status(task.id, wait=10)
    assert result.state == "ok"
    assert head.requests("status")[0]["wait_ms"] == 10_000


def test_a_task_handle_from_an_id_waits_by_long_polling(head, client):
    other = taskpipe.Client(head.endpoint, timeout=2)
    try:
        task_id = other.submit(b"a").id
    finally:
        other.close()
    handle = client.task(task_id)
    assert handle.created is None
    threading.Timer(0.2, head.finish, (task_id,)).start()
    assert handle.wait(5).ok
    polls = head.requests("status")
    assert polls and polls[0]["id"] == task_id and polls[0]["wait_ms"] > 0


# ---- timeouts ----

def test_wait_times_out_with_a_clear_error(head, client):
    task = client.submit(b"a")
    error = raises_within(taskpipe.WaitTimeout, 1.5, lambda: task.wait(0.3))
    assert isinstance(error, TimeoutError)
    assert error.task_id == task.id and "not finished after 0.3 s" in str(error)
    assert "queued" in str(error)


def test_a_slow_head_gives_request_timeout_not_a_hang(head):
    head.answer_delay = 3.0
    with taskpipe.Client(head.endpoint, timeout=0.5) as client:
        error = raises_within(taskpipe.RequestTimeout, 2.0, lambda: client.submit(b"a"))
    assert "within 0.5 s" in str(error)


def test_a_silent_head_gives_request_timeout(head):
    head.silent = True
    with taskpipe.Client(head.endpoint, timeout=0.3) as client:
        raises_within(taskpipe.RequestTimeout, 1.5, lambda: client.status(1))


def test_a_late_answer_after_a_timeout_is_dropped_and_the_client_goes_on(head):
    head.answer_delay = 0.6
    with taskpipe.Client(head.endpoint, timeout=0.3) as client:
        raises_within(taskpipe.RequestTimeout, 1.5, lambda: client.submit(b"a"))
        head.answer_delay = 0
        wait_until(lambda: client._engine.stale_answers == 1, what="the late answer")
        assert client.submit(b"b").id == 2


# ---- a head that is down ----

def test_no_head_fails_at_once(sockdir):
    with taskpipe.Client(f"ipc://{sockdir}/nobody", timeout=5, connect_timeout=5) as client:
        error = raises_within(taskpipe.HeadUnavailable, 1.0, lambda: client.submit(b"a"))
        assert "nothing answers" in str(error) and isinstance(error, ConnectionError)
        raises_within(taskpipe.HeadUnavailable, 0.5, lambda: client.status(1))
        assert client.connection()[0] == "down"


def test_no_head_on_tcp_fails_at_once():
    import socket
    with socket.socket() as s:  # a port that was free a moment ago and has no listener
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with taskpipe.Client(f"tcp://127.0.0.1:{port}", timeout=5, connect_timeout=5) as client:
        raises_within(taskpipe.HeadUnavailable, 1.0, lambda: client.submit(b"a"))


def test_a_bad_endpoint_is_a_value_error():
    with pytest.raises(ValueError, match="bad endpoint"):
        taskpipe.Client("tcp://no-port-here")


def test_head_down_then_back_the_client_reconnects_by_itself(head, client):
    assert client.submit(b"a").id == 1
    head.stop()
    wait_until(lambda: client.connection()[0] == "down", what="the client to notice")
    error = raises_within(taskpipe.HeadUnavailable, 0.5, lambda: client.submit(b"b"))
    assert "closed" in str(error)
    head.start()
    wait_until(lambda: client.connection()[0] == "up", what="the reconnection")
    assert client.submit(b"c").id == 2


def test_a_head_restarted_with_its_store_while_a_client_waits(head, client):
    task = client.submit(b"a")
    outcome = {}

    def waiter():
        try:
            outcome["result"] = task.wait(10)
        except Exception as e:  # reported below
            outcome["error"] = e

    thread = threading.Thread(target=waiter)
    thread.start()
    head.stop()                     # the tasks stay: a head with --store
    wait_until(lambda: client.connection()[0] == "down", what="the client to notice")
    head.start()
    wait_until(lambda: any(r.get("id") == task.id for r in head.requests("status")),
               what="the waiting client to ask the restarted head")
    head.finish(task.id, stdout=b"after the restart")
    thread.join(10)
    assert outcome.get("result") is not None, outcome
    assert outcome["result"].stdout == b"after the restart"


def test_a_head_restarted_without_its_store_gives_unknown_task(head, client):
    task = client.submit(b"a")
    head.stop(forget=True)
    head.start()
    error = raises_within(taskpipe.UnknownTask, 5, lambda: task.wait(8))
    assert "restarted without --store" in str(error)


def test_wait_rides_out_a_head_that_stays_down_until_its_timeout(head, client):
    task = client.submit(b"a")
    head.stop()
    error = raises_within(taskpipe.WaitTimeout, 2.0, lambda: task.wait(0.5))
    assert "head is unavailable" in str(error)


def test_an_unkeyed_submit_in_flight_when_the_head_goes_fails_with_connection_lost(head):
    head.silent = True
    with taskpipe.Client(head.endpoint, timeout=5) as client:
        outcome = {}
        thread = threading.Thread(target=lambda: outcome.update(
            error=_capture(lambda: client.submit(b"a"))))
        thread.start()
        head.wait_for_requests(1)
        head.stop()
        thread.join(5)
    assert isinstance(outcome["error"], taskpipe.ConnectionLost)
    assert "may or may not have been accepted" in str(outcome["error"])


def test_a_keyed_submit_in_flight_is_sent_again_after_the_reconnection(head):
    head.silent = True
    with taskpipe.Client(head.endpoint, timeout=8) as client:
        outcome = {}
        thread = threading.Thread(target=lambda: outcome.update(
            task=client.submit(b"a", key="k")))
        thread.start()
        head.wait_for_requests(1)
        head.stop()
        head.silent = False
        head.start()
        thread.join(10)
        assert outcome["task"].key == "k"
        assert [r["key"] for r in head.requests("submit")] == ["k", "k"]


def _capture(fn):
    try:
        fn()
    except Exception as e:
        return e
    return None


# ---- pushes and polls ----

def test_a_lost_push_is_made_up_for_by_a_poll(head, client, monkeypatch):
    monkeypatch.setattr(_engine, "PUSH_GRACE_S", 0.2)
    head.push_done = False
    task = client.submit(b"a")
    head.finish(task.id)
    assert task.wait(5).ok
    assert head.requests("status")[0]["id"] == task.id


def test_a_poll_answered_early_is_not_repeated_in_a_busy_loop(head, client):
    head.max_wait_ms = 0  # a head that ignores wait_ms and answers at once
    task = client.task(client.submit(b"a", notify=False).id)
    with pytest.raises(taskpipe.WaitTimeout):
        task.wait(0.5)
    assert 1 <= len(head.requests("status")) <= 5  # about one per 0.2 s, not thousands


def test_as_completed_yields_in_finishing_order(head, client):
    tasks = [client.submit(str(i)) for i in range(5)]
    order = [3, 0, 4, 1, 2]

    def finish_all():
        for i in order:
            head.finish(tasks[i].id, stdout=str(i).encode())

    threading.Timer(0.1, finish_all).start()
    seen = [t.wait(0).stdout for t in client.as_completed(tasks, timeout=5)]
    assert seen == [str(i).encode() for i in order]


def test_as_completed_refuses_another_clients_tasks(head, client):
    with taskpipe.Client(head.endpoint) as other:
        theirs = other.submit(b"a")
        with pytest.raises(ValueError, match="this client only"):
            list(client.as_completed([theirs], timeout=1))


def test_as_completed_times_out_with_the_unfinished_count(head, client):
    tasks = [client.submit(str(i)) for i in range(3)]
    head.finish(tasks[1].id)
    got = []
    with pytest.raises(taskpipe.WaitTimeout, match="2 tasks not finished after 0.3 s"):
        for t in client.as_completed(tasks, timeout=0.3):
            got.append(t)
    assert got == [tasks[1]]


# ---- hostile or broken heads ----

def test_malformed_frames_are_counted_and_dropped(head, client):
    task = client.submit(b"a")
    conn = None
    deadline = time.monotonic() + 5
    while conn is None and time.monotonic() < deadline:
        conn = head.tasks[task.id].conn
    for frame in (b"\xc1", msgpack.packb({"v": 1, "type": "done"}), b"x" * 100,
                  msgpack.packb({"v": 9, "type": "done", "id": 1, "state": "ok"})):
        head.send_raw(conn, frame)
    wait_until(lambda: client._engine.malformed == 4, what="4 malformed frames counted")
    head.finish(task.id)
    assert task.wait(5).ok


def test_an_answer_of_the_wrong_kind_fails_the_request(head, client):
    task = client.submit(b"a")
    conn = head.tasks[task.id].conn
    head.silent = True
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(e=_capture(
        lambda: client.submit(b"b"))))
    thread.start()
    req = head.wait_for_requests(2)[1]["req"]
    head.send_raw(conn, msgpack.packb({"v": 1, "type": "state", "req": req, "id": 1,
                                       "state": "ok"}))
    thread.join(5)
    assert isinstance(outcome["e"], taskpipe.TaskpipeError)
    assert "unexpected" in str(outcome["e"])


# ---- threads ----

def test_one_client_shared_by_many_threads(head, client):
    results, errors_seen = {}, []

    def producer(n):
        try:
            mine = [client.submit(f"{n}-{i}") for i in range(100)]
            for t in mine:
                head.finish(t.id, stdout=head.tasks[t.id].payload)
            for t in client.as_completed(mine, timeout=20):
                results[t.id] = t.wait(0).stdout
        except Exception as e:
            errors_seen.append(e)

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors_seen == []
    assert len(results) == 800
    assert sorted(results.values()) == sorted(f"{n}-{i}".encode() for n in range(8)
                                              for i in range(100))


def test_a_closed_client_refuses_calls(head):
    client = taskpipe.Client(head.endpoint)
    task = client.submit(b"a")
    client.close()
    client.close()
    with pytest.raises(taskpipe.ClientClosed):
        client.submit(b"b")
    with pytest.raises(taskpipe.ClientClosed):
        task.wait(1)


def test_a_client_must_not_cross_a_fork(head, client):
    pid = os.fork()
    if pid == 0:
        try:
            client.submit(b"a")
        except taskpipe.TaskpipeError as e:
            os._exit(0 if "another process" in str(e) else 1)
        os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


# ---- CURVE ----

@pytest.fixture
def curve_head(sockdir):
    import zmq.auth
    keys = os.path.join(sockdir, "keys")
    allowed = os.path.join(sockdir, "allowed")
    os.mkdir(keys)
    os.mkdir(allowed)
    for name in ("server", "producer", "stranger"):
        zmq.auth.create_certificates(keys, name)
        os.chmod(os.path.join(keys, name + ".key_secret"), 0o600)
    os.rename(os.path.join(keys, "producer.key"), os.path.join(allowed, "producer.key"))
    server = zmq.auth.load_certificate(os.path.join(keys, "server.key_secret"))
    h = FakeHead(f"ipc://{sockdir}/curve", curve_keys=server, allowed_dir=allowed).start()
    h.keys = keys
    yield h
    h.close()


def test_curve_with_an_allowed_key(curve_head):
    keys = curve_head.keys
    curve = taskpipe.Curve(server=f"{keys}/server.key", key=f"{keys}/producer.key_secret")
    with taskpipe.Client(curve_head.endpoint, curve=curve, timeout=3) as client:
        task = client.submit(b"secret payload")
        curve_head.finish(task.id, stdout=b"ok")
        assert task.wait(5).stdout == b"ok"


def test_curve_with_a_key_not_allowed_fails_at_once_and_says_why(curve_head):
    keys = curve_head.keys
    with taskpipe.Client(curve_head.endpoint, timeout=3, connect_timeout=3,
                         curve=(f"{keys}/server.key", f"{keys}/stranger.key_secret")) as client:
        error = raises_within(taskpipe.HeadUnavailable, 1.0, lambda: client.submit(b"a"))
    assert "not in the head's --curve-producers allow-list" in str(error)


def test_curve_with_the_wrong_server_key(curve_head):
    keys = curve_head.keys
    with taskpipe.Client(curve_head.endpoint, timeout=3, connect_timeout=3,
                         curve=(f"{keys}/stranger.key", f"{keys}/producer.key_secret")) as client:
        error = raises_within(taskpipe.HeadUnavailable, 1.0, lambda: client.submit(b"a"))
    assert "wrong server public key" in str(error)


def test_no_curve_against_a_curve_head(curve_head):
    with taskpipe.Client(curve_head.endpoint, timeout=3, connect_timeout=3) as client:
        error = raises_within(taskpipe.HeadUnavailable, 1.0, lambda: client.submit(b"a"))
    assert "the head uses CURVE? give the client curve=" in str(error)
    assert curve_head.requests() == []


def test_a_secret_key_open_to_others_is_refused(curve_head):
    keys = curve_head.keys
    os.chmod(f"{keys}/producer.key_secret", 0o644)
    with pytest.raises(taskpipe.CurveError, match="chmod 600"):
        taskpipe.Curve(server=f"{keys}/server.key", key=f"{keys}/producer.key_secret")
    with pytest.raises(taskpipe.CurveError, match="no secret key"):
        taskpipe.Curve(server=f"{keys}/server.key", key=f"{keys}/server.key")
    with pytest.raises(taskpipe.CurveError, match="cannot read"):
        taskpipe.Curve(server=f"{keys}/missing.pub", key=f"{keys}/server.key_secret")
