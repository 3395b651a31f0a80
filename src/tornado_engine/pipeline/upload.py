"""Upload stage: the finished file into the storage target under its deterministic key, side files beside it.

The key is ``[folder/]name.ext``, the name from the request or else from the title in the job's record,
so an upload run again after a crash writes the same key. Subtitles and the thumbnail go under the media
key's stem (``clip.en.vtt``, ``clip.jpg``). Every object written is recorded at once, so a cancel can
remove it; each write is retried on its own (the runner's policy, counted in ``upload_retries``).
"""

from __future__ import annotations

import asyncio
import functools
import time
from pathlib import Path

from ..errors import StageError
from ..models import name_from_title
from ..states import Step
from ..storage import Progress as StorageProgress
from ..storage import StoredObject, object_key
from .context import Muxed, StageContext, Stored, Uploaded
from .sidecar import side_keys

__all__ = ["media_key", "upload"]


def media_key(ctx: StageContext, title: str | None) -> str:
    """Where the media goes (pure): the same key on every attempt of the job."""
    name = ctx.request.filename or name_from_title(title) or ctx.job_id
    return object_key(ctx.request.folder, name, ctx.options.extension)


async def _put(
    ctx: StageContext, local: Path, key: str, on_progress: StorageProgress | None = None
) -> StoredObject:
    # move: the file is the job's own temporary, so a local target may take it by rename
    put = functools.partial(ctx.storage.put, local, key, move=True, on_progress=on_progress)
    async with ctx.acquire("upload"):
        try:
            return await asyncio.get_running_loop().run_in_executor(ctx.executor, put)
        except OSError as exc:
            raise StageError(f"storage write failed: {exc}", kind="storage_transient") from exc


async def upload(ctx: StageContext, muxed: Muxed, *, title: str | None) -> Stored:
    """Raises StageError (a storage failure left after the retries) or JobCancelled."""
    started = time.monotonic()

    def on_progress(done: int, total: int) -> None:  # from the upload's threads
        pct = 100.0 * done / total if total else 100.0
        ctx.progress.emit_threadsafe(Step.UPLOADING, pct, bytes_done=done, bytes_total=total)

    key = media_key(ctx, title)
    media = await ctx.retry("upload", functools.partial(_put, ctx, muxed.output, key, on_progress))
    ctx.record(Uploaded("media", media, ctx.storage.url))
    for kind, path, side_key in side_keys(media.key, muxed.side):
        stored = await ctx.retry("upload", functools.partial(_put, ctx, path, side_key))
        ctx.record(Uploaded("thumbnail" if kind == "thumbnail" else "subtitle", stored, ctx.storage.url))
    ctx.check_cancel()  # cancelled while uploading: the objects just written are removed
    return Stored(media, time.monotonic() - started)
