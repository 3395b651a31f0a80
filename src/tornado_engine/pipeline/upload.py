"""Upload stage: the finished file into the storage target under its deterministic key, side files beside it.

The key is ``[folder/]name.ext``, the name from the request or else from the title in the job's record,
so an upload run again after a crash writes the same key. Subtitles and the thumbnail go under the media
key's stem (``clip.en.vtt``, ``clip.jpg``). Every object written is recorded at once, so a cancel can
remove it; each write is retried on its own (the runner's policy, counted in ``upload_retries``). A write
whose SDK reports no progress for longer than the stall policy allows for one part ends with kind
``stalled`` and is retried like a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from pathlib import Path
from typing import Any

from ..bounds import WriteWatch
from ..errors import JobCancelled, StageError, UploadError
from ..models import name_from_title
from ..progress import transfer_rate
from ..states import Step
from ..storage import Progress as StorageProgress
from ..storage import StoredObject, object_key
from .context import Muxed, StageContext, Stored, Uploaded
from .sidecar import side_keys

__all__ = ["media_key", "upload"]

_CANCEL_GRACE = 1.0  # seconds a cancelled (or stalled) write gets to stop by itself
_TICK = 0.25  # seconds between looks at a write's progress


def media_key(ctx: StageContext, title: str | None) -> str:
    """Where the media goes (pure): the same key on every attempt of the job."""
    name = ctx.request.filename or name_from_title(title) or ctx.job_id
    return object_key(ctx.request.folder, name, ctx.options.extension)


class _Write:
    """One object's write, in the upload's thread. Progress feeds the stall watch; a write that ends after
    its job was cancelled (it ran on in the SDK past the stage's grace) removes what it wrote, so a cancel
    leaves no object however late the SDK returns."""

    def __init__(self, ctx: StageContext, local: Path, key: str, on_progress: StorageProgress | None) -> None:
        self.ctx, self.local, self.key, self.on_progress = ctx, local, key, on_progress
        self.watch = WriteWatch(ctx.stall, 1, 0, time.monotonic())  # replaced once the sizes are known
        self.stalled = threading.Event()  # the watch gave up on this write: it stops at its next report
        self.whole = False  # the SDK reported every byte: the object exists (or is being assembled)

    def progress(self, done: int, total: int) -> None:  # from the SDK's threads
        self.whole = done >= total
        if self.ctx.cancel.is_set():  # the SDK's write stops at its next part
            raise JobCancelled("cancelled during upload")
        if self.stalled.is_set():
            raise UploadError(self.ctx.stall.storage_message, kind="stalled")
        self.watch.report(done, time.monotonic())
        if self.on_progress is not None:
            self.on_progress(done, total)

    def run(self) -> StoredObject:
        try:
            # move: the file is the job's own temporary, so a local target may take it by rename
            stored = self.ctx.storage.put(self.local, self.key, move=True, on_progress=self.progress)
        except JobCancelled:
            if self.whole:  # stopped at its last report: written all the same
                _forget(self.ctx, self.key)
            raise
        if self.ctx.cancel.is_set():  # written, but the job is cancelled (the stage may be gone)
            _forget(self.ctx, self.key)
            raise JobCancelled("cancelled during upload")
        return stored


async def _put(
    ctx: StageContext, local: Path, key: str, on_progress: StorageProgress | None = None
) -> StoredObject:
    loop = asyncio.get_running_loop()
    write = _Write(ctx, local, key, on_progress)
    async with ctx.acquire("upload"):
        try:
            unit = await loop.run_in_executor(ctx.executor, ctx.storage.write_unit, local)
            write.watch = WriteWatch(ctx.stall, unit, local.stat().st_size, time.monotonic())
            future = loop.run_in_executor(ctx.executor, write.run)
            return await _watched(ctx, future, write.watch, write.stalled)
        except OSError as exc:
            raise StageError(f"storage write failed: {exc}", kind="storage_transient") from exc


async def _watched(
    ctx: StageContext, future: asyncio.Future[StoredObject], watch: WriteWatch, stalled: threading.Event
) -> StoredObject:
    """The write's result. On cancel, or when its SDK reports no progress for longer than the stall
    policy allows (:class:`~tornado_engine.bounds.WriteWatch`), the write gets ``_CANCEL_GRACE`` s to stop
    at a part boundary, and the job goes on either way (a write blocked in the SDK ends by its own
    timeout): to Cancelled, or to a retry of kind ``stalled``."""
    future.add_done_callback(lambda f: f.cancelled() or f.exception())  # an abandoned one logs nothing
    cancelled = asyncio.ensure_future(ctx.cancel_async.wait())
    try:
        either: list[asyncio.Future[Any]] = [future, cancelled]
        while not future.done() and not cancelled.done():
            await asyncio.wait(either, timeout=_TICK, return_when=asyncio.FIRST_COMPLETED)
            if not future.done() and watch.stalled(time.monotonic()):
                stalled.set()
                break
        if not future.done():
            await asyncio.wait([future], timeout=_CANCEL_GRACE)
        if future.done():
            return future.result()
        if stalled.is_set() and not ctx.cancel.is_set():
            raise UploadError(ctx.stall.storage_message, kind="stalled")
        raise JobCancelled("cancelled during upload")
    finally:
        cancelled.cancel()


def _forget(ctx: StageContext, key: str) -> None:
    with contextlib.suppress(Exception):
        ctx.storage.delete(ctx.storage.full_key(key))


async def upload(ctx: StageContext, muxed: Muxed, *, title: str | None) -> Stored:
    """Raises StageError (a storage failure left after the retries) or JobCancelled."""
    started = time.monotonic()

    def on_progress(done: int, total: int) -> None:  # from the upload's threads
        pct = 100.0 * done / total if total else 100.0
        speed, eta = transfer_rate(done, total, time.monotonic() - started)
        ctx.progress.emit_threadsafe(
            Step.UPLOADING, pct, bytes_done=done, bytes_total=total, speed_bps=speed, eta_seconds=eta
        )

    key = media_key(ctx, title)
    media = await ctx.retry("upload", functools.partial(_put, ctx, muxed.output, key, on_progress))
    ctx.record(Uploaded("media", media, ctx.storage.url))
    for kind, path, side_key in side_keys(media.key, muxed.side):
        stored = await ctx.retry("upload", functools.partial(_put, ctx, path, side_key))
        ctx.record(Uploaded("thumbnail" if kind == "thumbnail" else "subtitle", stored, ctx.storage.url))
    ctx.check_cancel()  # cancelled while uploading: the objects just written are removed
    return Stored(media, time.monotonic() - started)
