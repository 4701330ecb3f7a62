"""The exceptions the client raises. All derive from TaskpipeError.

    TaskpipeError
    +-- HeadUnavailable (also ConnectionError)   no connection to the head: down, unreachable,
    |   +-- ConnectionLost                       CURVE refused; or the connection broke mid-request
    +-- RequestTimeout (also TimeoutError)       connected, but no answer within the timeout
    +-- WaitTimeout (also TimeoutError)          the task did not finish within wait()'s timeout
    +-- RequestFailed                            the head answered `error`; .code, .message
    |   +-- InvalidRequest      invalid
    |   +-- PayloadTooLarge     too_large (also ValueError; raised before sending too)
    |   +-- Conflict            conflict: the key names another payload's task; .existing_id
    |   +-- QueueFull           full
    |   +-- StoreFailed         store: the head cannot write its store; nothing was accepted
    |   +-- Draining            draining: the head is shutting down
    +-- UnknownTask (also LookupError)           the head does not know the id (see the message)
    +-- TaskFailed                               Result.raise_for_status() on a task not `ok`
    +-- SubmitManyFailed                         some of submit_many's tasks were not accepted
    +-- ClientClosed                             the client was closed
"""


class TaskpipeError(Exception):
    """Base class of every error this package raises (arguments aside: ValueError, TypeError)."""


class HeadUnavailable(TaskpipeError, ConnectionError):
    """The client has no working connection to the head, so nothing was sent."""


class ConnectionLost(HeadUnavailable):
    """The connection broke after the request was sent and before the head answered.

    For a submit without a key the task may or may not have been accepted; a key makes a
    submit safe to repeat, and the client repeats keyed submits, status and cancel by itself.
    """


class RequestTimeout(TaskpipeError, TimeoutError):
    """The head did not answer within the client's timeout."""


class WaitTimeout(TaskpipeError, TimeoutError):
    """A task did not finish within the time given to wait() or as_completed()."""

    def __init__(self, message, task_id=None, state=None):
        super().__init__(message)
        self.task_id = task_id
        self.state = state


class RequestFailed(TaskpipeError):
    """The head refused the request with an `error` answer."""

    def __init__(self, code, message, existing_id=None):
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message
        self.existing_id = existing_id


class InvalidRequest(RequestFailed):
    pass


class PayloadTooLarge(RequestFailed, ValueError):
    pass


class Conflict(RequestFailed):
    """The key was used before for another payload; `existing_id` is that task's id."""


class QueueFull(RequestFailed):
    pass


class StoreFailed(RequestFailed):
    pass


class Draining(RequestFailed):
    pass


_BY_CODE = {
    "invalid": InvalidRequest,
    "too_large": PayloadTooLarge,
    "conflict": Conflict,
    "full": QueueFull,
    "store": StoreFailed,
    "draining": Draining,
}


def request_failed(code, message, existing_id=None):
    """The exception for an `error` answer; a code this client does not know is a plain
    RequestFailed (the protocol: an unknown code is a failed request)."""
    return _BY_CODE.get(code, RequestFailed)(code, message, existing_id)


class UnknownTask(TaskpipeError, LookupError):
    """The head answered `unknown`: it never issued this id, or the result has expired."""

    def __init__(self, message, task_id=None):
        super().__init__(message)
        self.task_id = task_id


class TaskFailed(TaskpipeError):
    """Raised by Result.raise_for_status() for a finished task whose state is not `ok`."""

    def __init__(self, result):
        detail = f"exit code {result.exit_code}" if result.exit_code is not None else (
            f"signal {result.signal}" if result.signal is not None else "no exit code")
        tail = result.stderr[-200:].decode(errors="replace").strip()
        super().__init__(f"task {result.id} {result.state} ({detail})"
                         + (f": {tail}" if tail else ""))
        self.result = result


class SubmitManyFailed(TaskpipeError):
    """submit_many could not submit every payload. `tasks[i]` is the Task of payload i, or
    None; `errors[i]` is None, or the exception that submitting payload i raised."""

    def __init__(self, tasks, errors):
        failed = [e for e in errors if e is not None]
        super().__init__(f"{len(failed)} of {len(tasks)} submissions failed; the first: "
                         f"{failed[0]!r}")
        self.tasks = tasks
        self.errors = errors


class ClientClosed(TaskpipeError):
    pass
