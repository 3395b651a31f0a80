"""What runs while an engine is open: the store connection, the network guard, the webhook dispatcher, the
job runner and the scheduler that feeds it, and the sweeper of leftover job folders.

Started and stopped in one order (:meth:`Runtime.start`, :meth:`Runtime.close`); the job operations reach
it only to wake the scheduler after a submit and to stop a job running here on cancel.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path

from .bounds import ResolveBounds, StallPolicy
from .diskspace import DEFAULT_RESERVE_BYTES
from .events import EventHub
from .fdlimit import raise_open_files_limit
from .ffmpeg import FFmpegPaths, locate_ffmpeg
from .logfields import ContextExecutor
from .models import Job
from .netguard import NetGuard
from .outbox import WebhookDispatcher
from .progress import Event
from .progress_sampler import ProgressSampler
from .results import Quota
from .retry import RetryPolicy
from .reuse import ReusePolicy
from .runner import JobRunner, RunnerConfig, StageRunner
from .safety import NetworkPolicy
from .scheduler import PoolLimits, Pools, Scheduler, new_worker_id
from .secrets import SecretBox
from .sources.book import SourceBook
from .sources.settings import SourceSettings
from .storage import StorageTarget
from .store.base import JobStore
from .supervise import supervised_task
from .webhooks import WebhookPolicy
from .workspace import Workspace
from .ytdlp_loader import load_ytdlp

__all__ = ["Runtime", "RuntimeOptions"]

_log = logging.getLogger("tornado_engine.engine")
_SHARE_SECONDS = 5.0  # how often a worker counts the others for its share of the per-host limits
_THREADS_GRACE = 5.0  # seconds close() waits for stage threads (a cancelled stage stops within ~2 s)


@dataclass(frozen=True, kw_only=True)
class RuntimeOptions:
    """How the running parts behave; ``Engine()``'s keyword arguments of the same names."""

    data_dir: Path
    concurrency: int = 500
    pools: PoolLimits | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    ffmpeg: FFmpegPaths | None = None
    lease_seconds: float = 30.0
    poll_interval: float = 0.5
    socket_timeout: float = 20.0
    run_jobs: bool = True
    webhook_policy: WebhookPolicy = field(default_factory=WebhookPolicy)
    # replaces every job's stages (resolve, download, mux, upload); tornado_engine.testing.noop
    stages: StageRunner | None = None
    # kept free on the work dir's disk: a download whose expected size does not fit above it waits
    disk_reserve_bytes: int = DEFAULT_RESERVE_BYTES
    resolve_bounds: ResolveBounds = field(default_factory=ResolveBounds)  # what one resolve may cost
    # a transfer slower than this is cut and the job ends (or is retried) "stalled" (bounds.py)
    stall: StallPolicy = field(default_factory=StallPolicy)
    # claim only the jobs this engine submitted (the CLI's ``run``): the rest of the queue is for workers
    own_jobs_only: bool = False
    # touched at every tick of the lease (heartbeat) loop: a liveness probe's file (``worker --health-file``)
    health_file: Path | None = None
    # upstream proxies, cookies, bandwidth limits, impersonation (tornado_engine.sources)
    sources: SourceSettings = field(default_factory=SourceSettings)
    # take an earlier identical job's stored file instead of downloading again (tornado_engine.reuse)
    reuse: ReusePolicy = field(default_factory=ReusePolicy)


