"""Download stage: the picked streams into the job folder, by the fast path when it can, else by yt-dlp.

The fast path takes one plain HTTP(S) file or plain DASH (see :mod:`.fastpath`); anything else, or a
fast path that falls back, goes to yt-dlp (:mod:`.downloader`). Both run in the stage executor; progress
never goes backwards, also across a fallback. A file that is not media is refused, whoever fetched it.
A full disk, whoever was writing, is a ``DownloadError`` of kind ``disk_full``.
"""

from __future__ import annotations

import asyncio
import functools

from ..diskspace import is_disk_full
from ..errors import DownloadError
from ..retry import outcome_for
from ..safety import is_media_extension
from ..states import Step
from . import downloader, fastpath
from .context import Fetched, Resolved, StageContext, Strategy

__all__ = ["download"]


async def download(ctx: StageContext, resolved: Resolved) -> Fetched:
    try:
        return await _download(ctx, resolved)
    except OSError as exc:  # our own writes (the fast path's, a file yt-dlp closes) on a full disk
        if not is_disk_full(exc):
            raise
        # the fast path removed its files; the runner clears the folder before a retry or the end
        raise DownloadError(outcome_for("disk_full").message, kind="disk_full") from exc


async def _download(ctx: StageContext, resolved: Resolved) -> Fetched:
    info = resolved.ytdlp_info()
    highest = 0.0

    def on_progress(pct: float, done: int, speed: float | None, eta: float | None) -> None:
        nonlocal highest
        highest = pct = max(highest, pct)
        ctx.progress.emit_threadsafe(Step.DOWNLOADING, pct, bytes_done=done, speed_bps=speed, eta_seconds=eta)

    loop = asyncio.get_running_loop()
    strategy, result = "fastpath", None
    # download_sync judges eligibility itself, in the thread: its per-fragment work (a URL join per
    # segment) must never run on the event loop
    if not ctx.options.live_recording:
        fast = functools.partial(
            fastpath.download_sync, info, ctx.folder, on_progress=on_progress, cancel=ctx.cancel,
            socket_timeout=ctx.socket_timeout, policy=ctx.network, proxy=ctx.proxy, options=ctx.options,
            ffmpeg_dir=ctx.ffmpeg_dir,
        )  # fmt: skip
        result = await loop.run_in_executor(ctx.executor, fast)
        if result is not None:
            ctx.record(Strategy(strategy))
    if result is None:  # not for the fast path, or it fell back: nothing of it is left in the folder
        strategy = "ytdlp"
        ctx.record(Strategy(strategy))  # a failed yt-dlp download still says which path failed
        slow = functools.partial(
            downloader.download_sync, info, ctx.folder, on_progress=on_progress, cancel=ctx.cancel,
            socket_timeout=ctx.socket_timeout, proxy=ctx.proxy, options=ctx.options,
            ffmpeg_dir=ctx.ffmpeg_dir, bounds=ctx.bounds,
        )  # fmt: skip
        result = await loop.run_in_executor(ctx.executor, slow)
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
