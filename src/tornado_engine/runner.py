"""Runs one claimed job through its stages and records how it ended.

The stages (:mod:`tornado_engine.pipeline`: resolve -> download -> mux -> upload) do the work, each
given a :class:`~tornado_engine.pipeline.context.StageContext` and the previous stage's result. This
module only sequences them: it applies their results to the Job (through the attempt), saves checkpoints
so a later attempt resumes after the download or the mux, owns retries, cancel and the terminal write,
and removes the job's temporary folder after every outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import shutil
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from . import resume
from .attempt import Attempt, StageRun
from .bounds import ResolveBounds, StallPolicy
from .checkpoint import DOWNLOADED, Checkpoint
from .coalesce import ReuseDesk
from .diskspace import DEFAULT_RESERVE_BYTES
from .errors import JobCancelled, ResolveError, StageError, StoreError
from .ffmpeg import FFmpegPaths
from .models import Job, now_ms
from .netguard import NetGuard
from .options import MediaOptions
from .partialfile import holds_partials
from .pipeline import reuse
from .pipeline.context import Fetched, Resolved, StageContext
from .pipeline.download import download
from .pipeline.mux import mux
from .pipeline.resolve import resolve
from .pipeline.upload import upload
from .progress import Event
from .quota import quota_problem
from .results import Quota
from .retry import RetryPolicy, outcome_for
from .reuse import ReusePolicy
from .safety import NetworkPolicy, redact
from .scheduler import Pools
from .sources.settings import JobSources
from .states import Status, Step, advance
from .storage import StorageTarget, StoredObject
from .store.base import Claim, JobStore, LeaseLost
from .sweep import remove_job_folders, sweep
from .telemetry import Attributes, recheck_tracing, track
from .workroom import WorkRoom
from .workspace import adopt, hide_local_paths

__all__ = ["JobRunner", "RunnerConfig", "StageRunner"]

_log = logging.getLogger("tornado_engine.runner")
_T = TypeVar("_T")

# Runs an attempt's stages in place of resolve -> download -> mux -> upload and returns what it stored;
# the runner still claims, saves, times and finishes the job. ``tornado_engine.testing.noop`` has one
# that does no work, for measuring the engine itself (``Engine(stages=...)``).
StageRunner = Callable[[StageRun], Awaitable[StoredObject]]


@dataclass
class RunnerConfig:
    work_dir: Path
    ffmpeg: FFmpegPaths
    storage: StorageTarget
    retry: RetryPolicy
    socket_timeout: float = 20.0
    proxy: str | None = None  # the network guard (SSRF filter) every yt-dlp request goes through
    network: NetworkPolicy | None = None  # the fast download path connects only to what this allows
    data_dir: Path | None = None  # hidden from job errors (as is each job folder); default work_dir
    disk_reserve_bytes: int = DEFAULT_RESERVE_BYTES  # kept free in the work dir: a download must fit above
    bounds: ResolveBounds = field(default_factory=ResolveBounds)  # what one resolve may cost
    stall: StallPolicy = field(default_factory=StallPolicy)
    guard: NetGuard | None = None  # then each job gets its own proxy credential (guard.job_proxy)
    worker_id: str = ""  # the scheduler's, named in each attempt's log line and span
    reuse: ReusePolicy = field(default_factory=ReusePolicy)  # taking finished jobs' files (reuse.py)
    reuse_poll: float = 0.5  # seconds between looks at another process's job downloading the same file


class JobRunner:
    def __init__(
        self,
        store: JobStore,
        pools: Pools,
        config: RunnerConfig,
        publish: Callable[[Event], None],
        executor: Executor | None = None,
        quota_for: Callable[[str], Awaitable[Quota | None]] | None = None,
        storage_for: Callable[[Job], Awaitable[StorageTarget]] | None = None,
        stages: StageRunner | None = None,
        sources_for: Callable[[Job], Awaitable[JobSources]] | None = None,
    ) -> None:
        self.stages = stages
        self.sources_for = sources_for
        self._secrets: dict[str, list[str]] = {}  # per running job: what its errors must not show
        self.quota_for = quota_for
        self.storage_for = storage_for
        self.store = store
        self.pools = pools
        self.config = config
        self.publish = publish
        self.executor = executor
        self.active: dict[str, Attempt] = {}
        self.room = WorkRoom(config.disk_reserve_bytes, executor)
        self.reuse = ReuseDesk(config.reuse, store, config.reuse_poll)
        track(self)
        recheck_tracing()  # a tracer provider the host set just before this engine: spans from its first job

    def gauges(self) -> Iterator[tuple[str, int, Attributes]]:
        """Attempts running here per step, for the ``tornado.jobs.active`` metric."""
        steps = Counter(run.job.step for run in self.active.values())
        for step in (Step.QUEUED, Step.DOWNLOADING, Step.MUXING, Step.UPLOADING):
            yield "tornado.jobs.active", steps[step], {"tornado.job.step": step.value}

    async def __call__(self, claim: Claim) -> None:
        previous = self.active.get(claim.job.id)
        if previous is not None and previous.task is not None:
            # claimed again here while an attempt whose lease ran out still winds down: it must be gone
            # before this one uses the same job folder
            previous.task.cancel()
            await previous.finished.wait()
        cfg = self.config
        run = Attempt(claim, self.store, self.publish, cfg.retry, folder=cfg.work_dir / claim.job.id,
                      storage=cfg.storage, worker=cfg.worker_id)  # fmt: skip
        self.active[run.job.id] = run
        abandoned = False  # the job goes on in a later attempt, which may resume from the folder
        try:
            with run.story.running():
                await self._run(run)
        except LeaseLost:
            abandoned = True
            _log.warning("job %s: lease lost; another attempt owns it now", run.job.id)
        except StoreError:
            abandoned = True
            raise
        except asyncio.CancelledError:
            abandoned = True
            self._stop(run.job.id, run)  # its stage threads must end: close() waits for them
            # shutdown or a lost lease: give the job back unless someone else already has it
            with contextlib.suppress(Exception):
                await self.store.release(run.job, run.token)
            raise
        finally:
            if self.active.get(run.job.id) is run:
                del self.active[run.job.id]
            if self.config.guard is not None:
                self.config.guard.forget(run.job.id)
            self._secrets.pop(run.job.id, None)
            await self._release_reuse(run.job.id)
            if run.pacer is not None:
                run.pacer.forget(run.job.id)
            # a later attempt resumes from a checkpoint, or from a partial download's bytes
            keep = abandoned and (
                bool(run.job.checkpoint) or await self._in_thread(holds_partials, run.folder)
            )
            if not keep:
                await self._clear_dir(run)
            run.finished.set()

    async def _run(self, run: Attempt) -> None:
        job = run.job  # its attempt counted and started by the claim (``store.rules.started``)
        run.story.claimed()
        if self.storage_for is not None:  # read now: a retried job goes where its tenant's files go today
            run.storage = await self.storage_for(job)
        checkpoint = None
        if self.stages is None:
            await self._adopt(run)
            checkpoint = await resume.resumable(job, run.folder, self.executor)
            run.folder_in_use = checkpoint is not None
        if checkpoint is None:
            await run.enter(Step.DOWNLOADING, written=run.stepped)
        else:
            _log.info("job %s: resuming after the %s stage of an earlier attempt", job.id, checkpoint.stage)
        try:
            stored = await (self.stages(run) if self.stages else self._pipeline(run, checkpoint))
        except JobCancelled:
            await self._cancelled(run)
            return
        except StageError as exc:
            if run.cancel.is_set():  # the cancel cut the stage's connection (or ffmpeg): its error is ours
                await self._cancelled(run)
            else:
                await self._fail(run, exc)
            return
        except StoreError:
            # the store, not the job, failed (an outage, a lost lease): this attempt is abandoned and the
            # job runs again after its lease; recording it Failed would blame the media for our database
            raise
        except Exception as exc:  # a bug of ours must still end the job, not leave it Processing
            _log.exception("job %s: unexpected error", job.id)
            await self._fail(run, StageError(f"Internal error: {type(exc).__name__}"))
            return
        await self._complete(run, stored)

    async def _pipeline(self, run: Attempt, checkpoint: Checkpoint | None) -> StoredObject:
        """resolve -> download -> mux -> upload, from where ``checkpoint`` says the last attempt got."""
        job = run.job
        quota = await self.quota_for(job.owner) if self.quota_for else None
        sources = await self.sources_for(job) if self.sources_for else JobSources()
        self._secrets[job.id] = sources.secrets()
        if self.config.guard is not None:  # its connections go through its proxies, at its bandwidth
            self.config.guard.route(job.id, sources.proxies, sources.throttle)
            sources = dataclasses.replace(sources, metered=True)
        run.pacer = sources.pacer
        ctx = self._context(run, quota, sources)
        job.requested_quality = ctx.options.requested_quality
        run.folder_in_use = True
        if checkpoint is None:  # an earlier attempt's files go, but for partial downloads to resume
            await self._in_thread(run.reset_folder)
            fetch = functools.partial(self._fetch, run, ctx)
            fetched = await run.retrying("download", fetch, run.reset_folder)
            if isinstance(fetched, Job):  # a finished job's stored file, taken instead of a download
                return await self._take(run, ctx, fetched)
            checkpoint = resume.downloaded(run.folder, fetched)
            job.checkpoint = checkpoint.to_data()  # saved by the next step's write
        else:
            fetched = resume.fetched_from(run.folder, checkpoint)
        if checkpoint.stage == DOWNLOADED:
            await run.enter(Step.MUXING)
            # only a full disk is transient here; the muxer removed its partial output. The steps before
            # the upload share the download's retry count (the job has no mux counter).
            with run.story.stage_run("mux"):
                muxed = await run.retrying("download", functools.partial(mux, ctx, fetched))
                run.record(muxed)
            job.checkpoint = resume.muxed(checkpoint, muxed).to_data()
        else:
            muxed = resume.muxed_from(run.folder, checkpoint)
        # an upload re-run after a crash writes the same key again: the name comes from the saved record
        await run.enter(Step.UPLOADING)
        with run.story.stage_run("upload"):
            stored = await upload(ctx, muxed, title=job.title)
            run.record(stored)
        return stored.media

    async def _adopt(self, run: Attempt) -> None:
        """The job's folder, left in the slot of an engine that is gone, comes to this engine's slot (its
        partial downloads are resumed; a checkpoint pointing there follows it)."""
        moved_from = await self._in_thread(adopt, self.config.work_dir, run.job.id)
        if moved_from is None:
            return
        _log.info("job %s: took over the files an engine that is gone left", run.job.id)
        data = run.job.checkpoint
        if isinstance(data, dict) and data.get("folder") == str(moved_from):
            run.job.checkpoint = {**data, "folder": str(run.folder)}

    async def _in_thread(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def _fetch(self, run: Attempt, ctx: StageContext) -> Fetched | Job:
        """One try at resolve -> admit -> reuse or download, holding one io slot throughout, except while
        waiting for another job downloading the same file; each waits out the source host's back-off first.
        -> the download, or the job whose file to take"""
        await run.clear_host()
        async with ctx.acquire("io"):
            with run.story.stage_run("resolve"):
                started = time.monotonic()
                resolved = await resolve(ctx)
                run.job.resolve_duration_ms = int((time.monotonic() - started) * 1000)
                run.record(resolved)
            await run.save()  # usage() counts the space reservation from now on (and reuse sees the keys)
            await self._admit(run.job, ctx.quota, resolved)
            planned = await reuse.plan(ctx, resolved)
            if planned.wait is None:
                return planned.found or await self._download(run, ctx, resolved)
        found = await reuse.follow(ctx, resolved, planned.wait)
        if found is not None:
            return found
        async with ctx.acquire("io"):  # the job it waited for failed: this one downloads (and leads)
            return await self._download(run, ctx, resolved)

    async def _download(self, run: Attempt, ctx: StageContext, resolved: Resolved) -> Fetched:
        await run.clear_host()
        with run.story.stage_run("download"):
            async with self.room.download(run.folder, resolved.expected_bytes):
                fetched = await download(ctx, resolved)
            run.record(fetched)
        if run.pacer is not None:
            run.pacer.succeeded(run.host)
        return fetched

    async def _release_reuse(self, job_id: str) -> None:
        """After the attempt's terminal write: jobs waiting for its download look again."""
        try:
            await self.reuse.release(job_id)
        except StoreError as exc:  # its row is taken over anyway once the job no longer runs
            _log.warning("job %s: could not end its reuse lead: %s", job_id, exc)

    async def _take(self, run: Attempt, ctx: StageContext, source: Job) -> StoredObject:
        """The reuse stage's copy of ``source``'s objects, in place of the mux and the upload."""
        await run.enter(Step.UPLOADING)
        with run.story.stage_run("upload"):
            stored = await reuse.take(ctx, source, title=run.job.title)
            run.record(stored)
        return stored.media

    async def _admit(self, job: Job, quota: Quota | None, resolved: Resolved) -> None:
        """Refuse, before any download, what the tenant's quota does not allow."""
        if quota is None:
            return
        expected = resolved.expected_bytes
        if problem := quota_problem(
            quota, duration=resolved.duration, short_side=resolved.short_side, expected=expected
        ):
            raise ResolveError(problem, kind="quota_exceeded")
        if quota.storage_bytes is not None:
            totals = await self.store.usage(job.owner)
            # our own reservation is already in reserved_bytes
            if totals.stored_bytes + totals.reserved_bytes > quota.storage_bytes:
                raise ResolveError("Storage quota exceeded", kind="quota_exceeded")

    def _context(self, run: Attempt, quota: Quota | None, sources: JobSources) -> StageContext:
        job, cfg = run.job, self.config
        # the request's URL: for a feed item it keeps the extractor's hints the job's shown URL drops
        return StageContext(
            job_id=job.id, url=job.request.url, request=job.request,
            options=MediaOptions.from_request(job.request),
            folder=run.folder, ffmpeg=cfg.ffmpeg, socket_timeout=cfg.socket_timeout, executor=self.executor,
            network=cfg.network, proxy=cfg.guard.job_proxy(job.id) if cfg.guard else cfg.proxy,
            cancel=run.cancel, cancel_async=run.cancel_async, progress=run, record=run.record,
            retry=run.retrying, pools=self.pools, storage=run.storage, quota=quota, stall=cfg.stall,
            guard=cfg.guard, bounds=cfg.bounds, sources=sources, reuse=self.reuse, owner=job.owner,
        )  # fmt: skip

    async def _complete(self, run: Attempt, stored: StoredObject) -> None:
        await self._clear_dir(run)
        job = run.job
        before = job.status, job.step, job.checkpoint
        job.checkpoint = None
        job.status = advance(job.status, Status.COMPLETED)
        job.step = Step.FINISHED
        job.s3_url, job.storage_key, job.file_size = stored.url, stored.key, stored.size
        job.progress = 100.0
        _finish_times(job)
        try:
            await run.save()
        except JobCancelled:  # cancelled between the last check and this write, which did not happen
            job.status, job.step, job.checkpoint = before
            await self._cancelled(run)
            return
        await self._clear_leftovers(job, before[2])
        run.emit(Step.FINISHED, 100.0)

    async def _clear_dir(self, run: Attempt) -> None:
        """Temporary files go before the terminal write, so whoever sees the end sees them gone."""
        if not run.folder_in_use:
            return
        run.folder_in_use = False
        await asyncio.get_running_loop().run_in_executor(self.executor, _remove_tree, run.folder)

    async def _clear_leftovers(self, job: Job, checkpoint: dict[str, Any] | None) -> None:
        """After the terminal write: the folders earlier attempts of the job left on this host (a dead
        engine's slot of the data folder, where a checkpoint points). Not before: until the store has the
        job ended, a newer attempt elsewhere may be using them."""
        if checkpoint is None and job.attempts <= 1:
            return  # a first attempt: no other left anything
        data_dir = self.config.data_dir or self.config.work_dir
        await asyncio.get_running_loop().run_in_executor(
            self.executor, remove_job_folders, data_dir, job.id, checkpoint
        )

    async def _cancelled(self, run: Attempt) -> None:
        """Cancel is terminal: temporary files and whatever reached storage are removed."""
        await self._clear_dir(run)
        job = run.job
        checkpoint = job.checkpoint
        if run.uploaded is not None:
            target, key = run.uploaded
            for stored_key in (key, *job.side_keys):
                with contextlib.suppress(Exception):
                    await asyncio.get_running_loop().run_in_executor(self.executor, target.delete, stored_key)
        job.side_keys = []
        job.subtitle_url = job.thumbnail_url = None
        job.checkpoint = None
        job.status = advance(job.status, Status.CANCELLED)
        job.error = "Cancelled by request"
        job.s3_url = job.storage_key = None
        job.file_size = None
        _finish_times(job)
        await run.save()
        await self._clear_leftovers(job, checkpoint)
        run.emit(job.step, 0.0, message=job.error)

    async def _fail(self, run: Attempt, exc: StageError) -> None:
        await self._clear_dir(run)
        outcome = outcome_for(exc.kind)
        run.story.failed(exc)
        job = run.job
        checkpoint, job.checkpoint = job.checkpoint, None
        job.status = advance(job.status, outcome.status)
        job.error_type = outcome.error_type
        # the boundary where stage errors become the job's message: no local path gets past it
        data_dir = self.config.data_dir or self.config.work_dir
        message = exc.message or outcome.message
        if secrets := self._secrets.get(job.id):
            message = redact(message, secrets)
        job.error = hide_local_paths(message, run.folder, data_dir)
        _finish_times(job)
        await run.save()
        await self._clear_leftovers(job, checkpoint)
        run.emit(job.step, 0.0, message=job.error)

    async def temp_bytes(self, owner: str) -> int:
        """Bytes in the temporary folders of ``owner``'s jobs running here (``usage().temp_bytes``)."""
        return await self.room.bytes_in(run.folder for run in self.active.values() if run.job.owner == owner)

    async def sweep(self) -> tuple[int, int]:
        """Remove job folders in the work dir that no attempt can use any more. -> (removed, kept)"""
        return await sweep(self.config.work_dir, self.active, self.store, self.executor)

    def host_wait(self, job_id: str, domain: str, until: float) -> None:
        """The per-host pacer holds ``job_id``'s requests for ``domain``'s back-off: its events say so.
        Any thread."""
        run = self.active.get(job_id)
        if run is not None:
            run.loop.call_soon_threadsafe(run.waiting_for_host, domain, until)

    def cancel(self, job_id: str) -> bool:
        """Ask a running job to stop (called on the event loop); False if it does not run here."""
        run = self.active.get(job_id)
        if run is None:
            return False
        self._stop(job_id, run)
        return True

    def _stop(self, job_id: str, run: Attempt) -> None:
        run.cancel.set()  # stage threads look at it every tick (fast path) or progress hook (yt-dlp)
        run.cancel_async.set()
        if self.config.guard is not None:  # a yt-dlp read blocked on a silent source returns now
            self.config.guard.cut(job_id)


def _finish_times(job: Job) -> None:
    job.finished_at = now_ms()
    if job.started_at is not None:
        job.total_duration_ms = job.finished_at - job.created_at


def _remove_tree(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