class Runtime:
    """Owns the engine's running parts; the job operations only :meth:`wake` it and :meth:`cancel` jobs."""

    def __init__(
        self,
        store: JobStore,
        storage: StorageTarget,
        network: NetworkPolicy,
        hub: EventHub,
        webhook_secrets: Sequence[str],
        options: RuntimeOptions,
    ) -> None:
        self._store = store
        self._storage = storage
        self._network = network
        self.hub = hub
        self.progress = ProgressSampler()  # running jobs' progress, stored with their lease renewals
        self.options = options
        self._webhook_secrets = list(webhook_secrets)
        self._netguard = NetGuard(network, connect_timeout=options.socket_timeout, stall=options.stall,
                                  upstream=options.sources.proxies)  # fmt: skip
        self._box: SecretBox | None = None
        # each tenant's jar and proxy pool (sealed in the store), and every attempt's sources
        self.sources = SourceBook(store, options.sources, network, self._secret_box)
        self._netguard.pacer = self.sources.pacer
        limits = options.pools or PoolLimits(
            io=min(options.concurrency, 64), upload=min(options.concurrency, 16)
        )
        self._pools = Pools(limits)
        # Blocking stage work (yt-dlp, storage SDKs) gets threads of its own, sized to the pools, so the
        # host application's default executor is neither used up nor resized. Each call runs in its
        # caller's context: what a stage thread logs names the job.
        self.executor = ContextExecutor(
            max_workers=limits.io + limits.upload + 4, thread_name_prefix="tornado-stage"
        )
        self._dispatcher: WebhookDispatcher | None = None
        self._runner: JobRunner | None = None
        self._scheduler: Scheduler | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._sharer: asyncio.Task[None] | None = None  # per-host limits: this worker's share of them
        self.sweep_interval = max(30.0, options.lease_seconds)  # seconds between sweeps after the first
        self.workspace: Workspace | None = None  # this engine's slot of DATA_DIR/tmp, held while it runs
        self._closed = False
        self.swept = (0, 0)  # (removed, kept) job folders at start, for the worker's start-up line
        self._own: set[str] | None = set() if options.own_jobs_only else None  # what it may claim

    def _secret_box(self) -> SecretBox:
        """Seals tenants' cookies and proxy credentials; the key as for their storage (secrets.py)."""
        if self._box is None:
            self._box = SecretBox.from_env(self.options.data_dir)
        return self._box

    @property
    def proxy_url(self) -> str:
        """The filtering proxy every yt-dlp request goes through, once started ("" before)."""
        return self._netguard.url

    def resolve_slot(self) -> AbstractAsyncContextManager[None]:
        """A slot of the resolve pool (CPU-sized) for resolves outside a job: playlist probe, metadata."""
        return self._pools.acquire("resolve", lambda ms: None)

    def wake(self) -> None:
        """A job was submitted or un-paused: let the scheduler look now instead of at its next poll."""
        if self._scheduler is not None:
            self._scheduler.wake()

    def submitted(self, job_ids: Iterable[str]) -> None:
        """Jobs were stored here: with ``own_jobs_only`` they join what this engine claims; wake it."""
        if self._own is not None:
            self._own.update(job_ids)
        self.wake()

    def cancel(self, job_id: str) -> bool:
        """Stop ``job_id`` if it runs here (elsewhere its heartbeat sees the store's cancel flag); False if
        it does not run here."""
        return self._runner is not None and self._runner.cancel(job_id)

    async def temp_bytes(self, owner: str) -> int:
        """Bytes in the temporary folders of ``owner``'s jobs running in this process (0 if none run)."""
        return await self._runner.temp_bytes(owner) if self._runner is not None else 0

    def warm_up(self) -> None:
        """Load yt-dlp and build its extractor list in a stage thread now (once per process; ~1 s of
        CPU), so the first resolve or playlist probe does not pay for it. Returns at once."""
        self.executor.submit(_warm_up)

    def _publish(self, event: Event) -> None:
        self.hub.publish(event)  # looked up per event: callers may wrap the hub's publish after start
        self.progress.note(event)

    async def start(
        self,
        quota_for: Callable[[str], Awaitable[Quota | None]],
        storage_for: Callable[[Job], Awaitable[StorageTarget]],
    ) -> None:
        """Open the store and the network guard; with ``run_jobs``, deliver webhooks and run jobs.

        ``quota_for(owner)`` and ``storage_for(job)`` are how the runner learns a tenant's limits and
        where a job's file goes."""
        opts = self.options
        await self._store.open()
        self._netguard.start()
        if not opts.run_jobs:
            return
        self._dispatcher = WebhookDispatcher(
            self._store, self._network, self._webhook_secrets, opts.webhook_policy,
            poll_interval=opts.poll_interval,
        )  # fmt: skip
        self._dispatcher.start()
        ffmpeg = opts.ffmpeg or locate_ffmpeg()
        raise_open_files_limit(opts.concurrency)
        loop = asyncio.get_running_loop()
        self.workspace = await loop.run_in_executor(self.executor, Workspace.take, opts.data_dir / "tmp")
        worker_id = new_worker_id()
        config = RunnerConfig(
            work_dir=self.workspace.path,
            data_dir=opts.data_dir,
            ffmpeg=ffmpeg,
            storage=self._storage,
            retry=opts.retry,
            socket_timeout=opts.socket_timeout,
            proxy=self.proxy_url or None,
            network=self._network,
            disk_reserve_bytes=opts.disk_reserve_bytes,
            bounds=opts.resolve_bounds,
            stall=opts.stall,
            guard=self._netguard if self.proxy_url else None,
            worker_id=worker_id,
            reuse=opts.reuse,
            reuse_poll=opts.poll_interval,
        )
        self._runner = JobRunner(
            self._store, self._pools, config, self._publish, self.executor, quota_for=quota_for,
            storage_for=storage_for, stages=opts.stages, sources_for=self.sources.for_job,
        )  # fmt: skip
        self.sources.pacer.on_wait = self._runner.host_wait
        self._scheduler = Scheduler(
            self._store,
            self._runner,
            concurrency=opts.concurrency,
            poll_interval=opts.poll_interval,
            lease_seconds=opts.lease_seconds,
            on_cancel_requested=self._runner.cancel,
            progress=self.progress.take,
            only=self._own,
            worker_id=worker_id,
            health_file=opts.health_file,
        )
        await self._scheduler.start()  # re-queues jobs of dead local workers first
        self._store.on_new_jobs(self._scheduler.wake)  # jobs queued by other processes (PostgreSQL)
        self.swept = await self._runner.sweep()
        sweep_loop = functools.partial(self._sweep_loop, self._runner)
        self._sweeper = supervised_task("tornado-sweep", sweep_loop, _log)
        hosts = opts.sources.hosts
        if hosts.connections is not None or hosts.rate is not None:  # limits to share with other workers
            share_loop = functools.partial(self._share_loop, worker_id)
            self._sharer = supervised_task("tornado-host-share", share_loop, _log)

    async def _share_loop(self, worker_id: str) -> None:
        """Per-host limits are for all the workers on the store: this one takes its share, by the other
        workers that hold a lease now (idle ones make no requests), looked at every few seconds."""
        while True:
            try:
                self.sources.pacer.share(1 + await self._store.live_workers(worker_id))
            except Exception:  # the store may be down for a while; the share stays as it was
                _log.exception("counting the live workers failed; the next round tries again")
            await asyncio.sleep(_SHARE_SECONDS)

    async def _sweep_loop(self, runner: JobRunner) -> None:
        """Folders kept for a resume go once their job ends elsewhere (another worker took it over)."""
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                await runner.sweep()
            except Exception:  # the store may be down for a while; the next round tries again
                _log.exception("sweeping temporary folders failed; the next round tries again")

    async def close(self, grace: float = 0.0) -> None:
        """Stop claiming; running jobs get ``grace`` seconds, then go back to Pending for a later run.

        Then webhooks, the network guard, the store and the stage threads stop, in that order: the jobs'
        cancel flags are set and the guard's connections closed, so every stage thread ends within
        ``_THREADS_GRACE`` seconds (waited for: no resolve or download goes on after close). Closing again
        does nothing."""
        if self._closed:
            return
        self._closed = True
        for task in (self._sweeper, self._sharer):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._sweeper = self._sharer = None
        if self._scheduler is not None:
            await self._scheduler.stop(grace)
            self._scheduler = None
        self.hub.close()  # engine-wide subscribers end once they have read what is buffered
        if self.workspace is not None:  # no job of ours runs now: the slot may go to another engine
            self.workspace.release()
            self.workspace = None
        if self._dispatcher is not None:
            await self._dispatcher.stop()
            self._dispatcher = None
        self._netguard.stop()
        await self._store.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
        await _join(list(self.executor._threads), _THREADS_GRACE)


def _warm_up() -> None:
    try:
        load_ytdlp()
        from .ytdlp_registry import warm_up

        warm_up()
    except Exception:  # the first resolve builds it again and reports the failure on its job
        _log.exception("preloading the downloader failed; the first job will try again")


async def _join(threads: list[threading.Thread], timeout: float) -> None:
    """Wait (without blocking the loop) until ``threads`` have ended, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (alive := [t.name for t in threads if t.is_alive()]) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    if alive:
        _log.warning("close: %d stage thread(s) still running after %.0f s", len(alive), timeout)
