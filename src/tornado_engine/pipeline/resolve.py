"""Resolve stage: what is behind the job's URL (yt-dlp, through the network guard), as :class:`Resolved`."""

from __future__ import annotations

from typing import Any

from . import resolver
from .context import Resolved, StageContext, Waited

__all__ = ["resolve"]


async def resolve(ctx: StageContext) -> Resolved:
    """Raises ResolveError (a scheduled stream that does not start, a playlist, a refused option...)."""
    with ctx.charging_stalls():  # a page or manifest that drips is cut by the guard: kind stalled
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
