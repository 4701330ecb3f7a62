"""The tasks of the comparison, for every system: a no-op, and the thumbnail job.

Celery's app is made here too, configured from the environment the driver (queues.py) sets:

    BENCH_REDIS            the Redis unix socket
    BENCH_ACKS_LATE        "1": task_acks_late
    BENCH_PREFETCH         worker_prefetch_multiplier
"""

import os
import subprocess


def noop():
    return None


def thumbnail(source, target):
    subprocess.run(["convert", source, "-resize", "25%", target], check=True,
                   stdin=subprocess.DEVNULL)


def _celery_app():
    from celery import Celery
    sock = os.environ.get("BENCH_REDIS", "/nonexistent")
    app = Celery("bench", broker=f"redis+socket://{sock}", backend=f"redis+socket://{sock}")
    app.conf.update(
        task_acks_late=os.environ.get("BENCH_ACKS_LATE") == "1",
        worker_prefetch_multiplier=int(os.environ.get("BENCH_PREFETCH", "4")),
        task_serializer="json", result_serializer="json", accept_content=["json"],
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )
    app.task(name="noop")(noop)
    app.task(name="thumbnail")(thumbnail)
    return app


app = None
if os.environ.get("BENCH_CELERY") == "1":
    app = _celery_app()
