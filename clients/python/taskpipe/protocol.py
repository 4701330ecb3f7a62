"""The producer side of taskpipe's service protocol, version 1, with no I/O.

docs/protocol.md ("Service mode: the producer protocol") is the specification. In short: a
producer connects a DEALER to `ventilator --serve --listen ENDPOINT` and exchanges single
frames, each one msgpack map with string keys and the envelope fields `v` (1) and `type`.

    producer -> head   submit{req, payload, key?, delay_ms?, not_before_us?, notify?}
                       status{req, id | key, wait_ms?}
                       cancel{req, id}
    head -> producer   accepted{req, id, created, state}
                       state{req, id, state, ...}      the answer to status and cancel
                       done{id, state, ...}            pushed when a task submitted here ends
                       error{req, code, message, id?}

The fields the head sends are described once, in `_SCHEMAS` below; `decode` checks every
frame against it. Frames come from the network and are untrusted: anything that breaks the
rules raises `MalformedMessage`, which the caller counts and drops.
"""

from dataclasses import dataclass
from typing import Optional, Union

import msgpack

VERSION = 1
MAX_PAYLOAD = 1 << 20           # bytes; the head answers `too_large` beyond this
MAX_KEY = 256                   # bytes of UTF-8
MAX_WAIT_MS = 600_000           # the longest `status.wait_ms` the head honours
MAX_UINT = (1 << 64) - 1

PENDING_STATES = frozenset({"delayed", "queued", "running"})
FINAL_STATES = frozenset({"ok", "failed", "error", "timeout", "lost", "cancelled"})
UNKNOWN = "unknown"
ERROR_CODES = frozenset({"invalid", "too_large", "conflict", "full", "store", "draining"})


class MalformedMessage(ValueError):
    """A frame from the head that breaks the protocol's rules; it is dropped."""


@dataclass(frozen=True)
class Accepted:
    req: int
    id: int
    created: bool
    state: str


@dataclass(frozen=True)
class State:
    """A `state` answer (req set) or a pushed `done` (req None)."""
    req: Optional[int]
    id: int
    state: str
    key: Optional[str] = None
    submitted_us: int = 0
    attempts: int = 0
    status: Optional[str] = None
    exit_code: Optional[int] = None
    signal: Optional[int] = None
    stdout: bytes = b""
    stdout_truncated: bool = False
    stderr: bytes = b""
    worker: Optional[str] = None
    started_us: int = 0
    duration_us: int = 0
    finished_us: int = 0

    @property
    def pushed(self):
        return self.req is None


@dataclass(frozen=True)
class Error:
    req: int
    code: str
    message: str
    id: Optional[int] = None


Message = Union[Accepted, State, Error]

# Field kinds. Each checks one decoded msgpack value and returns it in its Python form.


def _uint(value):
    if type(value) is not int or not 0 <= value <= MAX_UINT:
        raise MalformedMessage(f"expected an unsigned integer, got {value!r:.40}")
    return value


def _task_id(value):
    if _uint(value) == 0:
        raise MalformedMessage("task id 0")
    return value


def _int_or_nil(value):
    if value is not None and type(value) is not int:
        raise MalformedMessage(f"expected an integer or nil, got {value!r:.40}")
    return value


def _str(value):
    if type(value) is not str:
        raise MalformedMessage(f"expected a string, got {value!r:.40}")
    return value


def _bytes(value):  # taskpipe sends bin; str is accepted too (docs/protocol.md)
    if type(value) is bytes:
        return value
    if type(value) is str:
        return value.encode()
    raise MalformedMessage(f"expected bytes, got {value!r:.40}")


def _bool(value):
    if type(value) is not bool:
        raise MalformedMessage(f"expected a boolean, got {value!r:.40}")
    return value


REQUIRED = object()

_FINISHED_FIELDS = {
    "status": (_str, None),
    "exit_code": (_int_or_nil, None),
    "signal": (_int_or_nil, None),
    "stdout": (_bytes, b""),
    "stdout_truncated": (_bool, False),
    "stderr": (_bytes, b""),
    "worker": (_str, None),
    "started_us": (_uint, 0),
    "duration_us": (_uint, 0),
    "finished_us": (_uint, 0),
}
_STATE_FIELDS = {
    "id": (_task_id, REQUIRED),
    "state": (_str, REQUIRED),
    "key": (_str, None),
    "submitted_us": (_uint, 0),
    "attempts": (_uint, 0),
    **_FINISHED_FIELDS,
}

