"""The store protocol: everything the engine asks of a job store, so stores can be swapped.

Every write made on behalf of a running job carries the fencing token handed out by ``claim``; a write
with a stale token (the job was re-queued and claimed again meanwhile) raises
:class:`~tornado_engine.errors.LeaseLost` (importable from here too, where the runner looks for it).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import LeaseLost
from ..models import Job
from ..states import Status

__all__ = [
    "BatchRecord",
    "Claim",
    "Heartbeat",
    "JobStore",
    "LeaseLost",
    "OutboxMessage",
    "TopRows",
    "UsageTotals",
    "WorkerRow",
]


@dataclass
class Claim:
    job: Job
    token: int
    # the claim counted the attempt and wrote the job's Downloading step (``rules.started``): the
    # runner enters that step without writing it again
    stepped: bool = False


@dataclass
class BatchRecord:
    id: str
    owner: str
    created_at: int
    paused: bool
    show_url: str | None
    folder: str | None
    job_ids: list[str]
    completed: int = 0  # filled in when read: jobs Completed
    failed: int = 0  # filled in when read: jobs that ended any other way
    webhook_url: str | None = None  # receives batch_completed once every job has ended

    def to_data(self) -> dict[str, object]:
        return {"show_url": self.show_url, "folder": self.folder, "job_ids": self.job_ids,
                "webhook_url": self.webhook_url}  # fmt: skip

    @classmethod
    def from_row(
        cls, batch_id: str, owner: str, created_at: int, paused: bool, data: dict[str, Any],
        counts: tuple[int, int],
    ) -> BatchRecord:  # fmt: skip
        """A stored batch: its columns, its :meth:`to_data` and its (completed, failed) counts."""
        return cls(batch_id, owner, created_at, bool(paused), data.get("show_url"), data.get("folder"),
                   list(data["job_ids"]), *counts, data.get("webhook_url"))  # fmt: skip


@dataclass
class OutboxMessage:
    """A webhook event waiting for delivery; ``id`` is the stable ``webhook-id`` of every attempt."""

    id: str
    owner: str
    url: str
    event: str
    payload: dict[str, Any]
    job_id: str | None = None
    attempts: int = 0
    created_at: int = 0


@dataclass
class Heartbeat:
    lost: set[str]  # leases taken over by another attempt: stop these
    cancel_requested: set[str]  # jobs someone asked to cancel (maybe from another process)


@dataclass
class UsageTotals:
    counts: dict[str, int]
    stored_bytes: int
    reserved_bytes: int
    by_backend: dict[str, int] = field(default_factory=dict)  # stored bytes per storage scheme
    host_waits: int = 0  # the jobs' waits for a source host's back-off (Job.host_waits)


@dataclass(frozen=True)
class WorkerRow:
    """A worker as the store knows it: by the leases it holds (times in epoch ms)."""

    worker_id: str
    jobs: int
    lease_expires_at: int | None
    heartbeat_at: int | None


@dataclass
class TopRows:
    """What ``top`` reads in one look at the store (see :mod:`tornado_engine.top`)."""

    counts: dict[str, int]  # every job, by status
    running: list[tuple[Job, str | None]]  # Processing jobs (oldest first, with progress) and their worker
    workers: list[WorkerRow]
    finished: dict[str, tuple[int, int]]  # jobs ended since the given time: status -> (count, stored bytes)
    errors: list[Job]  # the most recent jobs that ended neither Completed nor Cancelled, newest first


class JobStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    # -- submit and read ----------------------------------------------------------------------------
    async def insert_jobs(
        self, jobs: list[Job], batch: BatchRecord | None = None, idempotency_key: str | None = None
    ) -> list[Job]:
        """Commit new jobs (and their batch) in one transaction. With an idempotency key this owner
        already used, nothing is inserted and the earlier job is returned instead."""
        ...

    async def get_job(self, job_id: str, owner: str | None = None) -> Job | None: ...

    async def list_jobs(
        self, owner: str | None, limit: int, offset: int, status: Status | None = None
    ) -> list[Job]: ...

    async def get_batch(self, batch_id: str, owner: str | None = None) -> BatchRecord | None: ...

    async def set_batch_paused(self, batch_id: str, paused: bool) -> None: ...

    async def usage(self, owner: str | None) -> UsageTotals: ...

    async def live_workers(self, exclude: str) -> int:
        """Workers other than ``exclude`` holding a lease that has not expired (running jobs now)."""
        ...

    async def get_tenant(self, owner: str) -> dict[str, object] | None: ...

    async def put_tenant(self, owner: str, data: dict[str, object]) -> None: ...

    async def get_tenant_sources(self, owner: str) -> dict[str, str]:
        """``owner``'s sealed sources by kind (``cookies``, ``proxies``); {} without any."""
        ...

    async def put_tenant_source(self, owner: str, kind: str, sealed: str | None) -> None:
        """Keep (or, with None, remove) one sealed source of ``owner``."""
        ...

    async def reusable(
        self, owner: str, source_key: str, output_key: str, since_ms: int, limit: int
    ) -> list[Job]:
        """``owner``'s Completed jobs with these keys (tornado_engine.reuse) that ended at or after
        ``since_ms`` and whose file was not deleted, newest first, at most ``limit``."""
        ...

    async def lead_reuse(self, owner: str, source_key: str, output_key: str, job_id: str) -> str:
        """Make ``job_id`` the job downloading this file unless a running job already is; -> that job's
        id (``job_id`` when it leads)."""
        ...

    async def end_reuse_lead(self, job_id: str) -> None:
        """``job_id`` downloads no file for others any more (its attempt ended)."""
        ...

    # -- changes outside a lease ----------------------------------------------------------------------
    async def update_pending(self, job: Job) -> bool:
        """Rewrite a job that is still Pending (e.g. a rename); False if it no longer is."""
        ...

    async def update_finished(self, job: Job) -> bool:
        """Rewrite a terminal job's record (e.g. its file was deleted); False if it is not terminal."""
        ...

    async def request_cancel(
        self, job_id: str, owner: str | None, finished: Job | None, outbox: Sequence[OutboxMessage] = ()
    ) -> Job | None:
        """Cancel: a Pending job becomes ``finished`` (its Cancelled record, with ``outbox`` events) at
        once; a Processing one is flagged for its worker. Returns the job as it now stands, or None."""
        ...

    # -- workers ----------------------------------------------------------------------------------------
    async def claim(
        self, worker_id: str, limit: int, lease_seconds: float, only: Collection[str] | None = None
    ) -> list[Claim]:
        """Move up to ``limit`` runnable Pending jobs to Processing for this worker, oldest first. With
        ``only``, none but those ids: any other job is not read, claimed or changed."""
        ...

    async def save(self, job: Job, token: int, outbox: Sequence[OutboxMessage] = ()) -> None:
        """Write the job's record, fenced by ``token`` (LeaseLost), and its webhook events in the same
        transaction; when the write ends the job's batch, its ``batch_completed`` event too. A Completed
        record is refused with JobCancelled when a cancel was requested meanwhile."""
        ...

    # -- webhook outbox -------------------------------------------------------------------------------
    async def enqueue(self, messages: Sequence[OutboxMessage]) -> None:
        """Queue events outside a terminal write (stage progress events)."""
        ...

    async def claim_outbox(self, limit: int, lease_seconds: float) -> list[OutboxMessage]:
        """Due messages, leased so that no other process delivers them at the same time."""
        ...

    async def finish_outbox(
        self, message: OutboxMessage, status: str, retry_in: float | None, error: str | None
    ) -> None:
        """Record an attempt: ``delivered``, ``failed`` (no more tries) or ``pending`` (again in
        ``retry_in`` s); a job event also sets the job's ``webhook_status`` and attempts."""
        ...

    async def heartbeat(
        self,
        worker_id: str,
        tokens: dict[str, int],
        lease_seconds: float,
        progress: Mapping[str, str] | None = None,
    ) -> Heartbeat:
        """Extend the leases still held; report lost leases and cancel requests. ``progress``: {job id:
        its progress as JSON text} for jobs whose progress changed, stored with the renewal."""
        ...

    async def release(self, job: Job, token: int, delay_seconds: float = 0.0) -> None:
        """Put a claimed job back to Pending (shutdown or crash recovery), fenced by ``token``."""
        ...

    async def requeue_expired(self, is_dead_owner: Callable[[str], bool]) -> list[str]:
        """Re-queue Processing jobs whose lease expired or whose owner process is gone."""
        ...

    def on_new_jobs(self, wake: Callable[[], None]) -> None:
        """Call ``wake()`` (on the running loop) when another process makes jobs claimable, so an idle
        worker claims at once; a store that cannot tell leaves the worker to its poll."""
        ...

    # -- live views -------------------------------------------------------------------------------------
    async def top_rows(self, since_ms: int, limit: int) -> TopRows:
        """Counts, running jobs and workers now, jobs ended since ``since_ms``, recent errors (``limit``
        rows of each list at most). Read-only."""
        ...
