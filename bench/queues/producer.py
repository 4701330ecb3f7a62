"""One producer process of the comparison: submits tasks and waits for all their results.

    producer.py SYSTEM KIND COUNT        SYSTEM: taskpipe (submit), taskpipe-many (submit_many),
                                         taskpipe-batch, celery, rq
                                         KIND: noop (payload "x"); serial (the same, one task
                                         at a time: submit, wait, repeat); or thumbs (the file
                                         names come first on stdin, NUL-separated, one line)

It sets up (connects, runs one warm-up task), prints "ready" on stdout, waits for a line on
stdin ("go"), then submits every task, then collects the results in the order they arrive, and
prints one JSON object: the submit time and the result time of every task (time.monotonic(),
which is one clock for every process of the host), and the failures. The driver (queues.py)
turns these into throughput and latency. Configuration comes from the environment:
TASKPIPE_ENDPOINT, BENCH_REDIS, TASKPIPE_BATCH (the sink's and the ventilator's command lines
for taskpipe's batch mode, as JSON).
"""

import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "clients", "python"))

now = time.monotonic
# Seconds after "go" before a producer stops waiting and reports what it has (BENCH_DEADLINE).
DEADLINE = float(os.environ.get("BENCH_DEADLINE", "1800"))
_go = [None]


def remaining():
    return max(0.0, _go[0] + DEADLINE - now())


class Incomplete(Exception):
    """The deadline passed before every result came."""


def serially(payloads, run_one):
    """Serial latency: one task at a time."""
    done = []
    for p in payloads:
        t = now()
        run_one(p)
        done.append((t, now()))
    return done, 0


def taskpipe_producer(payloads, kind, notify_ready, many=False):
    import taskpipe
    client = taskpipe.Client(os.environ["TASKPIPE_ENDPOINT"], timeout=60, connect_timeout=30)
    # The warm-up runs the workers' handler: for thumbs, `convert` of a file that does not
    # exist, which fails; it only has to finish.
    warm_up = client.submit(b"warm-up").wait(60)
    if kind != "thumbs" and not warm_up.ok:
        raise SystemExit("producer: the warm-up task failed")
    notify_ready()
    if kind == "serial":
        return serially(payloads, lambda p: client.submit(p).wait(60).raise_for_status())
    submitted, tasks = {}, []
    if many:  # one call: every submit sent before the first answer is awaited
        t = now()
        tasks = client.submit_many(payloads)
        submitted = {task.id: t for task in tasks}
    else:
        for p in payloads:
            t = now()
            task = client.submit(p)
            submitted[task.id] = t
            tasks.append(task)
    done, failed = [], 0
    try:
        for task in client.as_completed(tasks, timeout=remaining()):
            done.append((submitted[task.id], now()))
            failed += not task.wait(0).ok
    except taskpipe.WaitTimeout:
        raise Incomplete(done, failed) from None
    client.close()
    return done, failed


def celery_producer(payloads, kind, notify_ready):
    os.environ["BENCH_CELERY"] = "1"
    import jobs
    from celery.result import ResultSet
    task_fn = jobs.app.tasks["thumbnail" if kind == "thumbs" else "noop"]
    jobs.app.tasks["noop"].delay().get(timeout=60)
    notify_ready()
    if kind == "serial":
        return serially(payloads, lambda p: task_fn.delay().get(timeout=60))
    submitted, results = {}, []
    for p in payloads:
        t = now()
        r = task_fn.apply_async(args=_celery_args(kind, p))
        submitted[r.id] = t
        results.append(r)
    done = []
    from celery.exceptions import TimeoutError as CeleryTimeout
    try:
        ResultSet(results).join_native(callback=lambda task_id, value: done.append(
            (submitted[task_id], now())), timeout=remaining(), propagate=True)
    except CeleryTimeout:
        raise Incomplete(done, 0) from None
    return done, 0


def _celery_args(kind, payload):
    if kind != "thumbs":
        return ()
    source = payload.decode()
    return (source, source + ".thumb.jpg")


