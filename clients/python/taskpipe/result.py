"""What the head says about a task: its state, and once it has finished, its result."""

import json
from dataclasses import dataclass, fields
from typing import Optional

from . import errors, protocol


@dataclass(frozen=True)
class Result:
    """A task's state as the head reported it (a `state` answer or a pushed `done`).

    `state` is one of `delayed`, `queued`, `running` (not finished), `ok`, `failed`, `error`,
    `timeout`, `lost`, `cancelled` (finished), or `unknown` (the head does not know the id).
    The fields from `status` on are set only once the task has finished (docs/protocol.md).
    """
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

    @classmethod
    def from_state(cls, msg):
        return cls(**{f.name: getattr(msg, f.name) for f in fields(cls)})

    @property
    def finished(self):
        return self.state in protocol.FINAL_STATES

    @property
    def ok(self):
        return self.state == "ok"

    def text(self, encoding="utf-8", errors="replace"):
        """The handler's stdout as text."""
        return self.stdout.decode(encoding, errors)

    def json(self):
        """The handler's stdout parsed as JSON (for handlers that print JSON)."""
        return json.loads(self.stdout)

    def raise_for_status(self):
        """Returns self if the task finished `ok`; raises TaskFailed if it finished otherwise
        (failed, error, timeout, lost, cancelled). An unfinished task is returned as it is."""
        if self.finished and not self.ok:
            raise errors.TaskFailed(self)
        return self

    def __repr__(self):
        extra = ""
        if self.finished and self.state != "cancelled":
            extra = f", exit_code={self.exit_code}, stdout={self.stdout[:40]!r}"
        return f"Result(id={self.id}, state={self.state!r}{extra})"
