"""Which downloads the fast path takes, and what it would fetch for them (pure: no I/O).

One plain http(s) file (:class:`FastSource`), or DASH representations whose fragments are plain URLs on
one origin (:class:`FastDash`); anything else (live, cookies, byte-range fragments, DRM, unsafe request
headers, an odd extension) is yt-dlp's.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from ...options import MediaOptions
from ...progress import expected_bytes
from ...safety import is_media_extension
from ...ytdlp import MEDIA_STEM, is_live
from ..downloader import requested_formats

__all__ = ["FastDash", "FastSource", "FastStream", "eligible"]

# headers of the format we never forward: ours, hop-by-hop, or ones that change the body's shape
_SKIP_HEADERS = frozenset(
    {
        "host", "range", "connection", "keep-alive", "proxy-connection", "proxy-authorization", "te",
        "upgrade", "accept-encoding", "content-length", "transfer-encoding", "if-range",
    }
)  # fmt: skip
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_SAFE_ID = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class FastSource:
    """A progressive file: one plain http(s) URL, fetched in ranged chunks."""

    url: str
    headers: tuple[tuple[str, str], ...]
    format_id: str
    filename: str
    expected_size: int | None


@dataclass(frozen=True)
class FastStream:
    """One DASH representation: its fragments' absolute URLs, init segment first, in order."""

    format_id: str
    filename: str
    fragments: tuple[str, ...]
    weight: float  # its expected share of the bytes, for one job-level percent


@dataclass(frozen=True)
class FastDash:
    """The picked DASH representations (video and audio apart), fetched fragment by fragment."""

    streams: tuple[FastStream, ...]
    headers: tuple[tuple[str, str], ...]

    @property
    def url(self) -> str:
        return self.streams[0].fragments[0]


def _request_headers(fmt: dict[str, Any], info: dict[str, Any]) -> tuple[tuple[str, str], ...] | None:
    """The format's own request headers, minus ours and hop-by-hop ones; None if any looks unsafe."""
    headers: list[tuple[str, str]] = []
    for name, value in (fmt.get("http_headers") or info.get("http_headers") or {}).items():
        name, value = str(name), str(value)
        if name.lower() in _SKIP_HEADERS:
            continue
        if not _TOKEN.match(name) or any(c in value for c in "\r\n\0"):
            return None
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            return None
        headers.append((name, value))
    return tuple(headers)


def _local_name(fmt: dict[str, Any], info: dict[str, Any]) -> tuple[str, str] | None:
    """(format id, file name) as yt-dlp would write it (``media.<id>.<ext>``, one safe component)."""
    ext = str(fmt.get("ext") or info.get("ext") or "")
    format_id = _SAFE_ID.sub("_", str(fmt.get("format_id") or info.get("format_id") or "0"))[:64]
    filename = f"{MEDIA_STEM}.{format_id}.{ext}"
    return (format_id, filename) if is_media_extension(filename) else None  # odd ones: yt-dlp refuses


def _origin(url: str) -> tuple[str, str, int] | None:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    try:
        return scheme, parts.hostname, parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        return None


def _dash_stream(fmt: dict[str, Any], info: dict[str, Any]) -> FastStream | None:
    if fmt.get("protocol") != "http_dash_segments" or fmt.get("has_drm"):
        return None
    if any(fmt.get(k) for k in ("extra_param_to_segment_url", "cookies", "is_live", "is_from_start")):
        return None
    fragments = fmt.get("fragments")
    base = fmt.get("fragment_base_url") or ""
    if not isinstance(fragments, list) or not fragments:
        return None
    urls = []
    for fragment in fragments:
        if not isinstance(fragment, dict) or fragment.get("range") or fragment.get("byte_range"):
            return None  # byte ranges inside one file: yt-dlp's business
        url = fragment.get("url") or (
            urllib.parse.urljoin(base, fragment["path"]) if fragment.get("path") else None
        )
        if not isinstance(url, str):
            return None
        urls.append(url)
    named = _local_name(fmt, info)
    if named is None:
        return None
    weight = expected_bytes(fmt, info.get("duration")) or 0.0
    return FastStream(named[0], named[1], tuple(urls), weight)


def eligible(info: dict[str, Any], options: MediaOptions | None = None) -> FastSource | FastDash | None:
    """What the fast path would fetch, or None when yt-dlp must do the download (pure).

    One plain http(s) file, or DASH representations whose fragments are plain URLs on one origin.
    """
    if is_live(info) or (options is not None and options.live_recording):
        return None
    formats = requested_formats(info)
    if not formats or any(f.get("cookies") or f.get("is_live") for f in formats):
        return None
    if formats[0].get("protocol") == "http_dash_segments":
        streams = [_dash_stream(f, info) for f in formats]
        headers = _request_headers(formats[0], info)
        if any(st is None for st in streams) or headers is None:
            return None
        ready = [st for st in streams if st is not None]
        if (
            len({_origin(u) for st in ready for u in st.fragments}) != 1
            or _origin(ready[0].fragments[0]) is None
        ):
            return None  # one origin: one pinned set of addresses, one connection pool
        if len({st.filename for st in ready}) != len(ready):
            return None
        known = [st.weight for st in ready if st.weight]
        fill = sum(known) / len(known) if known else 1.0
        ready = [FastStream(st.format_id, st.filename, st.fragments, st.weight or fill) for st in ready]
        return FastDash(tuple(ready), headers)
    if len(formats) != 1:
        return None
    fmt = formats[0]
    url = fmt.get("url")
    if not isinstance(url, str) or fmt.get("protocol") not in ("http", "https"):
        return None
    if any(fmt.get(k) for k in ("fragments", "fragment_base_url", "manifest_url")):
        return None
    if fmt.get("downloader_options", {}).get("http_chunk_size"):
        return None
    origin = _origin(url)
    named = _local_name(fmt, info)
    headers = _request_headers(fmt, info)
    if origin is None or origin[0] != fmt["protocol"] or named is None or headers is None:
        return None
    size = fmt.get("filesize")
    return FastSource(url, headers, named[0], named[1], int(size) if size else None)
