"""Reuse stage, between the resolve and the download: take a finished job's stored file instead of
downloading again (see :mod:`tornado_engine.reuse` for what makes two jobs' files the same).

:func:`plan` looks, for a job that asks for reuse, for a Completed job of the same tenant with the same
source and output options, ended within the window, whose file (and side files) still exist in this
job's storage at the recorded size; else, when another job of this process is downloading the same file,
the job waits for it (:func:`follow`, holding no io slot) and looks again; else it leads: it downloads.
:func:`take` copies the found objects to this job's keys on the service itself (no copy when the keys
are the same) and records ``Reused``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass
from typing import Any

from ..coalesce import ReuseDesk, SameFile
from ..errors import StageError
from ..models import Job, now_ms
from ..reuse import output_key, wants_reuse
from ..states import Step
from ..storage import StoredObject
from .context import Resolved, Reused, StageContext, Stored, Uploaded
from .upload import media_key

__all__ = ["Plan", "follow", "plan", "side_copies", "take"]

_log = logging.getLogger("tornado_engine.pipeline.reuse")

_CANDIDATES = 5  # finished jobs looked at, newest first: an older one may still have its file
_IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif"})


@dataclass(frozen=True)
class Plan:
    """``found``: a finished job whose file to take; ``wait``: a download of the same file in flight
    here; neither: download (and lead any identical job that comes meanwhile)."""

    found: Job | None = None
    wait: asyncio.Future[None] | None = None


async def plan(ctx: StageContext, resolved: Resolved) -> Plan:
    desk = ctx.reuse
    if desk is None or resolved.live or not wants_reuse(ctx.request, desk.policy):
        return Plan()
    same = (ctx.owner, resolved.source_key(ctx.url), output_key(ctx.request))
    found = await _find(ctx, desk, same)
    if found is None:
        wait = await desk.lead_or_wait(same, ctx.job_id)
        # leading now: a job that ended between the look and the lead may have stored the file
        found = await _find(ctx, desk, same) if wait is None else None
        if found is None:
            return Plan(wait=wait)
    return Plan(found=found)


async def _find(ctx: StageContext, desk: ReuseDesk, same: SameFile) -> Job | None:
    since = now_ms() - int(desk.policy.window_seconds * 1000)
    for job in await desk.lookup(same, since, _CANDIDATES):
        if job.id != ctx.job_id and await _still_stored(ctx, job):
            return job
    return None


async def follow(ctx: StageContext, resolved: Resolved, wait: asyncio.Future[None]) -> Job | None:
    """Wait for the job downloading the same file, then look again: its file, or None to download (this
    job now leads). Raises JobCancelled when cancelled while waiting."""
    next_wait: asyncio.Future[None] | None = wait
    while next_wait is not None:
        ctx.progress.emit(Step.DOWNLOADING, 0.0, message="waiting for a job downloading the same file")
        cancelled = asyncio.ensure_future(ctx.cancel_async.wait())
        try:
            either: list[asyncio.Future[Any]] = [next_wait, cancelled]
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancelled.cancel()
            if isinstance(next_wait, asyncio.Task):  # a look at another process's job: ours alone
                next_wait.cancel()
        ctx.check_cancel()
        again = await plan(ctx, resolved)
        if again.found is not None:
            return again.found
        next_wait = again.wait
    return None


async def _still_stored(ctx: StageContext, job: Job) -> bool:
    """The job's file is in this job's storage, at its recorded size, and so are its side files."""
    if not job.storage_key or job.storage_url != ctx.storage.url:
        return False
    size = ctx.storage.size
    loop = asyncio.get_running_loop()
    try:
        if await loop.run_in_executor(ctx.executor, size, job.storage_key) != job.file_size:
            return False
        for key in job.side_keys:
            if await loop.run_in_executor(ctx.executor, size, key) is None:
                return False
    except StageError as exc:  # the storage cannot tell now: download, as without reuse
        _log.warning("job %s: could not look at job %s's file: %s", ctx.job_id, job.id, exc.message)
        return False
    return True


def side_copies(source_media: str, media: str, sides: list[str]) -> list[tuple[str, str, str]]:
    """(kind, source key, new key) for the side files stored beside ``source_media`` (a full key), moved
    beside ``media`` (a key below the base folder), pure: ``v/clip.en.vtt`` beside ``v/clip.mp4`` becomes
    ``new.en.vtt`` beside ``new.mp4``."""
    old_stem, new_stem = source_media.rsplit(".", 1)[0], media.rsplit(".", 1)[0]
    out = []
    for key in sides:
        rest = key.removeprefix(old_stem)
        if rest == key:  # not beside the media: not one of its side files
            continue
        out.append(("thumbnail" if rest.lower() in _IMAGE_EXTS else "subtitle", key, new_stem + rest))
    return out


async def take(ctx: StageContext, source: Job, *, title: str | None) -> Stored:
    """Copy ``source``'s objects to this job's keys. Raises StageError (a storage failure left after the
    retries) or JobCancelled."""
    assert source.storage_key is not None  # plan() found it stored
    started = time.monotonic()
    key = media_key(ctx, title)
    async with ctx.acquire("upload"):
        media = await ctx.retry("upload", functools.partial(_copy, ctx, source.storage_key, key))
        if media.key != source.storage_key:  # a copy of its own: a cancel removes it
            ctx.record(Uploaded("media", media, ctx.storage.url))
        for kind, old, new in side_copies(source.storage_key, key, source.side_keys):
            stored = await ctx.retry("upload", functools.partial(_copy, ctx, old, new))
            ctx.record(Uploaded("thumbnail" if kind == "thumbnail" else "subtitle", stored, ctx.storage.url))
    ctx.record(Reused(source, ctx.storage.url))
    ctx.check_cancel()
    return Stored(media, time.monotonic() - started)


async def _copy(ctx: StageContext, source: str, key: str) -> StoredObject:
    copy = functools.partial(ctx.storage.copy, source, key)
    try:
        return await asyncio.get_running_loop().run_in_executor(ctx.executor, copy)
    except OSError as exc:
        raise StageError(f"storage copy failed: {exc}", kind="storage_transient") from exc