# Every message the head sends: field -> (kind, default or REQUIRED); and the class it makes.
_SCHEMAS = {
    "accepted": (Accepted, {
        "req": (_uint, REQUIRED),
        "id": (_task_id, REQUIRED),
        "created": (_bool, REQUIRED),
        "state": (_str, REQUIRED),
    }),
    "state": (State, {"req": (_uint, REQUIRED), **_STATE_FIELDS}),
    "done": (State, {**_STATE_FIELDS}),
    "error": (Error, {
        "req": (_uint, REQUIRED),
        "code": (_str, REQUIRED),
        "message": (_str, REQUIRED),
        "id": (_task_id, None),
    }),
}

# docs/protocol.md, "Rules every receiver applies", rule 3.
_LIMITS = dict(max_str_len=64 << 20, max_bin_len=64 << 20, max_array_len=4112, max_map_len=64,
               max_ext_len=0)


def _no_ext(code, data):
    raise MalformedMessage("msgpack ext types are not allowed")


def decode(frame: bytes) -> Message:
    """One frame from the head as an `Accepted`, `State` or `Error`; raises MalformedMessage."""
    try:
        value = msgpack.unpackb(frame, raw=False, strict_map_key=False, ext_hook=_no_ext,
                                use_list=True, **_LIMITS)
    except MalformedMessage:
        raise
    except Exception as e:  # ExtraData, ValueError (limits, bad UTF-8), FormatError...
        raise MalformedMessage(f"not one msgpack map: {e}") from None
    if not isinstance(value, dict):
        raise MalformedMessage("not a msgpack map")
    fields = {k: v for k, v in value.items() if type(k) is str}
    if "v" not in fields or "type" not in fields:
        raise MalformedMessage("no 'v' or no 'type'")
    if fields["v"] != VERSION or type(fields["v"]) is not int:
        raise MalformedMessage(f"protocol version {fields['v']!r:.20}, expected {VERSION}")
    kind = fields["type"]
    if type(kind) is not str or kind not in _SCHEMAS:
        raise MalformedMessage(f"unknown type {kind!r:.40}")
    cls, schema = _SCHEMAS[kind]
    if kind == "state" and fields.get("state") == UNKNOWN and fields.get("id", 0) == 0:
        # A status by key that names no task has no id to give: the draft requires `id`
        # (never 0), and this client reads an `unknown` answer without one, or with 0, as id 0.
        fields["id"] = None
        schema = {**schema, "id": (lambda v: 0 if v is None else _task_id(v), REQUIRED)}
    args = {}
    for name, (check, default) in schema.items():
        if name in fields:
            try:
                args[name] = check(fields[name])
            except MalformedMessage as e:
                raise MalformedMessage(f"{kind}.{name}: {e}") from None
        elif default is REQUIRED:
            raise MalformedMessage(f"{kind} without '{name}'")
        else:
            args[name] = default
    if cls is State and kind == "done":
        args["req"] = None
    return cls(**args)


def _pack(type_, **fields):
    return msgpack.packb({"v": VERSION, "type": type_, **fields}, use_bin_type=True)


def encode_submit(req: int, payload: bytes, key: Optional[str] = None, delay_ms: int = 0,
                  not_before_us: int = 0, notify: bool = True) -> bytes:
    fields = {"req": req, "payload": payload}
    if key is not None:
        fields["key"] = key
    if delay_ms:
        fields["delay_ms"] = delay_ms
    if not_before_us:
        fields["not_before_us"] = not_before_us
    if not notify:
        fields["notify"] = False
    return _pack("submit", **fields)


def encode_status(req: int, id: Optional[int] = None, key: Optional[str] = None,
                  wait_ms: int = 0) -> bytes:
    fields = {"req": req}
    if id is not None:
        fields["id"] = id
    if key is not None:
        fields["key"] = key
    if wait_ms:
        fields["wait_ms"] = wait_ms
    return _pack("status", **fields)


def encode_cancel(req: int, id: int) -> bytes:
    return _pack("cancel", req=req, id=id)


def check_key(key):
    """Raises ValueError (or TypeError) unless `key` is a valid idempotency key."""
    if not isinstance(key, str):
        raise TypeError(f"key must be a str, not {type(key).__name__}")
    size = len(key.encode())
    if not 1 <= size <= MAX_KEY:
        raise ValueError(f"key must be 1 to {MAX_KEY} bytes of UTF-8, not {size}")


def check_id(task_id):
    if type(task_id) is not int or not 1 <= task_id <= MAX_UINT:
        raise ValueError(f"a task id is a positive integer, not {task_id!r:.40}")
