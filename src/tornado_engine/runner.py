"""Runs one claimed job through resolve -> download -> mux -> upload, and records how it ended.

The stages are the modules in :mod:`tornado_engine.pipeline`; this module adds what is common to them:
pools, retries with backoff, progress events, fenced saves, timing, and removing the job's temporary
folder after every outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from .checkpoint import DOWNLOADED, MUXED, Checkpoint, FileMark, this_host
from .errors import DownloadError, ErrorKind, JobCancelled, MuxError, ResolveError, StageError, StoreError
from .ffmpeg import FFmpegPaths, plan_mux, verify_output
from .models import Job, name_from_title, now_ms
from .options import MediaOptions, audio_quality, video_quality_label
from .outbox import job_messages, progress_messages
from .pipeline import downloader, fastpath, muxer, resolver, uploader
from .pipeline.downloader import requested_formats
from .pipeline.sidecar import SideFiles, side_keys
from .progress import Event, job_percent
from .progress import expected_bytes as _expected_size
from .quota import quota_problem
from .results import Quota
from .retry import RetryPolicy, outcome_for
from .safety import NetworkPolicy, is_media_extension
from .scheduler import Pools
from .states import TERMINAL, Status, Step
from .storage import StorageTarget, StoredObject, object_key
from .store.base import Claim, JobStore, LeaseLost

__all__ = ["JobRunner", "RunnerConfig", "StageRunner"]

log = logging.getLogger("tornado_engine.runner")
T = TypeVar("T")


@dataclass
class RunnerConfig:
    work_dir: Path
    ffmpeg: FFmpegPaths
    storage: StorageTarget
    retry: RetryPolicy
    socket_timeout: float = 20.0
    proxy: str | None = None  # the network guard (SSRF filter) every yt-dlp request goes through
    network: NetworkPolicy | None = None  # the fast download path connects only to what this allows


class _Run:
    """State of one attempt at one job (what a :data:`StageRunner` gets)."""

    def __init__(self, claim: Claim, runner: JobRunner) -> None:
        self.job = claim.job
        self.token = claim.token
        self.runner = runner
        self.cancel = threading.Event()  # read by yt-dlp's progress hook, in its thread
        self.cancel_async = asyncio.Event()  # awaited by the muxer and by retry back-offs
        self.uploaded: tuple[StorageTarget, str] | None = None
        self.quota: Quota | None = None
        self.storage = runner.config.storage  # replaced by the tenant's own, if any, when the run starts
        self.dir = runner.config.work_dir / self.job.id
        self.dir_in_use = False  # made lazily: stages that need no files (the no-op kit) never pay for it
        self.loop = asyncio.get_running_loop()
        self.last_emit = 0.0
        self.resume: Checkpoint | None = None  # where this attempt picks up a previous one's work
        self.task = asyncio.current_task()
        self.finished = asyncio.Event()

    async def save(self) -> None:
        """Fenced write; a terminal one carries the job's webhook events in the same transaction."""
        job, outbox = self.job, []
        if job.is_terminal:
            outbox = job_messages(job)
            if job.status is Status.COMPLETED:
                outbox += progress_messages(job, Step.FINISHED)
            if outbox:
                job.webhook_status = "pending"
        await self.runner.store.save(job, self.token, outbox)

    def emit(self, step: Step, stage_percent: float, **extra: Any) -> None:
        job = self.job
        job.progress = job_percent(step, stage_percent)
        self.runner.publish(Event(job.id, job.status, step, job.progress, round(stage_percent, 2), **extra))

    def emit_threadsafe(self, step: Step, stage_percent: float, **extra: Any) -> None:
        now = time.monotonic()
        if stage_percent < 100 and now - self.last_emit < 0.1:
            return  # hooks fire per block; ten events a second are plenty
        self.last_emit = now
        self.loop.call_soon_threadsafe(lambda: self.emit(step, stage_percent, **extra))

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise JobCancelled(f"job {self.job.id} cancelled")

    async def enter(self, step: Step) -> None:
        self.check_cancel()
        self.job.step = step
        await self.save()
        if events := progress_messages(self.job, step):
            await self.runner.store.enqueue(events)
        self.emit(step, 0.0)


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
    ) -> None:
        self.stages = stages
        self.quota_for = quota_for
        self.storage_for = storage_for
        self.store = store
        self.pools = pools
        self.config = config
        self.publish = publish
        self.executor = executor
        self.active: dict[str, _Run] = {}

    async def __call__(self, claim: Claim) -> None:
        previous = self.active.get(claim.job.id)
        if previous is not None and previous.task is not None:
            # claimed again here while an attempt whose lease ran out still winds down: it must be gone
            # before this one uses the same job folder
            previous.task.cancel()
            await previous.finished.wait()
        run = _Run(claim, self)
        self.active[run.job.id] = run
        abandoned = False  # the job goes on in a later attempt, which may resume from the folder
        try:
            await self._run(run)
        except LeaseLost:
            abandoned = True
            log.warning("job %s: lease lost; another attempt owns it now", run.job.id)
        except StoreError:
            abandoned = True
            raise
        except asyncio.CancelledError:
            abandoned = True
            run.cancel.set()  # a yt-dlp thread still downloading stops at its next progress hook
            # shutdown or a lost lease: give the job back unless someone else already has it
            with contextlib.suppress(Exception):
                await self.store.release(run.job, run.token)
            raise
        finally:
            if self.active.get(run.job.id) is run:
                del self.active[run.job.id]
            if not (abandoned and run.job.checkpoint):
                await self._clear_dir(run)
            run.finished.set()

    async def _run(self, run: _Run) -> None:
        job = run.job
        job.attempts += 1
        job.started_at = now_ms()
        if job.queue_wait_ms is None:
            job.queue_wait_ms = max(0, job.started_at - job.created_at)
        job.requested_quality = job.requested_quality or "best"
        if self.storage_for is not None:  # read now: a retried job goes where its tenant's files go today
            run.storage = await self.storage_for(job)
        if self.stages is None:
            run.resume = await self._resumable(run)
        if run.resume is None:
            await run.enter(Step.DOWNLOADING)
        else:
            log.info("job %s: resuming after the %s stage of an earlier attempt", job.id, run.resume.stage)
        try:
            stored = await (self.stages or self._pipeline)(run)
        except JobCancelled:
            await self._cancelled(run)
            return
        except StageError as exc:
            await self._fail(run, exc.kind, exc.message)
            return
        except StoreError:
            # the store, not the job, failed (an outage, a lost lease): this attempt is abandoned and the
            # job runs again after its lease; recording it Failed would blame the media for our database
            raise
        except Exception as exc:  # a bug of ours must still end the job, not leave it Processing
            log.exception("job %s: unexpected error", job.id)
            await self._fail(run, "unknown", f"Internal error: {type(exc).__name__}")
            return
        await self._clear_dir(run)
        job.checkpoint = None
        job.status = Status.COMPLETED
        job.step = Step.FINISHED
        job.s3_url = stored.url
        job.storage_key = stored.key
        job.file_size = stored.size
        job.progress = 100.0
        self._finish_times(job)
        try:
            await run.save()
        except JobCancelled:  # cancelled between the last check and this write
            job.status, job.step = Status.PROCESSING, Step.UPLOADING
            await self._cancelled(run)
            return
        run.emit(Step.FINISHED, 100.0)

    async def _clear_dir(self, run: _Run) -> None:
        """Temporary files go before the terminal write, so whoever sees the end sees them gone."""
        if not run.dir_in_use:
            return
        run.dir_in_use = False
        await asyncio.get_running_loop().run_in_executor(
            self.executor, lambda: shutil.rmtree(run.dir, ignore_errors=True)
        )

    def _finish_times(self, job: Job) -> None:
        job.finished_at = now_ms()
        if job.started_at is not None:
            job.total_duration_ms = job.finished_at - job.created_at

    async def _cancelled(self, run: _Run) -> None:
        """Cancel is terminal: temporary files and whatever reached storage are removed."""
        await self._clear_dir(run)
        job = run.job
        if run.uploaded is not None:
            target, key = run.uploaded
            for stored_key in (key, *job.side_keys):
                with contextlib.suppress(Exception):
                    await asyncio.get_running_loop().run_in_executor(self.executor, target.delete, stored_key)
        job.side_keys = []
        job.subtitle_url = job.thumbnail_url = None
        job.checkpoint = None
        job.status = Status.CANCELLED
        job.error = "Cancelled by request"
        job.s3_url = job.storage_key = None
        job.file_size = None
        self._finish_times(job)
        await run.save()
        run.emit(job.step, 0.0, message=job.error)

    async def _fail(self, run: _Run, kind: ErrorKind, message: str) -> None:
        await self._clear_dir(run)
        outcome = outcome_for(kind)
        job = run.job
        job.checkpoint = None
        job.status = outcome.status
        job.error_type = outcome.error_type
        job.error = message or outcome.message
        self._finish_times(job)
        await run.save()
        run.emit(job.step, 0.0, message=job.error)

    async def _with_retries(
        self, run: _Run, counter: str, attempt: Callable[[], Awaitable[T]], cleanup: Callable[[], None]
    ) -> T:
        policy = self.config.retry
        while True:
            try:
                return await attempt()
            except StageError as exc:
                retries = getattr(run.job, counter)
                if not policy.should_retry(exc.kind, retries):
                    raise
                setattr(run.job, counter, retries + 1)
                cleanup()  # partial files would be resumed with a Range request; start clean
                delay = policy.delay(retries)
                log.info(
                    "job %s: %s (%s); retry %d in %.1fs",
                    run.job.id,
                    exc.message,
                    exc.kind,
                    retries + 1,
                    delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(run.cancel_async.wait(), delay)
                run.check_cancel()

    async def _pipeline(self, run: _Run) -> Any:
        job, cfg = run.job, self.config

        def clear_dir() -> None:
            shutil.rmtree(run.dir, ignore_errors=True)
            run.dir.mkdir(parents=True, exist_ok=True)

        def io_wait(ms: int) -> None:
            job.io_pool_wait_ms = (job.io_pool_wait_ms or 0) + ms

        ffmpeg_dir = str(Path(cfg.ffmpeg.ffmpeg).parent)
        opts = MediaOptions.from_request(job.request)
        run.dir_in_use = True
        if run.resume is None:  # an earlier attempt's files, unusable, must not be taken as partial ones
            await asyncio.get_running_loop().run_in_executor(self.executor, clear_dir)
        job.requested_quality = opts.requested_quality

        async def resolve_and_download() -> tuple[dict[str, Any], downloader.DownloadResult]:
            async with self.pools.acquire("io", io_wait):
                info = await resolver.resolve(
                    job.url,
                    ffmpeg_dir=ffmpeg_dir,
                    socket_timeout=cfg.socket_timeout,
                    executor=self.executor,
                    options=opts,
                    cancel=run.cancel_async,
                    proxy=cfg.proxy,
                )
                self._apply_info(job, info)
                await self._check_quota(run, info)

                highest = 0.0  # a fast path that falls back mid-way must not send the percent backwards

                def on_progress(pct: float, done: int, speed: float | None, eta: float | None) -> None:
                    nonlocal highest
                    highest = pct = max(highest, pct)
                    run.emit_threadsafe(
                        Step.DOWNLOADING, pct, bytes_done=done, speed_bps=speed, eta_seconds=eta
                    )

                # one plain http(s) file: parallel ranged requests; None means "not for the fast path"
                result = await fastpath.download(
                    info,
                    run.dir,
                    on_progress=on_progress,
                    cancel=run.cancel,
                    socket_timeout=cfg.socket_timeout,
                    executor=self.executor,
                    policy=cfg.network,
                    proxy=cfg.proxy,
                    options=opts,
                    ffmpeg_dir=ffmpeg_dir,
                )
                job.download_strategy = "fastpath"
                if result is None:
                    job.download_strategy = "ytdlp"
                    result = await downloader.download(
                        info,
                        run.dir,
                        ffmpeg_dir=ffmpeg_dir,
                        on_progress=on_progress,
                        cancel=run.cancel,
                        socket_timeout=cfg.socket_timeout,
                        executor=self.executor,
                        options=opts,
                        proxy=cfg.proxy,
                    )
                return info, result

        resume = run.resume
        if resume is None:
            info, fetched = await self._with_retries(run, "download_retries", resolve_and_download, clear_dir)
            if unsafe := [p.name for p in fetched.files if not is_media_extension(p.name)]:
                raise DownloadError(f"The source delivered a file type that is not media ({unsafe[0]})",
                                    kind="invalid_media")  # fmt: skip
            job.download_duration_ms = int(fetched.seconds * 1000)
            if fetched.seconds > 0:
                job.download_speed_mbps = round(fetched.bytes / fetched.seconds / 1e6, 2)
            run.emit(Step.DOWNLOADING, 100.0, bytes_done=fetched.bytes, bytes_total=fetched.bytes)
            downloaded = _downloaded(run.dir, info, fetched)
            job.checkpoint = downloaded.to_data()  # saved by the next step's write
        else:
            downloaded = resume
            info, fetched = {"duration": resume.duration}, _fetched_from(run.dir, resume)
            run.quota = await self.quota_for(job.owner) if self.quota_for else None

        if resume is None or resume.stage == DOWNLOADED:
            await run.enter(Step.MUXING)
            output = await self._mux(run, fetched, info)
            output_mark = FileMark(output.name, output.stat().st_size)
            job.checkpoint = replace(downloaded, stage=MUXED, output=output_mark).to_data()
        else:
            assert resume.output is not None  # Checkpoint.usable() checked it
            output = run.dir / resume.output.name
        # an upload re-run after a crash writes the same key again: the name comes from the saved record
        await run.enter(Step.UPLOADING)
        filename = job.request.filename or _title_filename(job.title, job.id)
        key = object_key(job.request.folder, filename, opts.extension)
        started = time.monotonic()

        def upload_wait(ms: int) -> None:
            job.upload_pool_wait_ms = (job.upload_pool_wait_ms or 0) + ms

        def upload_progress(done: int, total: int) -> None:
            pct = 100.0 * done / total if total else 100.0
            run.emit_threadsafe(Step.UPLOADING, pct, bytes_done=done, bytes_total=total)

        async def put() -> Any:
            async with self.pools.acquire("upload", upload_wait):
                try:
                    return await uploader.upload(
                        run.storage, output, key, executor=self.executor, on_progress=upload_progress
                    )
                except StageError:
                    raise
                except OSError as exc:
                    raise StageError(f"storage write failed: {exc}", kind="storage_transient") from exc

        stored = await self._with_retries(run, "upload_retries", put, lambda: None)
        run.uploaded = (run.storage, stored.key)
        job.storage_url = run.storage.url
        await self._upload_side_files(run, fetched, stored.key)
        run.check_cancel()  # cancelled while uploading: the object just written is removed
        seconds = time.monotonic() - started
        job.upload_duration_ms = int(seconds * 1000)
        if seconds > 0:
            job.upload_speed_mbps = round(stored.size / seconds / 1e6, 2)
        return stored

    async def _mux(self, run: _Run, fetched: downloader.DownloadResult, info: dict[str, Any]) -> Path:
        job, cfg = run.job, self.config
        req = job.request
        opts = MediaOptions.from_request(req)

        def cpu_wait(ms: int) -> None:
            job.cpu_pool_wait_ms = (job.cpu_pool_wait_ms or 0) + ms

        started = time.monotonic()
        inputs = [await muxer.probe(path, cfg.ffmpeg.ffprobe) for path in fetched.files]
        for media in inputs:
            for stream in media.streams:
                if stream.kind == "video" and not stream.attached_pic and job.native_video_codec is None:
                    job.native_video_codec = stream.codec
                    if not opts.audio_only:  # the short side: a 720x1280 portrait video is 720p
                        job.actual_quality = video_quality_label(stream.width, stream.height)
                elif stream.kind == "audio" and job.native_audio_codec is None:
                    job.native_audio_codec = stream.codec
                    if opts.audio_only:
                        job.actual_quality = audio_quality(stream.bit_rate)
        plan = plan_mux(
            inputs,
            container=opts.container,
            video_codec=req.video_codec,
            audio_codec=req.audio_codec,
            audio_bitrate=req.audio_bitrate,
            crf=req.video_quality,
            quality=opts.quality_preset,
            clip=opts.clip,
        )
        duration = (
            plan.duration if plan.clip else max((m.duration or 0.0) for m in inputs) or info.get("duration")
        )
        # a plain file says its duration only once downloaded: check it before muxing or uploading
        late_problem = quota_problem(run.quota, {"duration": duration}, [], 0) if run.quota else None
        if late_problem and not info.get("duration"):
            raise MuxError(late_problem, kind="quota_exceeded")
        if not plan.needs_work:
            # the download already is the requested file: skip ffmpeg, keep the probe's verdict
            verify_output(plan, inputs[0], duration=duration)
            job.mux_duration_ms = int((time.monotonic() - started) * 1000)
            return inputs[0].path
        output = run.dir / f"output.{opts.extension}"
        async with self.pools.acquire("cpu", cpu_wait):
            await muxer.mux(
                plan,
                output,
                paths=cfg.ffmpeg,
                duration=duration,
                on_progress=lambda pct: run.emit(Step.MUXING, pct),
                cancel=run.cancel_async,
            )
        job.mux_duration_ms = int((time.monotonic() - started) * 1000)
        return output

    async def _upload_side_files(self, run: _Run, fetched: downloader.DownloadResult, media_key: str) -> None:
        """Subtitles and thumbnail go beside the media, under its key stem (``clip.en.vtt``, ``clip.jpg``)."""
        job = run.job

        def upload_wait(ms: int) -> None:
            job.upload_pool_wait_ms = (job.upload_pool_wait_ms or 0) + ms

        for kind, path, key in side_keys(media_key, fetched.side):

            async def put(path: Path = path, key: str = key) -> Any:
                async with self.pools.acquire("upload", upload_wait):
                    try:
                        return await uploader.upload(run.storage, path, key, executor=self.executor)
                    except OSError as exc:
                        raise StageError(f"storage write failed: {exc}", kind="storage_transient") from exc

            stored = await self._with_retries(run, "upload_retries", put, lambda: None)
            job.side_keys.append(stored.key)
            if kind == "thumbnail":
                job.thumbnail_url = stored.url
            elif job.subtitle_url is None:  # the first requested language found
                job.subtitle_url = stored.url

    async def _check_quota(self, run: _Run, info: dict[str, Any]) -> None:
        """Refuse, before any download, what the tenant's quota does not allow; reserve the space."""
        job = run.job
        expected = sum(int(_expected_size(f, info.get("duration")) or 0) for f in requested_formats(info))
        job.reserved_bytes = expected
        await run.save()  # usage() counts the reservation from now on
        quota = run.quota = await self.quota_for(job.owner) if self.quota_for else None
        if quota is None:
            return
        if problem := quota_problem(quota, info, requested_formats(info), expected):
            raise ResolveError(problem, kind="quota_exceeded")
        if quota.storage_bytes is not None:
            totals = await self.store.usage(job.owner)
            # our own reservation is already in reserved_bytes
            if totals.stored_bytes + totals.reserved_bytes > quota.storage_bytes:
                raise ResolveError("Storage quota exceeded", kind="quota_exceeded")

    @staticmethod
    def _apply_info(job: Job, info: dict[str, Any]) -> None:
        job.title = _short(info.get("title"), 500)
        job.description = _short(info.get("description"), 5000)
        job.release_date = _short(info.get("release_date") or info.get("upload_date"), 32)
        job.folder = job.request.folder

    async def _resumable(self, run: _Run) -> Checkpoint | None:
        """The previous attempt's checkpoint, if its files are here and whole; else start afresh."""
        checkpoint = Checkpoint.from_data(run.job.checkpoint)

        def size_of(name: str) -> int | None:
            try:
                return (run.dir / name).stat().st_size
            except OSError:
                return None

        if checkpoint is not None and await asyncio.get_running_loop().run_in_executor(
            self.executor, checkpoint.usable, this_host(), str(run.dir), size_of
        ):
            run.dir_in_use = True
            return checkpoint
        if checkpoint is not None:
            log.info(
                "job %s: the earlier attempt's files are not here; starting from the beginning", run.job.id
            )
        run.job.checkpoint = None
        return None

    async def sweep(self) -> tuple[int, int]:
        """Remove job folders in the work dir that no attempt can use any more (the job ended, is gone,
        or has no checkpoint pointing here); keep running jobs' and resumable ones. -> (removed, kept)"""
        loop = asyncio.get_running_loop()
        work_dir = self.config.work_dir
        entries = await loop.run_in_executor(
            self.executor, lambda: sorted(work_dir.iterdir()) if work_dir.is_dir() else []
        )
        removed = kept = 0
        for entry in entries:
            if entry.name in self.active or (
                (job := await self.store.get_job(entry.name)) is not None and _worth_keeping(job, entry)
            ):
                kept += 1
                continue
            if entry.name in self.active:  # an attempt started while we asked the store
                kept += 1
                continue
            # synchronously: no attempt can start for this job while the folder goes
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
        return removed, kept

    def cancel(self, job_id: str) -> bool:
        """Ask a running job to stop (called on the event loop); False if it does not run here."""
        run = self.active.get(job_id)
        if run is None:
            return False
        run.cancel.set()
        run.cancel_async.set()
        return True


# Runs an attempt's stages in place of resolve -> download -> mux -> upload and returns what it stored;
# the runner still claims, saves, times and finishes the job. ``tornado_engine.testing.noop`` has one
# that does no work, for measuring the engine itself (``Engine(stages=...)``).
StageRunner = Callable[[_Run], Awaitable[StoredObject]]


def _downloaded(folder: Path, info: dict[str, Any], fetched: downloader.DownloadResult) -> Checkpoint:
    def mark(path: Path) -> FileMark:
        return FileMark(path.name, path.stat().st_size)

    duration = info.get("duration")
    return Checkpoint(
        stage=DOWNLOADED,
        host=this_host(),
        folder=str(folder),
        media=tuple(mark(p) for p in fetched.files),
        format_ids=tuple(fetched.format_ids),
        download_bytes=fetched.bytes,
        duration=float(duration) if isinstance(duration, int | float) else None,
        subtitles=tuple((lang, mark(p)) for lang, p in fetched.side.subtitles),
        thumbnail=mark(fetched.side.thumbnail) if fetched.side.thumbnail else None,
    )


def _fetched_from(folder: Path, checkpoint: Checkpoint) -> downloader.DownloadResult:
    side = SideFiles(
        subtitles=tuple((lang, folder / m.name) for lang, m in checkpoint.subtitles),
        thumbnail=folder / checkpoint.thumbnail.name if checkpoint.thumbnail else None,
    )
    return downloader.DownloadResult(
        files=[folder / m.name for m in checkpoint.media],
        format_ids=list(checkpoint.format_ids),
        bytes=checkpoint.download_bytes,
        seconds=0.0,
        side=side,
    )


def _worth_keeping(job: Job, folder: Path) -> bool:
    """A job folder stays while its job may still run, here or (Processing) anywhere."""
    if job.status in TERMINAL:
        return False
    if job.status is Status.PROCESSING:
        return True  # perhaps by another engine on this data dir; its lease decides, not us
    checkpoint = Checkpoint.from_data(job.checkpoint)
    return checkpoint is not None and checkpoint.folder == str(folder) and checkpoint.host == this_host()


def _short(value: Any, limit: int) -> str | None:
    return str(value)[:limit] if value else None


def _title_filename(title: str | None, fallback: str) -> str:
    return name_from_title(title) or fallback
