"""The facade: one ``Engine`` wires the store, the scheduler, the pipeline and storage together.

async with Engine.open(store="sqlite:///jobs.db", storage="file:///srv/media") as engine:
    created = await engine.create_job(JobRequest(url=url))
    job = await engine.wait(created.job_id)
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .errors import InvalidRequest, NotFound
from .events import EventHub
from .ffmpeg import FFmpegPaths, locate_ffmpeg
from .lifecycle import LifecycleMixin
from .metadata import MediaMetadata, extract_metadata
from .models import Job, JobCreated, JobRequest, has_control_chars
from .netguard import NetGuard
from .outbox import WebhookDispatcher, default_secrets
from .pipeline.playlist import probe_playlist
from .progress import Event, job_percent
from .results import BatchCreated
from .retry import RetryPolicy
from .runner import JobRunner, RunnerConfig, StageRunner
from .safety import NetworkPolicy
from .scheduler import PoolLimits, Pools, Scheduler
from .secrets import SecretBox
from .states import TERMINAL, Status
from .storage import StorageConfig, StorageTarget, open_target, seal_config
from .store import JobStore, open_store
from .tenant_storage import StorageMixin, storage_endpoints
from .webhooks import WebhookPolicy

__all__ = ["Engine", "default_data_dir"]

log = logging.getLogger("tornado_engine.engine")

_MAX_LIST = 100


def default_data_dir() -> Path:
    """``$TORNADO_ENGINE_HOME``, else ``~/.tornado_engine``."""
    return Path(os.environ.get("TORNADO_ENGINE_HOME") or Path.home() / ".tornado_engine")


class Engine(StorageMixin, LifecycleMixin):
    """The public async API. Create with :meth:`open` (an async context manager)."""

    def __init__(
        self,
        *,
        store: str | JobStore | None = None,
        storage: str | StorageConfig | StorageTarget | None = None,
        data_dir: str | Path | None = None,
        concurrency: int = 500,
        pools: PoolLimits | None = None,
        retry: RetryPolicy | None = None,
        ffmpeg: FFmpegPaths | None = None,
        lease_seconds: float = 30.0,
        poll_interval: float = 0.5,
        socket_timeout: float = 20.0,
        run_jobs: bool = True,
        expand_playlists: bool = True,
        max_playlist_entries: int = 500,
        allow_networks: Sequence[str] | None = None,
        webhook_secrets: Sequence[str] | None = None,
        webhook_policy: WebhookPolicy | None = None,
        stages: StageRunner | None = None,
    ) -> None:
        if concurrency < 1:
            raise InvalidRequest("concurrency must be at least 1", field="concurrency")
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        if store is None:
            store = f"sqlite:///{self.data_dir / 'jobs.db'}"
        self.store: JobStore = open_store(store) if isinstance(store, str) else store
        self.storage = open_target(storage, default=(self.data_dir / "media").as_uri())
        self.run_jobs = run_jobs
        self.expand_playlists = expand_playlists
        # None: $TORNADO_ALLOW_NETWORKS; by default only public addresses are reachable (SSRF guard)
        self.network = NetworkPolicy.build(allow_networks)
        self._netguard = NetGuard(self.network, connect_timeout=socket_timeout)
        self.webhook_secrets = list(webhook_secrets or default_secrets(self.data_dir))
        self._webhook_policy = webhook_policy or WebhookPolicy()
        self._dispatcher: WebhookDispatcher | None = None
        self.proxy_url = ""  # the filtering proxy every yt-dlp request goes through, once started
        self._targets: dict[str, tuple[str, StorageTarget]] = {}
        self._secret_box: SecretBox | None = None
        self.max_playlist_entries = max_playlist_entries
        self._owner = ""  # the tenant this view acts for; see tenant()
        self._is_view = False
        self.hub = EventHub()
        limits = pools or PoolLimits(io=min(concurrency, 64), upload=min(concurrency, 16))
        self._pools = Pools(limits)
        # Blocking stage work (yt-dlp, storage SDKs) gets threads of its own, sized to the pools, so the
        # host application's default executor is neither used up nor resized.
        self._executor = ThreadPoolExecutor(
            max_workers=limits.io + limits.upload + 4, thread_name_prefix="tornado-stage"
        )
        self._ffmpeg = ffmpeg
        # replaces every job's stages (resolve, download, mux, upload); tornado_engine.testing.noop
        self._stages = stages
        self._retry = retry or RetryPolicy()
        self._socket_timeout = socket_timeout
        self._concurrency = concurrency
        self._lease_seconds = lease_seconds
        self._poll_interval = poll_interval
        self._runner: JobRunner | None = None
        self._scheduler: Scheduler | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._swept = (0, 0)  # (removed, kept) job folders at start, for the worker's start-up line
        self._finished: dict[str, asyncio.Event] = {}

    def __repr__(self) -> str:
        return f"Engine(store={self.store!r}, storage={self.storage!r})"

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, **options: Any) -> AsyncIterator[Engine]:
        """Open the store, start processing jobs; on exit stop and close. Options as for ``Engine()``."""
        engine = cls(**options)
        await engine.start()
        try:
            yield engine
        finally:
            await engine.close()

    async def start(self) -> None:
        await self.store.open()
        self.proxy_url = self._netguard.start()
        if not self.run_jobs:
            return
        self._dispatcher = WebhookDispatcher(
            self.store, self.network, self.webhook_secrets, self._webhook_policy,
            poll_interval=self._poll_interval,
        )  # fmt: skip
        self._dispatcher.start()
        ffmpeg = self._ffmpeg or locate_ffmpeg()
        config = RunnerConfig(
            work_dir=self.data_dir / "tmp",
            ffmpeg=ffmpeg,
            storage=self.storage,
            retry=self._retry,
            socket_timeout=self._socket_timeout,
            proxy=self.proxy_url or None,
            network=self.network,
        )
        self._runner = JobRunner(
            self.store, self._pools, config, self._publish, self._executor, quota_for=self._quota_of,
            storage_for=self._storage_for_job, stages=self._stages,
        )  # fmt: skip
        self._scheduler = Scheduler(
            self.store,
            self._runner,
            concurrency=self._concurrency,
            poll_interval=self._poll_interval,
            lease_seconds=self._lease_seconds,
            on_cancel_requested=self._runner.cancel,
        )
        await self._scheduler.start()  # re-queues jobs of dead local workers first
        self._swept = await self._runner.sweep()
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="tornado-sweep")

    async def _sweep_loop(self) -> None:
        """Folders kept for a resume go once their job ends elsewhere (another worker took it over)."""
        assert self._runner is not None
        while True:
            await asyncio.sleep(max(30.0, self._lease_seconds))
            try:
                await self._runner.sweep()
            except Exception:  # the store may be down for a while; the next round tries again
                log.warning("sweeping temporary folders failed", exc_info=True)

    async def close(self, grace: float = 0.0) -> None:
        """Stop claiming; running jobs get ``grace`` seconds, then go back to Pending for a later run."""
        if self._is_view:
            return  # a tenant view shares the engine; only the engine itself closes
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        if self._scheduler is not None:
            await self._scheduler.stop(grace)
            self._scheduler = None
        if self._dispatcher is not None:
            await self._dispatcher.stop()
            self._dispatcher = None
        self._netguard.stop()
        await self.store.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    @property
    def _box(self) -> SecretBox:
        """Encrypts tenants' storage credentials at rest; key from $TORNADO_SECRET_KEY or the data dir."""
        if self._secret_box is None:
            self._secret_box = SecretBox.from_env(self.data_dir)
        return self._secret_box

    def tenant(self, key: str) -> Engine:
        """A view of this engine scoped to one tenant: its jobs, batches, usage and quota only.

        Another tenant's ids are simply not found (NotFound), never revealed."""
        if not isinstance(key, str) or not key or len(key) > 200 or has_control_chars(key):
            raise InvalidRequest("tenant key must be 1-200 printable characters", field="tenant")
        view = copy.copy(self)
        view._owner = key
        view._is_view = True
        return view

    def _publish(self, event: Event) -> None:
        self.hub.publish(event)
        if event.status in TERMINAL and (done := self._finished.get(event.job_id)):
            done.set()

    # -- jobs --------------------------------------------------------------------------------------

    async def create_job(
        self,
        request: JobRequest | dict[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> JobCreated | BatchCreated:
        """Validate and durably store a job; it returns once the job is committed.

        A playlist, channel or show URL becomes a batch of one job per entry (``BatchCreated``)."""
        if not isinstance(request, JobRequest):
            request = JobRequest.from_dict(request)
        if idempotency_key is not None and (
            not 0 < len(idempotency_key) <= 200 or has_control_chars(idempotency_key)
        ):
            raise InvalidRequest(
                "idempotency_key must be 1-200 printable characters", field="idempotency_key"
            )
        await self._check_urls(request)
        await self._check_storage_quota()
        if self.expand_playlists and idempotency_key is None:
            playlist = await probe_playlist(
                request.url, max_entries=self.max_playlist_entries, socket_timeout=self._socket_timeout,
                executor=self._executor, proxy=self.proxy_url,
            )  # fmt: skip
            if playlist is not None:
                return await self._create_playlist_batch(request, playlist)
        job = self._new_job(request)
        stored = await self.store.insert_jobs([job], None, idempotency_key)
        self._wake()
        return JobCreated(job_id=stored[0].id)

    async def _check_urls(self, request: JobRequest) -> None:
        """SSRF guard at the boundary: the source and webhook hosts must resolve to allowed addresses."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self.network.check_url, request.url, "url")
        for endpoint in storage_endpoints(request.storage) if request.storage else ():
            await loop.run_in_executor(self._executor, self.network.check_url, endpoint, "storage")
        if request.webhook_url:
            await loop.run_in_executor(
                self._executor, self.network.check_url, request.webhook_url, "webhook_url"
            )

    def _new_job(self, request: JobRequest, batch_id: str | None = None, title: str | None = None) -> Job:
        return Job(
            id=str(uuid.uuid4()), url=request.url, request=request, owner=self._owner,
            folder=request.folder, batch_id=batch_id, title=title,
            storage_sealed=seal_config(self._box, request.storage) if request.storage else None,
        )  # fmt: skip

    def _wake(self) -> None:
        if self._scheduler is not None:
            self._scheduler.wake()

    async def get_job(self, job_id: str) -> Job:
        job = await self.store.get_job(job_id, self._owner)
        if job is None:
            raise NotFound(f"Job not found: {job_id}")
        return job

    async def list_jobs(
        self, *, limit: int = 20, offset: int = 0, status: str | Status | None = None
    ) -> list[Job]:
        if not 1 <= limit <= _MAX_LIST:
            raise InvalidRequest(f"limit must be between 1 and {_MAX_LIST}", field="limit")
        if offset < 0:
            raise InvalidRequest("offset must not be negative", field="offset")
        wanted = None
        if status is not None:
            try:
                wanted = Status(status)
            except ValueError:
                choices = ", ".join(s.value for s in Status)
                raise InvalidRequest(f"status must be one of: {choices}", field="status") from None
        return await self.store.list_jobs(self._owner, limit, offset, wanted)

    async def wait(self, job_id: str, *, timeout: float | None = None) -> Job:
        """Return the job once it reaches a terminal status (polls the store for other processes' jobs)."""
        done = self._finished.setdefault(job_id, asyncio.Event())
        try:
            async with asyncio.timeout(timeout):
                while True:
                    job = await self.get_job(job_id)
                    if job.is_terminal:
                        return job
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(done.wait(), self._poll_interval)
        finally:
            self._finished.pop(job_id, None)

    async def events(self, job_id: str) -> AsyncIterator[Event]:
        """Progress of one job (stage, bytes, speed, ETA, job-level percent) until it ends."""
        job = await self.get_job(job_id)
        first = Event(
            job.id,
            job.status,
            job.step,
            100.0 if job.is_terminal else job_percent(job.step, 0),
            message=job.error,
        )
        async for event in self.hub.subscribe(job_id, first):
            yield event

    async def extract_metadata(self, url: str) -> MediaMetadata:
        """TornadoAPI's POST /metadata: what is behind ``url`` (title, duration, size, qualities...),
        without downloading it. Same URL rules and network policy as a job; transient failures are
        retried with the engine's RetryPolicy; others raise ``ResolveError`` whose ``kind`` says how a
        job would have ended (``retry.outcome_for``)."""
        request = JobRequest(url=url)
        await self._check_urls(request)
        return await extract_metadata(
            request.url,
            socket_timeout=self._socket_timeout,
            proxy=self.proxy_url or None,
            retry=self._retry,
            executor=self._executor,
        )
