"""yt-dlp's resolve-time reads under the :class:`~tornado_engine.bounds.ResolveBounds`, as early as can be.

Every request an extractor makes goes through ``YoutubeDL.urlopen``; :func:`guard` wraps it on one
instance. A manifest (by its content type or its ``.m3u8``/``.mpd`` path) is refused on its
``Content-Length`` before a byte is read, else read up to the cap and judged by
:func:`~tornado_engine.bounds.manifest_problem` before yt-dlp parses (and expands) it; any other text body
(a page, a feed) is counted as the extractor reads it. Media bodies (audio/video) pass untouched: the
extractor reads their first bytes only. A refusal surfaces as :class:`ResolveError` (``too_large``, or
``quota_exceeded`` for a tenant's duration) through :func:`exceeded_in`.
"""

from __future__ import annotations

import io
import urllib.parse
from typing import Any

import yt_dlp
from yt_dlp.networking.common import Response

from ..bounds import Exceeded, ResolveBounds, manifest_problem, size_problem
from ..errors import ResolveError

__all__ = ["exceeded_in", "guard", "raise_exceeded"]

_MANIFEST_TYPES = ("mpegurl", "dash+xml", "vnd.ms-sstr", "f4m")
_MANIFEST_SUFFIXES = (".m3u8", ".m3u", ".mpd", ".ism", ".f4m")
_SNIFF = 4096


class _TooLarge(yt_dlp.utils.DownloadCancelled):  # type: ignore[misc]
    """Raised inside yt-dlp; DownloadCancelled goes through its extractor wrappers untouched."""

    def __init__(self, exceeded: Exceeded) -> None:
        super().__init__(exceeded.message)
        self.exceeded = exceeded


class _CountingReader(io.RawIOBase):
    """A response body (``head`` already read from it) that refuses to give more than the cap."""

    def __init__(self, response: Any, head: bytes, bounds: ResolveBounds) -> None:
        super().__init__()
        self._response, self._head, self._bounds, self._read = response, head, bounds, len(head)

    def readable(self) -> bool:
        return True

    def read(self, amt: int | None = -1) -> bytes:
        if self._head:
            size = len(self._head) if amt is None or amt < 0 else amt
            data, self._head = self._head[:size], self._head[size:]
            return data
        limit = self._bounds.max_manifest_bytes + 1 - self._read
        want = limit if amt is None or amt < 0 else min(amt, limit)
        data = self._response.read(want) if want > 0 else b""
        self._read += len(data)
        if problem := size_problem(self._read, self._bounds):
            self._response.close()
            raise _TooLarge(problem)
        return bytes(data)

    def close(self) -> None:
        self._response.close()
        super().close()


def _is_manifest(response: Any) -> bool:
    ctype = str(response.headers.get("Content-Type") or "").lower()
    path = urllib.parse.urlsplit(str(response.url)).path.lower()
    return any(t in ctype for t in _MANIFEST_TYPES) or path.endswith(_MANIFEST_SUFFIXES)


def _is_media(response: Any) -> bool:
    ctype = str(response.headers.get("Content-Type") or "").lower()
    return ctype.startswith(("video/", "audio/", "image/")) or ctype == "application/octet-stream"


def _looks_like_manifest(head: bytes) -> bool:
    head = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"#EXTM3U") or b"<MPD" in head


def _read_capped(response: Any, cap: int, head: bytes = b"") -> bytes:
    """At most ``cap`` + 1 bytes: one more than allowed is enough to know the body is too large."""
    parts, size = [head], len(head)
    while size <= cap:
        chunk = response.read(min(1 << 20, cap + 1 - size))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


def _judged(response: Any, bounds: ResolveBounds, head: bytes = b"") -> io.BytesIO:
    """The whole manifest, read up to the cap and judged before anyone parses it."""
    length = str(response.headers.get("Content-Length") or "")
    if length.isdigit() and (problem := size_problem(int(length), bounds)):
        response.close()
        raise _TooLarge(problem)  # before a byte of the body is read
    try:
        body = _read_capped(response, bounds.max_manifest_bytes, head)
    finally:
        response.close()
    if problem := manifest_problem(body, bounds):
        raise _TooLarge(problem)  # before the extractor parses (and expands) it
    return io.BytesIO(body)


def _bounded(response: Any, bounds: ResolveBounds, manifests_only: bool) -> Any:
    if _is_manifest(response):
        fp: Any = _judged(response, bounds)
    elif manifests_only or _is_media(response):
        return response
    else:
        # a page, a feed, or a manifest under a vague type (text/plain, application/xml): its first
        # bytes tell which (the extractor reads a few of a direct file's, never a whole one)
        head = response.read(_SNIFF)
        if _looks_like_manifest(head):
            fp = _judged(response, bounds, head)
        else:
            fp = _CountingReader(response, head, bounds)
    return Response(fp, response.url, response.headers, response.status, response.reason, response.extensions)


def guard(ydl: Any, bounds: ResolveBounds, *, manifests_only: bool = False) -> None:
    """Bound every read ``ydl`` makes from now on.

    ``manifests_only`` for a download: yt-dlp's HLS downloader fetches the list again (it may have grown
    since the resolve), while its media responses, whatever their content type, must pass untouched."""
    urlopen = ydl.urlopen

    def bounded_urlopen(req: Any) -> Any:
        return _bounded(urlopen(req), bounds, manifests_only)

    ydl.urlopen = bounded_urlopen


def exceeded_in(exc: BaseException) -> Exceeded | None:
    """The bound behind a yt-dlp failure, however deep it was wrapped (TransportError, ExtractorError)."""
    seen: BaseException | None = exc
    for _ in range(12):
        if seen is None:
            return None
        if isinstance(seen, _TooLarge):
            return seen.exceeded
        info = getattr(seen, "exc_info", None)
        inner = info[1] if isinstance(info, tuple) and len(info) > 1 else None
        cause = getattr(seen, "cause", None)
        cause = cause if isinstance(cause, BaseException) else None
        seen = inner or cause or seen.__cause__ or seen.__context__
    return None


def raise_exceeded(exc: BaseException) -> None:
    """Raise the :class:`ResolveError` of a bound behind ``exc``, if there is one."""
    if (problem := exceeded_in(exc)) is not None:
        raise ResolveError(problem.message, kind=problem.kind) from None
