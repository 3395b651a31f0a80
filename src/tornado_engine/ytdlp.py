"""yt-dlp parameters from an allowlist, and yt-dlp errors mapped to our kinds (pure: no I/O).

No caller string becomes a yt-dlp option, output template or path: templates use fixed stems and the
job folder is one the engine made.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.utils import (
    DownloadError,
    ExtractorError,
    GeoRestrictedError,
    UnsupportedError,
    YoutubeDLError,
)

from .errors import DownloadError as EngineDownloadError
from .errors import ResolveError, StageError

__all__ = [
    "MEDIA_STEM",
    "SilentLogger",
    "base_params",
    "classify",
    "clean_message",
    "download_params",
    "format_selection",
    "map_error",
]

MEDIA_STEM = "media"


class SilentLogger:
    """yt-dlp prints ERROR lines to stderr even when quiet; a logger swallows them (we map errors)."""

    def debug(self, msg: str) -> None:
        pass

    info = warning = error = debug


def base_params(job_dir: Path, ffmpeg_dir: str | None, *, socket_timeout: float = 20) -> dict[str, Any]:
    return {
        "logger": SilentLogger(),
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "cachedir": False,
        "paths": {"home": str(job_dir), "temp": str(job_dir)},
        "outtmpl": {"default": f"{MEDIA_STEM}.%(format_id)s.%(ext)s"},
        "restrictfilenames": True,
        "windowsfilenames": True,
        "noplaylist": True,
        # our own retry loop counts attempts; yt-dlp's internal ones would hide them
        "retries": 0,
        "fragment_retries": 2,
        "extractor_retries": 0,
        "skip_unavailable_fragments": False,
        "socket_timeout": socket_timeout,
        "geo_bypass": False,
        "ffmpeg_location": ffmpeg_dir,
        "color": "no_color",
    }


def format_selection() -> dict[str, Any]:
    """Separate best video and best audio files (merged by our muxer), or the best single file."""
    return {"format": "bv,ba/b"}


def download_params(
    job_dir: Path,
    ffmpeg_dir: str | None,
    progress_hook: Callable[[dict[str, Any]], None],
    *,
    socket_timeout: float = 20,
    concurrent_fragments: int = 4,
    http_chunk_size: int | None = 10 * 2**20,
) -> dict[str, Any]:
    params = base_params(job_dir, ffmpeg_dir, socket_timeout=socket_timeout)
    params.update(format_selection())
    params.update(
        {
            "progress_hooks": [progress_hook],
            "concurrent_fragment_downloads": concurrent_fragments,
            "buffersize": 1 << 16,
            "noresizebuffer": True,
            "continuedl": False,
            "nopart": False,
        }
    )
    if http_chunk_size:
        params["http_chunk_size"] = http_chunk_size
    return params


def _http_kind(status: int) -> str:
    if status == 429:
        return "rate_limited"
    if status in (404, 410):
        return "not_found"
    if status >= 500:
        return "server_error"
    if status in (401, 403):
        return "login_required" if status == 401 else "http_error"
    return "http_error"


def classify(exc: BaseException) -> str:
    """One kind from :data:`tornado_engine.retry.OUTCOMES` for a yt-dlp exception."""
    inner: BaseException | None = exc
    if isinstance(exc, DownloadError) and exc.exc_info and exc.exc_info[1] is not None:
        inner = exc.exc_info[1]
    if isinstance(inner, GeoRestrictedError):
        return "geo_restricted"
    if isinstance(inner, UnsupportedError):
        return "unsupported_url"
    if isinstance(inner, HTTPError):
        return _http_kind(inner.status)
    if isinstance(inner, TransportError):
        return "timeout" if "timed out" in str(inner).lower() else "network"
    if isinstance(inner, ExtractorError) and inner.expected:
        text = (inner.orig_msg or str(inner)).lower()
        if "drm" in text:
            return "drm"
        if "members-only" in text or "join this channel" in text:
            return "members_only"
        if "private" in text:
            return "private"
        if "confirm you" in text and "bot" in text:
            return "bot_check"
        if "registered users" in text or "sign in" in text or "log in" in text or "login" in text:
            return "login_required"
        if "requested format is not available" in text:
            return "no_formats"
        return "unavailable"
    return _classify_text(str(exc))


def _classify_text(msg: str) -> str:
    # Download-phase errors carry no cause, only text (recipe: media.md section 5).
    low = msg.lower()
    if m := re.search(r"HTTP Error (\d{3})", msg):
        return _http_kind(int(m[1]))
    if re.search(r"Downloaded \d+ bytes, expected \d+ bytes", msg) or "bytes read" in low:
        return "truncated"
    if "timed out" in low:
        return "timeout"
    if re.search(r"connection (refused|reset|aborted)|errno (104|110|111|113)|remote end closed", low):
        return "network"
    if "requested format is not available" in low:
        return "no_formats"
    if "drm" in low:
        return "drm"
    if "unsupported url" in low:
        return "unsupported_url"
    if "an extractor error has occurred" in low:
        return "extractor_bug"
    return "unknown"


def clean_message(exc: BaseException) -> str:
    """A short, human message that never names yt-dlp or carries URLs' query strings."""
    raw = str(exc).replace("\r", "").strip()  # download errors start "ERROR: \r[download] ..."
    text = raw.splitlines()[0] if raw else type(exc).__name__
    text = re.sub(r"^ERROR:\s*", "", text)
    text = re.sub(r"^\[[\w:-]+\]\s*", "", text)
    text = re.sub(r"(?i)yt-dlp|youtube-dl|youtubedl", "downloader", text)
    text = re.sub(r"(https?://[^\s?]+)\?\S*", r"\1", text)
    text = re.sub(r";?\s*please report this issue.*$", "", text, flags=re.I)
    text = re.sub(r"\s*Use --cookies\S*.*$", "", text)
    return text[:300]


def map_error(exc: BaseException, *, resolving: bool) -> StageError:
    """Map any yt-dlp exception to the engine's tree, keeping the kind for the retry policy."""
    kind = classify(exc) if isinstance(exc, YoutubeDLError) else _classify_text(str(exc))
    cls = ResolveError if resolving else EngineDownloadError
    return cls(clean_message(exc), kind=kind)
