"""One attempt at one claimed job: its fenced saves, progress events, retries, and :func:`apply`, the one
place where what the stages found reaches the Job.

The runner (:mod:`tornado_engine.runner`) sequences the stages; an :class:`Attempt` is what it holds for
the job while they run, and what a replacement for the stages (``Engine(stages=...)``) is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .errors import JobCancelled, StageError
from .models import Job
from .outbox import job_messages, progress_messages
from .partialfile import keep_partials
from .pipeline.context import (
    Counter,
    Fetched,
    Labels,
    Muxed,
    Resolved,
    Result,
    Reused,
    Stored,
    Strategy,
    Uploaded,
    Waited,
)
from .progress import Event, job_percent
from .retry import RetryPolicy
from .reuse import output_key
from .sources.hostpace import BACKOFF_KINDS, HELD_REASON, registrable_domain
from .sources.pacer import HostPacer
from .states import Status, Step
from .storage import StorageTarget
from .store.base import Claim, JobStore
from .story import AttemptStory

__all__ = ["Attempt", "StageRun", "apply"]

_T = TypeVar("_T")


class StageRun(Protocol):
    """What a replacement for the stages gets from the runner for one attempt (see ``runner.StageRunner``)."""

    job: Job

    async def enter(self, step: Step) -> None: ...

    async def save(self) -> None: ...

    def emit(self, step: Step, stage_percent: float, **extra: Any) -> None: ...

    def check_cancel(self) -> None: ...


def apply(job: Job, result: Result) -> None:
    """Write what a stage found into the job record (the only place stage results reach the Job)."""
    match result:
        case Resolved():
            # a feed or playlist item keeps its own title (its file is named after it): the resolver's
            # may be the file's name ("ep2"); other jobs take the resolver's
            job.title, job.description = job.title or result.title, result.description
            job.release_date = result.release_date
            job.folder = job.request.folder
            job.reserved_bytes = result.expected_bytes  # usage() counts it once saved
            job.source_key = result.source_key(job.request.url)  # saved with it: what reuse looks up
            job.output_key = output_key(job.request)
        case Strategy():
            job.download_strategy = result.name
        case Fetched():
            job.download_duration_ms = int(result.seconds * 1000)
            if result.seconds > 0:
                job.download_speed_mbps = round(result.bytes / result.seconds / 1e6, 2)
        case Labels():
            _apply_labels(job, result)
        case Muxed() if result.seconds is not None:
            job.mux_duration_ms = int(result.seconds * 1000)
        case Uploaded(kind="media"):
            job.storage_url = result.storage_url
        case Uploaded():
            job.side_keys.append(result.stored.key)
            if result.kind == "thumbnail":
                job.thumbnail_url = result.stored.url
            elif job.subtitle_url is None:  # the first requested language found
                job.subtitle_url = result.stored.url
        case Stored():
            job.upload_duration_ms = int(result.seconds * 1000)
            if result.seconds > 0:
                job.upload_speed_mbps = round(result.media.size / result.seconds / 1e6, 2)
        case Reused():
            _apply_reused(job, result)
        case Waited(pool="io"):
            job.io_pool_wait_ms = (job.io_pool_wait_ms or 0) + result.ms
        case Waited(pool="cpu"):
            job.cpu_pool_wait_ms = (job.cpu_pool_wait_ms or 0) + result.ms
        case Waited():
            job.upload_pool_wait_ms = (job.upload_pool_wait_ms or 0) + result.ms


def _apply_reused(job: Job, reused: Reused) -> None:
    # what the download and the probe would have found: the source job's
    source = reused.source
    job.reused_from = source.id
    job.download_strategy = "reuse"
    job.storage_url = reused.storage_url
    job.native_video_codec, job.native_audio_codec = source.native_video_codec, source.native_audio_codec
    job.actual_quality = source.actual_quality


def _apply_labels(job: Job, labels: Labels) -> None:
    # an earlier attempt's labels stand (a resumed job probes the same files again)
    if labels.video_codec is not None and job.native_video_codec is None:
        job.native_video_codec = labels.video_codec
        if labels.quality_from == "video":
            job.actual_quality = labels.quality
    if labels.audio_codec is not None and job.native_audio_codec is None:
        job.native_audio_codec = labels.audio_codec
        if labels.quality_from == "audio":
            job.actual_quality = labels.quality


class Attempt:
    """State of one attempt at one job."""

    def __init__(
        self,
        claim: Claim,
        store: JobStore,
        publish: Callable[[Event], None],
        policy: RetryPolicy,
        *,
        folder: Path,
        storage: StorageTarget,
        worker: str = "",
    ) -> None:
        self.job = claim.job
        self.token = claim.token
        self.stepped = claim.stepped  # the claim wrote the Downloading step
        self._store = store
        self._publish = publish
        self._policy = policy
        self._cancel: threading.Event | None = None  # made on first use (see cancel)
        self.cancel_async = asyncio.Event()  # awaited by the muxer and by retry back-offs
        self.storage = storage  # replaced by the tenant's own, if any, when the run starts
        self.uploaded: tuple[StorageTarget, str] | None = None  # the media object, once written
        self.folder = folder
        self.folder_in_use = False  # made lazily: stages that need no files (the no-op kit) never pay for it
        self.loop = asyncio.get_running_loop()
        self.last_emit = 0.0
        self.task = asyncio.current_task()
        self.finished = asyncio.Event()
        self.story = AttemptStory(self.job, worker)  # its log lines, metrics and spans
        self.pacer: HostPacer | None = None  # the engine's per-host pacer, set when the stages start

    @property
    def cancel(self) -> threading.Event:
        """Set to stop the attempt; read by yt-dlp's progress hook and the fast path, in their threads.
        Made on first use, on the event loop: stages that never look (the no-op kit) never pay for one."""
        if self._cancel is None:
            self._cancel = threading.Event()
        return self._cancel

    @functools.cached_property
    def host(self) -> str:
        """The source URL's host (its pacing and back-off), parsed once when first needed."""
        return urllib.parse.urlsplit(self.job.request.url).hostname or ""

    async def save(self) -> None:
        """Fenced write; a terminal one carries the job's webhook events in the same transaction."""
        job, outbox = self.job, []
        if job.is_terminal:
            outbox = job_messages(job)
            if job.status is Status.COMPLETED:
                outbox += progress_messages(job, Step.FINISHED)
            if outbox:
                job.webhook_status = "pending"
        started = time.perf_counter()
        await self._store.save(job, self.token, outbox)
        if job.is_terminal:
            self.story.finished()
        else:
            self._count_write(started)

    def _count_write(self, started: float) -> None:
        ms = int((time.perf_counter() - started) * 1000)
        self.job.store_write_ms = (self.job.store_write_ms or 0) + ms

    def emit(self, step: Step, stage_percent: float, **extra: Any) -> None:
        job = self.job
        job.progress = job_percent(step, stage_percent)
        self._publish(Event(job.id, job.status, step, job.progress, round(stage_percent, 2), **extra,
                            batch_id=job.batch_id, owner=job.owner))  # fmt: skip

    def emit_threadsafe(self, step: Step, stage_percent: float, **extra: Any) -> None:
        now = time.monotonic()
        if stage_percent < 100 and now - self.last_emit < 0.1:
            return  # hooks fire per block; ten events a second are plenty
        self.last_emit = now
        self.loop.call_soon_threadsafe(lambda: self.emit(step, stage_percent, **extra))

    def waiting_for_host(self, domain: str, until: float) -> None:
        """Tell the job's watchers that it waits for ``domain``'s back-off, until ``until`` (epoch s)."""
        job = self.job
        job.host_waits += 1
        message = f"waiting for host {domain} until {time.strftime('%H:%M:%S', time.gmtime(until))} UTC"
        self._publish(Event(job.id, job.status, job.step, job.progress, message=message,
                            batch_id=job.batch_id, owner=job.owner))  # fmt: skip

    async def clear_host(self) -> None:
        """Wait out the back-off of the job's source host, if any (shown in its events); cancellable."""
        if self.pacer is not None:
            await self.pacer.clear(self.host, self.job.id, self.cancel_async)
            self.check_cancel()

    async def _held(self, cleanup: Callable[[], None] | None) -> None:
        if cleanup is not None:
            cleanup()
        await asyncio.sleep(0.05)  # the guard's answer came as the back-off ended: never a busy loop
        await self.clear_host()

    def _host_backoff(self, exc: StageError) -> float:
        """A 429, a 503 with ``Retry-After`` or a bot check: every job of the host waits (this one too):
        seconds until the host's back-off ends, 0 for any other failure."""
        if self.pacer is None or (exc.kind not in BACKOFF_KINDS and exc.retry_after is None):
            return 0.0
        return self.pacer.back_off(self.host, exc.retry_after)

    def check_cancel(self) -> None:
        if self._cancel is not None and self._cancel.is_set():
            raise JobCancelled(f"job {self.job.id} cancelled")

    async def enter(self, step: Step, *, written: bool = False) -> None:
        """The job's next step: saved (unless ``written``: the claim wrote it), its webhook progress
        events queued, its event published."""
        self.check_cancel()
        self.job.step = step
        if not written:
            await self.save()
        if events := progress_messages(self.job, step):
            started = time.perf_counter()
            await self._store.enqueue(events)
            self._count_write(started)
        self.emit(step, 0.0)

    def record(self, result: Result) -> None:
        apply(self.job, result)
        self.story.result(result)
        if isinstance(result, Uploaded) and result.kind == "media":
            self.uploaded = (self.storage, result.stored.key)

    def reset_folder(self) -> None:
        """Blocking: a job folder with nothing but partial downloads a later try may resume (their
        sidecars say of which source version; the downloaders check before they ask for the rest)."""
        keep_partials(self.folder)

    async def retrying(
        self,
        counter: Counter,
        attempt: Callable[[], Awaitable[_T]],
        cleanup: Callable[[], None] | None = None,
    ) -> _T:
        """``attempt()``, again after a transient failure while the policy allows, counted in ``counter``."""
        while True:
            try:
                return await attempt()
            except StageError as exc:
                if counter == "download" and self.pacer is not None and HELD_REASON in exc.message:
                    await self._held(cleanup)  # never sent: the host's back-off, not the source's answer
                    continue
                host_wait = self._host_backoff(exc) if counter == "download" else 0.0
                retries = self.job.download_retries if counter == "download" else self.job.upload_retries
                if not self._policy.should_retry(exc.kind, retries):
                    raise
                if counter == "download":
                    self.job.download_retries = retries + 1
                else:
                    self.job.upload_retries = retries + 1
                if cleanup is not None:
                    cleanup()
                delay = max(self._policy.delay(retries), exc.retry_after or 0.0, host_wait)
                if host_wait:
                    self.waiting_for_host(registrable_domain(self.host), time.time() + delay)
                self.story.retry(exc, retries + 1, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.cancel_async.wait(), delay)
                self.check_cancel()