def rq_producer(payloads, kind, notify_ready):
    import jobs
    from redis import Redis
    from rq import Queue
    from rq.registry import FailedJobRegistry, FinishedJobRegistry
    conn = Redis(unix_socket_path=os.environ["BENCH_REDIS"])
    queue = Queue("default", connection=conn)
    finished = FinishedJobRegistry(queue=queue)
    failed_registry = FailedJobRegistry(queue=queue)

    def enqueue(p):
        if kind != "thumbs":
            return queue.enqueue(jobs.noop, result_ttl=3600)
        source = p.decode()
        return queue.enqueue(jobs.thumbnail, source, source + ".thumb.jpg", result_ttl=3600)

    def run_one(p, submit=enqueue):
        job = submit(p)
        deadline = now() + 60
        while job.get_status(refresh=True) != "finished":
            if now() > deadline:
                raise SystemExit(f"producer: RQ job {job.id} did not finish")
            time.sleep(0.0002)

    run_one(b"warm-up", lambda p: queue.enqueue(jobs.noop, result_ttl=3600))
    notify_ready()
    if kind == "serial":
        return serially(payloads, run_one)
    submitted = {}
    for p in payloads:
        t = now()
        submitted[enqueue(p).id] = t
    # RQ has no notification: poll the finished-jobs registry (a sorted set scored by expiry
    # time, so newer entries score higher) every millisecond, reading only what is new.
    done, seen, low = [], set(), "-inf"
    while len(seen) < len(submitted):
        entries = conn.zrangebyscore(finished.key, low, "+inf", withscores=True)
        t = now()
        for job_id, score in entries:
            job_id = job_id.decode()
            if job_id in submitted and job_id not in seen:
                seen.add(job_id)
                done.append((submitted[job_id], t))
            low = score
        if failed_registry.count:
            raise SystemExit(f"producer: {failed_registry.count} RQ jobs failed")
        if remaining() == 0:
            raise Incomplete(done, 0)
        time.sleep(0.001)
    return done, 0


def batch_producer(payloads, notify_ready):
    """taskpipe's batch mode driven from Python: lines into the ventilator's stdin, results
    (--jsonl, with ids) out of the sink's stdout; the sink and workers already run."""
    spec = json.loads(os.environ["TASKPIPE_BATCH"])  # {"sink": argv, "ventilator": argv}
    sink = subprocess.Popen(spec["sink"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    sink_out = sink.stdout
    notify_ready()
    submitted = [None] * (len(payloads) + 1)
    done, failed = [], 0
    vent = subprocess.Popen(spec["ventilator"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def feed():
        for i, p in enumerate(payloads, 1):
            submitted[i] = now()
            vent.stdin.write(p + b"\n")
        vent.stdin.close()

    feeder = threading.Thread(target=feed)
    feeder.start()
    buffered = b""
    while len(done) < len(payloads):
        chunk = sink_out.read1(65536)
        if not chunk:
            raise SystemExit("producer: the sink's output ended early")
        t = now()
        buffered += chunk
        *lines, buffered = buffered.split(b"\n")
        for line in lines:
            result = json.loads(line)
            done.append((submitted[result["id"]], t))
            failed += result["status"] != "ok"
    feeder.join()
    vent.wait(60)
    sink.wait(60)
    return done, failed


def main():
    system, kind, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if kind in ("noop", "serial"):
        payloads = [b"x"] * count
    else:
        names = sys.stdin.readline().rstrip("\n")
        payloads = [name.encode() for name in names.split("\0") if name]

    def notify_ready():
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            raise SystemExit("producer: no go")
        _go[0] = now()

    try:
        done, failed = run(system, kind, payloads, notify_ready)
        incomplete = False
    except Incomplete as e:
        (done, failed), incomplete = e.args, True
    print(json.dumps({"done": done, "failed": failed, "incomplete": incomplete,
                      "gave_up": now()}), flush=True)


def run(system, kind, payloads, notify_ready):
    if system in ("taskpipe", "taskpipe-many"):
        done, failed = taskpipe_producer(payloads, kind, notify_ready,
                                         many=system == "taskpipe-many")
    elif system == "taskpipe-batch":
        done, failed = batch_producer(payloads, notify_ready)
    elif system == "celery":
        done, failed = celery_producer(payloads, kind, notify_ready)
    elif system == "rq":
        done, failed = rq_producer(payloads, kind, notify_ready)
    else:
        raise SystemExit(f"producer: unknown system {system}")
    return done, failed


if __name__ == "__main__":
    main()
