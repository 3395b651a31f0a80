"""Job status and step, and the transitions allowed between statuses (pure).

    Pending ──a──> Processing ──b──> Completed | Failed | Warning | Skipped
       │  ^            │
       │  └─────c──────┤   (c: re-queued after a crash or a shutdown)
       └──────d────────┴──e──> Cancelled   (d: cancelled while queued, e: while running)

A terminal status is never left: a retry creates a new job. Cancelled is beyond TornadoAPI, which can
only cancel Pending jobs (and then deletes them); we keep the record and say what happened.
"""

from __future__ import annotations

from enum import StrEnum

from .errors import InvalidState

__all__ = ["TERMINAL", "Status", "Step", "advance", "check_transition"]


class Status(StrEnum):
    PENDING = "Pending"
    PROCESSING = "Processing"
    COMPLETED = "Completed"
    FAILED = "Failed"
    WARNING = "Warning"
    SKIPPED = "Skipped"
    CANCELLED = "Cancelled"


class Step(StrEnum):
    QUEUED = "Queued"
    DOWNLOADING = "Downloading"
    MUXING = "Muxing"
    UPLOADING = "Uploading"
    FINISHED = "Finished"


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.WARNING, Status.SKIPPED, Status.CANCELLED})

_ALLOWED: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.PROCESSING, Status.CANCELLED}),
    Status.PROCESSING: frozenset({Status.PENDING, *TERMINAL}),
}


def check_transition(current: Status, new: Status) -> None:
    """Raise InvalidState unless ``current -> new`` is one of the transitions drawn above."""
    if new not in _ALLOWED.get(current, frozenset()):
        raise InvalidState(f"a {current.value} job cannot become {new.value}")


def advance(current: Status, new: Status) -> Status:
    """``new``, once the table above allows ``current -> new``: every status change goes through here."""
    check_transition(current, new)
    return new
