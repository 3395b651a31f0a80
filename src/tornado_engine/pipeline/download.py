"""Download stage: the picked streams into the job folder, by the fast path when it can, else by yt-dlp.

The fast path takes one plain HTTP(S) file or plain DASH (see :mod:`.fastpath`); anything else, or a
fast path that falls back, goes to yt-dlp (:mod:`.downloader`). Both run in the stage executor; progress
never goes backwards, also across a fallback. A file that is not media is refused, whoever fetched it.
A full disk, whoever was writing, is a ``DownloadError`` of kind ``disk_full``.

A stalled source (slower than ``ctx.stall``) ends the download with kind ``stalled``: the fast path meters
its own connections; yt-dlp's go through the network guard, which cuts a stalled transfer and says so
(``guard.take_stall``), so the failure yt-dlp reports (a short file, a reset) is re-worded here.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import TypeVar

from ..diskspace import is_disk_full
from ..errors import DownloadError, StageError
from ..partialfile import disown
from ..progress import estimated_total
from ..retry import outcome_for
from ..safety import is_media_extension
from ..states import Step
from . import downloader, fastpath
from .context import Fetched, Resolved, StageContext, Strategy

__all__ = ["download"]

_T = TypeVar("_T")


async def download(ctx: StageContext, resolved: Resolved) -> Fetched:
    try:
        return await _download(ctx, resolved)
    except OSError as exc:  # our own writes (the fast path's, a file yt-dlp closes) on a full disk
        if not is_disk_full(exc):
            raise
        await _disown(ctx)
        raise DownloadError(outcome_for("disk_full").message, kind="disk_full") from exc
    except StageError as exc:
        if exc.kind == "disk_full":
            await _disown(ctx)
        raise


async def _disown(ctx: StageContext) -> None:
    """A full disk: no partial download is kept to resume; the runner clears the folder before a retry
    or the end, so the space is free again."""
    await asyncio.get_running_loop().run_in_executor(ctx.executor, disown, ctx.folder)


async def _download(ctx: StageContext, resolved: Resolved) -> Fetched:
    info = resolved.ytdlp_info()
    highest = 0.0

    def on_progress(pct: float, done: int, speed: float | None, eta: float | None) -> None:
        nonlocal highest
        highest = pct = max(highest, pct)
        ctx.progress.emit_threadsafe(
            Step.DOWNLOADING, pct, bytes_done=done, bytes_total=estimated_total(done, pct), speed_bps=speed,
            eta_seconds=eta,
        )  # fmt: skip

    strategy, result = "fastpath", None
    # download_sync judges eligibility itself, in the thread: its per-fragment work (a URL join per
    # segment) must never run on the event loop
    # an impersonated download is curl_cffi's (through yt-dlp): the fast path's requests would not be
    if not ctx.options.live_recording and not ctx.sources.impersonate:
        fast = functools.partial(
            fastpath.download_sync, info, ctx.folder, on_progress=on_progress, cancel=ctx.cancel,
            socket_timeout=ctx.socket_timeout, options=ctx.options, ffmpeg_dir=ctx.ffmpeg_dir,
            stall=ctx.stall,
            # with an upstream proxy, through the guard (which chains it); else straight to checked addresses
            policy=None if ctx.sources.proxies else ctx.network, proxy=ctx.proxy, sources=ctx.sources,
        )  # fmt: skip
        ctx.record(Strategy(strategy))  # a failed fast download says so too; a fallback records "ytdlp"
        result = await _guarded(ctx, fast)
    if result is None:  # not for the fast path, or it fell back: nothing of it is left in the folder
        strategy = "ytdlp"
        ctx.record(Strategy(strategy))  # a failed yt-dlp download still says which path failed
        slow = functools.partial(
            downloader.download_sync, info, ctx.folder, on_progress=on_progress, cancel=ctx.cancel,
            socket_timeout=ctx.socket_timeout, proxy=ctx.proxy, options=ctx.options,
            ffmpeg_dir=ctx.ffmpeg_dir, bounds=ctx.bounds, sources=ctx.sources,
        )  # fmt: skip
        result = await _guarded(ctx, slow)
    if unsafe := [p.name for p in result.files if not is_media_extension(p.name)]:
        raise DownloadError(f"The source delivered a file type that is not media ({unsafe[0]})",
                            kind="invalid_media")  # fmt: skip
    ctx.progress.emit(Step.DOWNLOADING, 100.0, bytes_done=result.bytes, bytes_total=result.bytes)
    return Fetched(
        files=tuple(result.files),
        format_ids=tuple(result.format_ids),
        bytes=result.bytes,
        seconds=result.seconds,
        side=result.side,
        duration=resolved.duration,
        strategy=strategy,
    )


async def _guarded(ctx: StageContext, call: Callable[[], _T]) -> _T:
    """``call`` in the stage executor; failing after the guard cut this job's stalled transfer is a stall."""
    with ctx.charging_stalls():
        return await asyncio.get_running_loop().run_in_executor(ctx.executor, call)
