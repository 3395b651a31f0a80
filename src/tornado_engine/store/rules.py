"""What every store decides, written once (pure: no I/O); the stores only speak their SQL dialect.

- A job's row: the columns each write sets together (status, stored and reserved bytes, the record).
- Terminal statuses, and the open ones, as SQL text for ``status IN (...)``.
- Which webhook events report a job's end (their delivery is noted in the job's record).
- A batch is complete when none of its jobs is left open; its completion message carries a neutral
  :class:`BatchSummary` (counts), which the webhook side renders into the payload receivers see.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..jsontext import dumps
from ..models import Job
from ..progress import LiveProgress
from ..states import TERMINAL, Status, Step
from .base import OutboxMessage

__all__ = [
    "BATCH_COMPLETED",
    "JOB_EVENTS",
    "OPEN_SQL",
    "TERMINAL_SQL",
    "BatchSummary",
    "OutboxRow",
    "batch_completed_message",
    "batch_counts",
    "dumps",
    "job_columns",
    "job_from_record",
    "marks_job",
    "now_ms",
    "outbox_rows",
    "released",
    "started",
    "webhook_fields",
]


TERMINAL_SQL = ", ".join(sorted(f"'{s.value}'" for s in TERMINAL))
# the others (Pending, Processing): ``status IN ({open})`` is one look-up in a (..., status) index
OPEN_SQL = ", ".join(sorted(f"'{s.value}'" for s in Status if s not in TERMINAL))
JOB_EVENTS = frozenset({"job_completed", "job_failed", "job_skipped", "job_cancelled"})
BATCH_COMPLETED = "batch_completed"

# id, owner, job_id, url, event, payload (JSON text), created_at (ms)
OutboxRow = tuple[str, str, str | None, str, str, str, int]


def now_ms() -> int:
    return int(time.time() * 1000)


def job_columns(job: Job) -> tuple[str, int, int, str]:
    """status, stored_bytes, reserved_bytes, data: the columns each write of a job sets together. Stored
    bytes count while a Completed job's file exists; reserved bytes while the job may still store one."""
    stored = job.file_size or 0 if job.status is Status.COMPLETED and not job.file_deleted_at else 0
    reserved = job.reserved_bytes if job.status in (Status.PENDING, Status.PROCESSING) else 0
    return job.status.value, stored, reserved, job.record_text()


def job_from_record(
    status: str, record: dict[str, Any], progress: Mapping[str, Any] | None = None, text: str | None = None
) -> Job:
    """A stored job; ``progress``, its progress column, shows only while it runs and only for the step
    it is in (a step entered since the last heartbeat makes the stored one the previous step's).
    ``text``: the record's JSON text, when the store has it (see ``Job.from_record``)."""
    job = Job.from_record(record, text)
    if status != job.status:  # the column is the truth; the record is rewritten on every write
        job.status = Status(status)
    if progress is not None and job.status is Status.PROCESSING:
        live = LiveProgress.from_dict(progress)
        job.live = live if live.step is job.step else None
    return job


def released(job: Job) -> tuple[int, str]:
    """A claimed job put back to Pending: its reserved bytes and record. Not a transition of the state
    machine: the stored row is Processing whatever the attempt had reached in memory (a shutdown may
    cut it between setting an ending and saving it), and the fenced write puts that row back."""
    job.status = Status.PENDING
    _, _, reserved, data = job_columns(job)
    return reserved, data


def started(job: Job, now: int) -> bool:
    """A claimed job's new attempt, counted by the claim and written with it: the attempt's number and
    start, the queue wait of its first, and the ``Downloading`` step unless it resumes from a checkpoint
    (then the runner enters the step it resumes at). -> whether the step was set."""
    job.attempts += 1
    job.started_at = now
    if job.queue_wait_ms is None:
        job.queue_wait_ms = max(0, now - job.created_at)
    job.requested_quality = job.requested_quality or "best"
    if job.checkpoint:
        return False
    job.step = Step.DOWNLOADING
    return True


def outbox_rows(messages: Sequence[OutboxMessage]) -> list[OutboxRow]:
    """Encoded when the call is made, on the event loop: what goes to the database is plain values."""
    now = now_ms()
    return [
        (m.id, m.owner, m.job_id, m.url, m.event, dumps(m.payload), m.created_at or now) for m in messages
    ]


def marks_job(message: OutboxMessage) -> bool:
    """Whether a finished delivery is noted in its job's record (``webhook_status``, attempts)."""
    return bool(message.job_id) and message.event in JOB_EVENTS


def webhook_fields(status: str, attempts: int) -> dict[str, object]:
    """What a finished delivery of a job event sets in the job's record."""
    return {"webhook_status": status, "webhook_attempts": attempts}


# -- batches ---------------------------------------------------------------------------------------------


def batch_counts(counts: Mapping[str, int]) -> tuple[int, int]:
    """(completed, failed) from a batch's jobs counted by status: failed is every other ending."""
    completed = counts.get(Status.COMPLETED.value, 0)
    ended = sum(n for status, n in counts.items() if status in TERMINAL)
    return completed, ended - completed


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """What a batch's completion message carries; the webhook side renders the payload from it."""

    batch_id: str
    completed: int
    failed: int
    total: int

    def to_data(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "completed": self.completed, "failed": self.failed,
                "total": self.total}  # fmt: skip

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> BatchSummary:
        return cls(str(data["batch_id"]), int(data["completed"]), int(data["failed"]), int(data["total"]))


def batch_completed_message(
    batch_id: str, owner: str, batch_data: Mapping[str, Any], counts: Mapping[str, int]
) -> OutboxMessage | None:
    """The message queued, exactly once, when the last job of a batch ends (every job has ended, so all
    but the Completed ones failed); None when the batch has no webhook."""
    url = batch_data.get("webhook_url")
    if not url:
        return None
    completed, total = counts.get(Status.COMPLETED.value, 0), sum(counts.values())
    summary = BatchSummary(batch_id, completed, total - completed, total)
    return OutboxMessage(f"msg_batch_{batch_id}", owner, str(url), BATCH_COMPLETED, summary.to_data())
