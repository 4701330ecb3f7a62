"""One taskpipe client per process, made on first use.

A taskpipe.Client is thread-safe, so the threads of a process share it, but it must not cross
a fork: gunicorn and uWSGI fork their workers after importing the application, so the client
is created lazily in the process that uses it.
"""

import os
import threading

import taskpipe
from django.conf import settings

_lock = threading.Lock()
_client = None
_pid = None


def client():
    global _client, _pid
    with _lock:
        if _client is None or _pid != os.getpid():
            _client = taskpipe.Client(settings.TASKPIPE_ENDPOINT, curve=settings.TASKPIPE_CURVE,
                                      timeout=settings.TASKPIPE_TIMEOUT,
                                      connect_timeout=settings.TASKPIPE_TIMEOUT)
            _pid = os.getpid()
        return _client
