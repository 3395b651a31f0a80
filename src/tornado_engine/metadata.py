"""What is behind a URL, without downloading it: TornadoAPI's POST /metadata.

:func:`project` is an allowlist projection of yt-dlp's info (pure): named fields, checked types, bounded
strings, URLs without their query strings. Headers, cookies, format URLs and local paths never get
through, whatever the extractor put in the info dict.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import re
import urllib.parse
from collections.abc import Callable
from concurrent.futures import Executor
from contextlib import AbstractAsyncContextManager
from typing import Any, cast

from pydantic import BaseModel, ConfigDict

from .api_types import MediaMetadataAPI
from .bounds import ResolveBounds
from .errors import InvalidRequest, ResolveError
from .headprobe import direct_file, enrich, probe_head
from .pipeline.downloader import requested_formats
from .pipeline.resolver import resolve_sync
from .progress import expected_bytes
from .retry import RetryPolicy
from .safety import remote_text
from .sources.settings import JobSources

__all__ = ["MediaMetadata", "extract_metadata", "project"]


class MediaMetadata(BaseModel):
    """Metadata of one video; ``to_api()`` is the JSON body of TornadoAPI's POST /metadata."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str | None = None
    duration: float | None = None  # seconds
    width: int | None = None  # of the best video format
    height: int | None = None
    extractor: str | None = None
    uploader: str | None = None
    thumbnail: str | None = None  # without query string (signed URLs' tokens stay out)
    description: str | None = None
    view_count: int | None = None
    like_count: int | None = None
    upload_date: str | None = None  # YYYYMMDD, as the source gives it
    filesize_approx: int | None = None  # bytes of what a default job would download
    live_status: str | None = None  # is_live, is_upcoming, was_live, not_live, post_live
    qualities: list[str] = []  # e.g. ["720p", "480p", "360p"], by the shorter side, best first
    subtitle_languages: list[str] = []

    def to_api(self) -> MediaMetadataAPI:
        """TornadoAPI's POST /metadata JSON: the fields that are known."""
        return cast(MediaMetadataAPI, self.model_dump(mode="json", exclude_none=True))


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return remote_text(value.strip(), limit)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def _public_url(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 4096:
        return None
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = host + (f":{parts.port}" if parts.port else "")  # no user:password@
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


_LANG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8}){0,3}$")
_DATE = re.compile(r"^\d{8}$")


def _videos(info: dict[str, Any]) -> list[tuple[int, int]]:
    sizes = []
    for f in info.get("formats") or [info]:
        if not isinstance(f, dict) or f.get("vcodec") == "none":
            continue
        w, h = _count(f.get("width")), _count(f.get("height"))
        if w and h:
            sizes.append((w, h))
    return sizes


def project(info: dict[str, Any], selected: list[dict[str, Any]] | None = None) -> MediaMetadata:
    """The allowlisted view of a yt-dlp info dict; ``selected``: the formats a default job would fetch."""
    sizes = _videos(info)
    best = max(sizes, key=lambda wh: (min(wh), wh[0] * wh[1]), default=None)
    width, height = (_count(info.get("width")), _count(info.get("height")))
    if not (width and height) and best:
        width, height = best
    duration = _number(info.get("duration"))
    size = _count(info.get("filesize_approx")) or _count(info.get("filesize"))
    if size is None and selected:
        guesses = [expected_bytes(f, duration) for f in selected]
        size = int(sum(g for g in guesses if g)) or None
    subtitles = info.get("subtitles")
    return MediaMetadata(
        title=_text(info.get("title"), 500),
        duration=duration,
        width=width or None,
        height=height or None,
        extractor=_text(info.get("extractor"), 100),
        uploader=_text(info.get("uploader") or info.get("channel"), 200),
        thumbnail=_public_url(info.get("thumbnail")),
        description=_text(info.get("description"), 5000),
        view_count=_count(info.get("view_count")),
        like_count=_count(info.get("like_count")),
        upload_date=info["upload_date"] if _DATE.match(str(info.get("upload_date") or "")) else None,
        filesize_approx=size,
        live_status=_text(info.get("live_status"), 20),
        qualities=[f"{q}p" for q in sorted({min(wh) for wh in sizes}, reverse=True)],
        subtitle_languages=sorted(k for k in subtitles if isinstance(k, str) and _LANG.match(k))
        if isinstance(subtitles, dict)
        else [],
    )


async def extract_metadata(
    url: str,
    *,
    socket_timeout: float = 20,
    proxy: str | None = None,
    retry: RetryPolicy | None = None,
    executor: Executor | None = None,
    bounds: ResolveBounds | None = None,
    slot: Callable[[], AbstractAsyncContextManager[None]] | None = None,
    ffprobe: str | None = None,
    sources: JobSources | None = None,
) -> MediaMetadata:
    """Resolve ``url`` (yt-dlp in a thread, through ``proxy`` if given), retrying transient failures.

    ``bounds`` cap what the resolve may cost (a breach: ResolveError "too_large", never retried);
    ``slot``: a resolve slot held while yt-dlp works (the engine's CPU-sized resolve pool);
    ``ffprobe``: with it, a plain media file's duration, size and picture are probed from its head
    (:mod:`tornado_engine.headprobe`: bounded ranged reads through ``proxy``).

    Raises :class:`ResolveError` with the failure's ``kind`` (see :mod:`tornado_engine.retry`).
    """
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise InvalidRequest("URL must start with http:// or https://", field="url")
    policy = retry or RetryPolicy()
    loop = asyncio.get_running_loop()
    retries = 0
    while True:
        try:
            call = functools.partial(
                resolve_sync, url, None, socket_timeout, None, proxy or None, bounds, sources
            )
            async with slot() if slot is not None else contextlib.nullcontext():
                info = await loop.run_in_executor(executor, call)
            break
        except ResolveError as exc:
            if not policy.should_retry(exc.kind, retries):
                raise
            await asyncio.sleep(policy.delay(retries))
            retries += 1
    if ffprobe and (direct := direct_file(info)) is not None:
        found = await probe_head(*direct, ffprobe=ffprobe, proxy=proxy or None, socket_timeout=socket_timeout)
        info = enrich(info, found) if found is not None else info
    # sized as a default job would fetch it; in the thread: a loop over every format is CPU work
    return await loop.run_in_executor(executor, _project_default, info)


def _project_default(info: dict[str, Any]) -> MediaMetadata:
    return project(info, requested_formats(info))
