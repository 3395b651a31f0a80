"""What the reuse stage (:mod:`tornado_engine.pipeline.reuse`) is given: the engine's reuse policy, how
to look finished jobs up, and this process's downloads in flight, so that identical jobs running at once
make one download (the first leads, the rest wait for it and then take its file).

Coalescing is per process: jobs on other workers sharing a PostgreSQL store do not wait for each other
(each may download once), but a job that starts after another's file is stored takes it from the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .models import Job
from .reuse import ReusePolicy

__all__ = ["InFlight", "Lookup", "ReuseDesk", "SameFile"]

SameFile = tuple[str, str, str]  # (owner, source key, output key)
# store.reusable: (owner, source key, output key, since epoch ms, limit) -> Completed jobs, newest first
Lookup = Callable[[str, str, str, int, int], Awaitable[list[Job]]]


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


@dataclass(frozen=True)
class ReuseDesk:
    policy: ReusePolicy
    lookup: Lookup
    in_flight: InFlight = field(default_factory=InFlight)
