"""The store protocol: everything the engine asks of a job store, so stores can be swapped.

Every write made on behalf of a running job carries the fencing token handed out by ``claim``; a write
with a stale token (the job was re-queued and claimed again meanwhile) raises :class:`LeaseLost`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..errors import StoreError
from ..models import Job
from ..states import Status

__all__ = ["Claim", "JobStore", "LeaseLost", "open_store"]


class LeaseLost(StoreError):
    """A write was refused because the job's lease now belongs to another attempt."""


@dataclass
class Claim:
    job: Job
    token: int


class JobStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def insert_job(self, job: Job, idempotency_key: str | None = None) -> Job:
        """Commit a new Pending job; with a key already used by this owner, return that job instead."""
        ...

    async def get_job(self, job_id: str, owner: str | None = None) -> Job | None: ...

    async def list_jobs(
        self, owner: str | None, limit: int, offset: int, status: Status | None = None
    ) -> list[Job]: ...

    async def claim(self, worker_id: str, limit: int, lease_seconds: float) -> list[Claim]:
        """Move up to ``limit`` Pending jobs to Processing for this worker, oldest first."""
        ...

    async def save(self, job: Job, token: int) -> None:
        """Write the job's record, fenced by ``token``."""
        ...

    async def heartbeat(self, worker_id: str, tokens: dict[str, int], lease_seconds: float) -> set[str]:
        """Extend the leases still held; returns the ids whose lease was lost."""
        ...

    async def release(self, job: Job, token: int, delay_seconds: float = 0.0) -> None:
        """Put a claimed job back to Pending (shutdown or crash recovery), fenced by ``token``."""
        ...

    async def requeue_expired(self, is_dead_owner: Callable[[str], bool]) -> list[str]:
        """Re-queue Processing jobs whose lease expired or whose owner process is gone."""
        ...


def open_store(url: str) -> JobStore:
    """A store for a URL: ``sqlite:///path/jobs.db`` (or a plain path)."""
    from .sqlite import SQLiteStore

    if url.startswith("sqlite:///"):
        # as in SQLAlchemy: sqlite:///rel/jobs.db is relative, sqlite:////abs/jobs.db absolute
        return SQLiteStore(url.removeprefix("sqlite:///"))
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise StoreError(f"unsupported store URL scheme {scheme!r} (supported: sqlite)")
    return SQLiteStore(url)
