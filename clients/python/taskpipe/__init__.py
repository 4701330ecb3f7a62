"""taskpipe's Python client: submit tasks to a taskpipe head (`ventilator --serve`) and wait
for their results. See clients/python/README.md and docs/protocol.md."""

from .aio import AsyncClient, AsyncTask
from .client import Client, Task
from .curve import Curve, CurveError
from .errors import (ClientClosed, Conflict, ConnectionLost, Draining, HeadUnavailable,
                     InvalidRequest, PayloadTooLarge, QueueFull, RequestFailed, RequestTimeout,
                     StoreFailed, SubmitManyFailed, TaskFailed, TaskpipeError, UnknownTask,
                     WaitTimeout)
from .result import Result

__version__ = "0.1.0"

__all__ = [
    "AsyncClient", "AsyncTask", "Client", "ClientClosed", "Conflict", "ConnectionLost", "Curve",
    "CurveError", "Draining", "HeadUnavailable", "InvalidRequest", "PayloadTooLarge",
    "QueueFull", "RequestFailed", "RequestTimeout", "Result", "StoreFailed",
    "SubmitManyFailed", "Task",
    "TaskFailed", "TaskpipeError", "UnknownTask", "WaitTimeout",
]
