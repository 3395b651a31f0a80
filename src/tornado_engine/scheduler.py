"""Scheduler: claims jobs from the store and runs them under a global cap and per-resource pools.

One claim loop per engine keeps at most ``concurrency`` jobs in flight. Inside a job, each stage takes a
slot of its own pool (I/O for resolve and download, CPU for ffmpeg, upload for storage), so one job's
mux overlaps another's download. A heartbeat renews the leases of running jobs; a reaper re-queues jobs
whose lease expired or whose owner process on this host is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .store.base import Claim, JobStore
from .supervise import restart_delay, supervised_task
from .telemetry import Attributes, track

__all__ = ["Pool", "PoolLimits", "Pools", "Scheduler", "is_dead_local_owner", "new_worker_id"]

_log = logging.getLogger("tornado_engine.scheduler")

_HOST = socket.gethostname()


def new_worker_id() -> str:
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def is_dead_local_owner(worker_id: str) -> bool:
    """True when ``worker_id`` names a process on this host that no longer runs."""
    host, _, rest = worker_id.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _HOST or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# resolve and download; ffmpeg; storage; yt-dlp's resolve work itself (CPU in threads: sized to the cores,
# so hundreds of resolves at once cannot starve the event loop of the GIL)
Pool = Literal["io", "cpu", "upload", "resolve"]


@dataclass(frozen=True)
class PoolLimits:
    io: int = 32
    cpu: int = max(1, (os.cpu_count() or 2))
    upload: int = 16
    resolve: int = max(1, (os.cpu_count() or 2))


class Pools:
    """Semaphores per resource; ``acquire`` reports how long the caller waited for its slot."""

    def __init__(self, limits: PoolLimits) -> None:
        self.limits = limits
        self._sems: dict[Pool, asyncio.Semaphore] = {
            "io": asyncio.Semaphore(limits.io),
            "cpu": asyncio.Semaphore(limits.cpu),
            "upload": asyncio.Semaphore(limits.upload),
            "resolve": asyncio.Semaphore(limits.resolve),
        }
        self._held: dict[Pool, int] = dict.fromkeys(self._sems, 0)
        track(self)

    @contextlib.asynccontextmanager
    async def acquire(self, pool: Pool, on_wait: Callable[[int], None]) -> AsyncIterator[None]:
        started = time.monotonic()
        async with self._sems[pool]:
            on_wait(int((time.monotonic() - started) * 1000))
            self._held[pool] += 1
            try:
                yield
            finally:
                self._held[pool] -= 1

    def gauges(self) -> Iterator[tuple[str, int, Attributes]]:
        """Slots held per pool, for the ``tornado.pool.active`` metric."""
        for pool, held in self._held.items():
            yield "tornado.pool.active", held, {"tornado.pool": pool}


class Scheduler:
    def __init__(
        self,
        store: JobStore,
        run_job: Callable[[Claim], Coroutine[Any, Any, None]],
        *,
        concurrency: int = 500,
        poll_interval: float = 0.5,
        lease_seconds: float = 30.0,
        worker_id: str | None = None,
        on_cancel_requested: Callable[[str], object] = lambda job_id: None,
        progress: Callable[[Collection[str]], Mapping[str, str]] = lambda held: {},
        only: Collection[str] | None = None,
        health_file: Path | None = None,
    ) -> None:
        self.progress = progress  # what progress to store with the leases held (ProgressSampler.take)
        # None: claim any job; else only these ids (the caller adds to it as it submits)
        self.only = only
        self.health_file = health_file  # touched every heartbeat tick: stale means the loop is stuck
        self.on_cancel_requested = on_cancel_requested  # a cancel asked for through the store
        self.store = store
        self.run_job = run_job
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self.worker_id = worker_id or new_worker_id()
        self.running: dict[str, asyncio.Task[None]] = {}
        self.tokens: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._loops: list[asyncio.Task[None]] = []

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        await self.reap()
        self._loops = [
            supervised_task("tornado-claim", self._claim_loop, _log),
            supervised_task("tornado-heartbeat", self._heartbeat_loop, _log),
        ]

    async def reap(self) -> list[str]:
        requeued = await self.store.requeue_expired(is_dead_local_owner)
        if requeued:
            _log.info("re-queued %d job(s) left by a stopped worker", len(requeued))
            self.wake()
        return requeued

    async def _claim_loop(self) -> None:
        last_reap = time.monotonic()
        failures = 0  # claims failed in a row: the next try waits longer (the store may be down)
        while not self._stopping:
            # cleared before the claim, not after: a wake that comes while it runs (a job committed just
            # after the claim's snapshot) makes one more round instead of waiting for the next poll
            self._wake.clear()
            free = self.concurrency - len(self.running)
            claims: list[Claim] = []
            only = None if self.only is None else frozenset(self.only)
            if free > 0 and only != frozenset():  # nothing of ours yet: no claim, no store call
                try:
                    claims = await self.store.claim(self.worker_id, min(free, 100), self.lease_seconds, only)
                    failures = 0
                except Exception:
                    failures += 1
                    _log.exception("claiming jobs failed (%d in a row); retrying", failures)
            for claim in claims:
                self._spawn(claim)
            if time.monotonic() - last_reap > self.lease_seconds / 2:
                last_reap = time.monotonic()
                try:
                    await self.reap()
                except Exception:  # the next round tries again; jobs of dead workers wait that long
                    _log.exception("re-queuing expired jobs failed; retrying")
            if claims and len(claims) == min(free, 100):
                continue  # more may be waiting: claim again at once
            pause = max(self.poll_interval, restart_delay(failures)) if failures else self.poll_interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)

    def _spawn(self, claim: Claim) -> None:
        job_id = claim.job.id
        self.tokens[job_id] = claim.token
        task = asyncio.create_task(self.run_job(claim), name=f"tornado-job-{job_id}")
        self.running[job_id] = task

        def done(finished: asyncio.Task[None]) -> None:
            self.running.pop(job_id, None)
            self.tokens.pop(job_id, None)
            if not finished.cancelled() and (exc := finished.exception()) is not None:
                # e.g. the store unreachable for longer than it waits: the job stays Processing under a
                # lease nobody renews now, and runs again once it expires (said here, not by asyncio's
                # "Task exception was never retrieved" whenever the task is collected)
                _log.warning("job %s: attempt abandoned (%s); it runs again after its lease", job_id, exc)
            self.wake()  # a slot is free

        task.add_done_callback(done)

    async def _heartbeat_loop(self) -> None:
        while not self._stopping:
            if self.health_file is not None:  # from the start: a worker is alive before its first tick
                _touch(self.health_file)
            # often enough that a cancel asked through the store (another process) lands within ~1 s
            await asyncio.sleep(min(self.lease_seconds / 3, 1.0))
            if not self.tokens:
                continue
            held = dict(self.tokens)
            try:  # one store call (one statement) for every lease this worker holds, and their progress
                beat = await self.store.heartbeat(
                    self.worker_id, held, self.lease_seconds, self.progress(held.keys())
                )
            except Exception:
                _log.exception("heartbeat failed")
                continue
            for job_id in beat.lost:
                if job_id not in held or self.tokens.get(job_id) != held[job_id]:
                    continue  # not ours, or the attempt ended meanwhile (its final write ended the lease)
                _log.warning("job %s: lease lost; stopping this attempt", job_id)
                if task := self.running.get(job_id):
                    task.cancel()
            for job_id in beat.cancel_requested:
                self.on_cancel_requested(job_id)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until no job is running (or ``timeout``)."""
        if self.running:
            await asyncio.wait(list(self.running.values()), timeout=timeout)

    async def stop(self, grace: float = 0.0) -> None:
        """Stop claiming; let running jobs finish within ``grace`` seconds, then cancel the rest."""
        self._stopping = True
        self._wake.set()
        for loop_task in self._loops:
            loop_task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        if self.running and grace > 0:
            await asyncio.wait(list(self.running.values()), timeout=grace)
        leftover = list(self.running.values())
        for task in leftover:
            task.cancel()
        await asyncio.gather(*leftover, return_exceptions=True)


def _touch(path: Path) -> None:
    try:
        path.touch()
    except OSError as exc:  # a full or read-only disk: the probe then fails, which is the point
        _log.warning("health file %s: %s", path, exc)
