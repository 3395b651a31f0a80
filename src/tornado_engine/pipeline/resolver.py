"""Resolver: what is behind a URL (yt-dlp ``extract_info(download=False)``, in a thread).

With ``wait_for_video``, a scheduled stream that has not started is resolved again every few seconds
until it starts or the wait is over; then the media options are checked against what was found (a live
stream needs ``live_recording``; a clip must start before the end).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import tempfile
from collections.abc import Callable
from concurrent.futures import Executor
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from ..bounds import ResolveBounds, info_problem
from ..errors import JobCancelled, ResolveError
from ..options import MediaOptions
from ..sources.settings import JobSources
from ..ytdlp import base_params, check_resolved, format_selection, is_live, map_error, option_params
from ..ytdlp_loader import load_ytdlp

__all__ = ["SELECTED_KEY", "resolve", "resolve_sync", "wait_poll_seconds"]

# yt-dlp records its pick only for merged ("+") selections; we keep the "bv,ba/b" pick ourselves so the
# downloader can weigh each stream's share of the progress from the start.
SELECTED_KEY = "tornado_selected_format_ids"


def _selected_format_ids(ydl: Any, info: dict[str, Any], spec: str) -> list[str]:
    formats = info.get("formats") or []
    if not formats:
        return []
    selector = ydl.build_format_selector(spec)
    chosen = selector(
        {
            "formats": formats,
            "has_merged_format": any("none" not in (f.get("acodec"), f.get("vcodec")) for f in formats),
            "incomplete_formats": all(f.get("vcodec") == "none" for f in formats)
            or all(f.get("acodec") == "none" for f in formats),
        }
    )
    return [str(f.get("format_id")) for f in chosen]


def resolve_sync(
    url: str,
    ffmpeg_dir: str | None,
    socket_timeout: float,
    options: MediaOptions | None = None,
    proxy: str | None = None,
    bounds: ResolveBounds | None = None,
    sources: JobSources | None = None,
) -> dict[str, Any]:
    """Blocking resolve; ``proxy``: the network guard every yt-dlp request goes through, if any.

    ``bounds`` (default: :class:`ResolveBounds`'s) cap what the manifests may cost, checked on their
    bytes before yt-dlp parses them and on the resolved info; a breach raises ResolveError "too_large"."""
    load_ytdlp()  # on first use, not with the package (see ytdlp_loader)
    from yt_dlp.utils import YoutubeDLError

    from ..ytdlp_registry import extract_info, new_ydl
    from .manifest_guard import guard, raise_exceeded

    bounds = bounds or ResolveBounds()
    # Resolving writes nothing, but yt-dlp wants a home; give it an empty throwaway one.
    with tempfile.TemporaryDirectory(prefix="tornado-resolve-") as home:
        params = {
            **base_params(Path(home), ffmpeg_dir, socket_timeout=socket_timeout),
            **option_params(options),
        }
        if proxy:
            params["proxy"] = proxy
        params.update(sources.ytdlp_params() if sources is not None else {})  # cookies, impersonate...
        try:
            with new_ydl(params) as ydl:
                guard(ydl, bounds)
                before = _cookie_state(ydl)
                info = extract_info(ydl, url, download=False)
                if problem := info_problem(info, bounds):
                    raise ResolveError(problem.message, kind=problem.kind)
                # sanitized: JSON-storable, and without resolve-time private keys (recipe pitfall 4)
                clean: dict[str, Any] = ydl.sanitize_info(info, remove_private_keys=True)
                spec = format_selection(options, live=is_live(clean))["format"]
                clean[SELECTED_KEY] = _selected_format_ids(ydl, clean, spec)
                if _cookie_state(ydl) == before:
                    # the formats' cookies are all the job's own jar's, which every later call loads
                    # again: dropped, so no cookie value travels with the info
                    _drop_cookies(clean)
        except YoutubeDLError as exc:
            raise_exceeded(exc)
            raise map_error(exc, resolving=True) from exc
    if clean.get("_type") in ("playlist", "multi_video"):
        raise ResolveError("This URL is a playlist; submit its entries as separate jobs", kind="no_formats")
    return clean


def _cookie_state(ydl: Any) -> set[tuple[str, str, str, str | None]]:
    return {(c.domain, c.path, c.name, c.value) for c in ydl.cookiejar}


def _drop_cookies(info: dict[str, Any]) -> None:
    info.pop("cookies", None)
    for key in ("formats", "requested_formats"):
        for fmt in info.get(key) or []:
            if isinstance(fmt, dict):
                fmt.pop("cookies", None)


def wait_poll_seconds(wait_for_video: int, remaining: float) -> float:
    """How long to sleep before asking again: a tenth of the wait, 1-60 s, never past the deadline."""
    return max(0.0, min(remaining, max(1.0, min(60.0, wait_for_video / 10))))


async def resolve(
    url: str,
    *,
    ffmpeg_dir: str | None,
    socket_timeout: float = 20,
    executor: Executor | None = None,
    options: MediaOptions | None = None,
    cancel: asyncio.Event | None = None,
    proxy: str | None = None,
    bounds: ResolveBounds | None = None,
    slot: Callable[[], AbstractAsyncContextManager[None]] | None = None,
    sources: JobSources | None = None,
) -> dict[str, Any]:
    """``slot``: a resolve slot (CPU-sized), held while yt-dlp works, not while a scheduled stream waits."""
    loop = asyncio.get_running_loop()
    call = functools.partial(resolve_sync, url, ffmpeg_dir, socket_timeout, options, proxy, bounds, sources)
    wait = options.wait_for_video if options is not None else None
    deadline = loop.time() + wait if wait else None
    while True:
        try:
            async with slot() if slot is not None else contextlib.nullcontext():
                info = await loop.run_in_executor(executor, call)
            break
        except ResolveError as exc:
            if exc.kind != "upcoming" or wait is None or deadline is None:
                raise
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ResolveError(
                    f"The scheduled stream did not start within {wait} s", kind="upcoming"
                ) from exc
            # a scheduled stream: ask again later (cancellable, unlike a sleep)
            stop = cancel or asyncio.Event()
            try:
                await asyncio.wait_for(stop.wait(), wait_poll_seconds(wait, remaining))
            except TimeoutError:
                continue
            raise JobCancelled("cancelled while waiting for a scheduled stream") from exc
    check_resolved(info, options)
    return info
