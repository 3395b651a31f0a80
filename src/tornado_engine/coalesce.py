"""What the reuse stage (:mod:`tornado_engine.pipeline.reuse`) is given: the engine's reuse policy, the
store, and the downloads in flight, so that identical jobs running at once make one download (the first
leads, the rest wait for it and then take its file).

Two levels: in this process a map (:class:`InFlight`) wakes the waiting jobs the moment the leading one's
attempt ends; across processes sharing the store, the leading job holds a row for its file
(``store.lead_reuse``) and a job of another process waits by looking at the holder's status every
``poll_seconds`` (one primary-key read). Only a job leading here asks the store, so its followers here
cost the store nothing.
"""

from __future__ import annotations

import asyncio

from .models import Job
from .reuse import ReusePolicy
from .states import Status
from .store.base import JobStore

__all__ = ["InFlight", "ReuseDesk", "SameFile"]

SameFile = tuple[str, str, str]  # (owner, source key, output key)


class InFlight:
    """This process's downloads that other jobs may wait for: one leading job per file."""

    def __init__(self) -> None:
        self._leaders: dict[SameFile, tuple[str, asyncio.Future[None]]] = {}
        self._led: dict[str, SameFile] = {}  # job id -> the file it leads

    def lead_or_follow(self, same: SameFile, job_id: str) -> asyncio.Future[None] | None:
        """None: ``job_id`` leads (downloads); else a future done when the leading job's attempt ends."""
        entry = self._leaders.get(same)
        if entry is not None and entry[0] != job_id:
            return entry[1]
        if entry is None:
            self._leaders[same] = (job_id, asyncio.get_running_loop().create_future())
            self._led[job_id] = same
        return None

    def release(self, job_id: str) -> None:
        """``job_id``'s attempt ended (any way): its followers look again (at its file, or to lead)."""
        same = self._led.pop(job_id, None)
        if same is None:
            return
        _, done = self._leaders.pop(same)
        if not done.done():
            done.set_result(None)

    def __len__(self) -> int:
        return len(self._leaders)


class ReuseDesk:
    """Per runner: the policy, the store's lookups, this process's downloads in flight."""

    def __init__(self, policy: ReusePolicy, store: JobStore, poll_seconds: float = 0.5) -> None:
        self.policy = policy
        self.store = store
        self.poll_seconds = poll_seconds
        self.in_flight = InFlight()
        self._holding: set[str] = set()  # jobs of this process holding their file's row in the store

    async def lookup(self, same: SameFile, since_ms: int, limit: int) -> list[Job]:
        return await self.store.reusable(*same, since_ms, limit)

    async def lead_or_wait(self, same: SameFile, job_id: str) -> asyncio.Future[None] | None:
        """None: ``job_id`` downloads, here and for every process; else what to wait for."""
        here = self.in_flight.lead_or_follow(same, job_id)
        if here is not None:
            return here
        holder = await self.store.lead_reuse(*same, job_id)
        if holder == job_id:
            self._holding.add(job_id)
            return None
        return asyncio.ensure_future(self._ended(holder))

    async def _ended(self, job_id: str) -> None:
        """Returns once ``job_id`` (another process's) no longer runs."""
        while (job := await self.store.get_job(job_id)) is not None and job.status is Status.PROCESSING:
            await asyncio.sleep(self.poll_seconds)

    async def release(self, job_id: str) -> None:
        """``job_id``'s attempt ended (any way): whoever waits for it looks again."""
        self.in_flight.release(job_id)
        if job_id in self._holding:
            self._holding.discard(job_id)
            await self.store.end_reuse_lead(job_id)
