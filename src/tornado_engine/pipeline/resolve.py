"""Resolve stage: what is behind the job's URL (yt-dlp, through the network guard), as :class:`Resolved`.

A plain media file yt-dlp would hand to its generic extractor is resolved in-process from one GET's
response head instead (:mod:`.directfetch`, :mod:`.directinfo`: the same info for ~8 ms less CPU); any
surprise there leaves the URL to yt-dlp, as before.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from ..bounds import info_problem
from ..errors import ResolveError
from ..ytdlp import check_resolved
from . import resolver
from .context import Resolved, StageContext, Waited
from .directfetch import direct_enabled, resolve_direct_sync
from .directinfo import may_resolve_directly

__all__ = ["resolve"]


async def resolve(ctx: StageContext) -> Resolved:
    """Raises ResolveError (a scheduled stream that does not start, a playlist, a refused option...)."""
    with ctx.charging_stalls():  # a page or manifest that drips is cut by the guard: kind stalled
        info = None
        if direct_enabled() and may_resolve_directly(ctx.url, ctx.options, ctx.sources):
            info = await _direct(ctx)
        if info is None:
            info = await _resolve(ctx)
    return Resolved(info)


async def _resolve(ctx: StageContext) -> dict[str, Any]:
    return await resolver.resolve(
        ctx.url,
        ffmpeg_dir=ctx.ffmpeg_dir,
        socket_timeout=ctx.socket_timeout,
        executor=ctx.executor,
        options=ctx.options,
        cancel=ctx.cancel_async,
        proxy=ctx.proxy,
        bounds=ctx.bounds.with_quota(ctx.quota.max_duration_seconds if ctx.quota else None),
        slot=lambda: ctx.pools.acquire("resolve", lambda ms: ctx.record(Waited("io", ms))),
        sources=ctx.sources,
    )


async def _direct(ctx: StageContext) -> dict[str, Any] | None:
    """The in-process resolve, checked as yt-dlp's is; None: yt-dlp's turn."""
    call = functools.partial(
        resolve_direct_sync, ctx.url,
        # with upstream proxies, through the guard (which chains them); else straight to checked addresses
        policy=None if ctx.sources.proxies else ctx.network, proxy=ctx.proxy, cancel=ctx.cancel,
        socket_timeout=ctx.socket_timeout, sources=ctx.sources,
    )  # fmt: skip
    info = await asyncio.get_running_loop().run_in_executor(ctx.executor, call)
    if info is None:
        return None
    bounds = ctx.bounds.with_quota(ctx.quota.max_duration_seconds if ctx.quota else None)
    if problem := info_problem(info, bounds):
        raise ResolveError(problem.message, kind=problem.kind)
    check_resolved(info, ctx.options)
    return info
