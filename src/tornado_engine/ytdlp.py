"""yt-dlp parameters from an allowlist, and yt-dlp errors mapped to our kinds (pure: no I/O).

No caller string becomes a yt-dlp option, output template or path: templates use fixed stems and the
job folder is one the engine made.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .codecs import AUDIO_FORMATS
from .diskspace import is_disk_full, mentions_disk_full
from .errors import DownloadError as EngineDownloadError
from .errors import ErrorKind, ResolveError, StageError
from .options import MediaOptions
from .retry import outcome_for
from .safety import UNREACHABLE_REASON
from .sources.hostpace import parse_retry_after
from .ytdlp_loader import load_ytdlp

__all__ = [
    "DETAILED_KINDS",
    "MEDIA_STEM",
    "SIDE_STEM",
    "SilentLogger",
    "base_params",
    "check_resolved",
    "classify",
    "clean_message",
    "download_params",
    "format_selection",
    "is_live",
    "map_error",
    "option_params",
    "public_url",
    "side_params",
    "unreachable_cause",
]

MEDIA_STEM = "media"
SIDE_STEM = "side"  # subtitles and thumbnail: side.<lang>.vtt, side.jpg
# kinds whose message is the source's own text, cleaned (see map_error)
DETAILED_KINDS: frozenset[ErrorKind] = frozenset(
    {
        "network", "timeout", "truncated", "server_error", "rate_limited", "not_found", "http_error",
        "unsupported_url", "extractor_bug", "unknown",
    }
)  # fmt: skip


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


def format_selection(options: MediaOptions | None = None, *, live: bool = False) -> dict[str, Any]:
    """Which formats to fetch.

    Video: the best video and best audio as separate files (merged by our muxer), or the best single
    file; ``max_resolution`` ranks by the shorter side, preferring the largest at or below the cap and
    falling back to the closest above it (``res:N``; ``[height<=N]`` would find nothing for portrait
    video, recipe section 9). Audio only: the best audio, preferring the audio format's own codec so it
    is copied, not re-encoded. Live: video and audio in one ffmpeg process, so a duration cap stops both
    at the same moment.
    """
    if options is not None and options.audio_only:
        return {"format": "ba/b", "format_sort": [f"acodec:{AUDIO_FORMATS[options.container].codec}"]}
    params: dict[str, Any] = {"format": "bv*+ba/b" if live else "bv,ba/b"}
    if options is not None and options.max_height:
        params["format_sort"] = [f"res:{options.max_height}"]
    return params


def option_params(options: MediaOptions | None, *, live: bool = False) -> dict[str, Any]:
    """The request's media options as yt-dlp parameters: format choice and live recording."""
    params = format_selection(options, live=live)
    if options is not None and options.live_recording:
        if options.live_from_start:
            params["live_from_start"] = True
        if live and options.max_duration:
            # live HLS/DASH always goes through yt-dlp's ffmpeg downloader: -t ends the recording
            params["external_downloader_args"] = {"ffmpeg_o": ["-t", str(options.max_duration)]}
    return params


# what only the media download itself uses; everything else (paths, timeouts, proxy...) is shared
_MEDIA_ONLY = frozenset(
    {"progress_hooks", "format_sort", "external_downloader_args", "live_from_start", "http_chunk_size"}
)


def side_params(download: dict[str, Any], options: MediaOptions) -> dict[str, Any]:
    """Subtitles and thumbnail in their own call (with ``bv,ba`` yt-dlp would write them per format).

    Built from the media download's own parameters, so the side call goes the same way over the
    network (timeouts, and whatever proxy or network guard the download uses).
    """
    params = {k: v for k, v in download.items() if k not in _MEDIA_ONLY}
    params.update(
        {
            "skip_download": True,
            "format": "b*",  # any single format: nothing is downloaded, but selection must succeed
            "outtmpl": {"default": f"{SIDE_STEM}.%(ext)s"},
            "writesubtitles": bool(options.subtitle_languages),
            "subtitleslangs": list(options.subtitle_languages),  # validated codes, never patterns
            "subtitlesformat": "vtt/srt/best",
            "writethumbnail": options.thumbnail,
        }
    )
    return params


def public_url(url: str) -> str:
    """``url`` without yt-dlp's private ``#__youtubedl_smuggle=...`` fragment (a feed entry's, say).

    The fragment carries hints for yt-dlp's extractor (an id, a referer): kept in the job's request,
    where the resolve reads it, never in the URL a job shows."""
    if "#__youtubedl_smuggle" not in url:  # yt-dlp's own test: most URLs never load yt-dlp here
        return url
    load_ytdlp()
    from yt_dlp.utils import unsmuggle_url

    clean: str = unsmuggle_url(url)[0]
    return clean


def is_live(info: dict[str, Any]) -> bool:
    return bool(info.get("is_live")) or info.get("live_status") == "is_live"


def check_resolved(info: dict[str, Any], options: MediaOptions | None) -> None:
    """Refuse, before any download, what the request cannot do with this media. Raises ResolveError."""
    if options is None:
        return
    if is_live(info) and not options.live_recording:
        raise ResolveError("This is a live stream; set live_recording to record it", kind="live_stream")
    duration = info.get("duration")
    if options.clip is not None and isinstance(duration, int | float) and options.clip[0] >= duration:
        raise ResolveError(
            f"The clip starts at {options.clip[0]:g} s but the media is only {duration:g} s long",
            kind="clip_out_of_range",
        )


def download_params(
    job_dir: Path,
    ffmpeg_dir: str | None,
    progress_hook: Callable[[dict[str, Any]], None],
    *,
    socket_timeout: float = 20,
    concurrent_fragments: int = 4,
    http_chunk_size: int | None = 10 * 2**20,
    options: MediaOptions | None = None,
    live: bool = False,
) -> dict[str, Any]:
    params = base_params(job_dir, ffmpeg_dir, socket_timeout=socket_timeout)
    params.update(option_params(options, live=live))
    params.update(
        {
            "progress_hooks": [progress_hook],
            "concurrent_fragment_downloads": concurrent_fragments,
            "buffersize": 1 << 16,
            "noresizebuffer": True,
            # a .part file is resumed only after pipeline._ytparts vouched for it (and threw the rest away);
            # a live recording's never is
            "continuedl": not live,
            "nopart": False,
        }
    )
    if http_chunk_size:
        params["http_chunk_size"] = http_chunk_size
    return params


def _http_kind(status: int) -> ErrorKind:
    if status == 429:
        return "rate_limited"
    if status in (404, 410):
        return "not_found"
    if status >= 500:
        return "server_error"
    if status in (401, 403):
        return "login_required" if status == 401 else "http_error"
    return "http_error"


def classify(exc: BaseException) -> ErrorKind:
    """One kind from :data:`tornado_engine.retry.OUTCOMES` for a yt-dlp exception."""
    load_ytdlp()  # here, not at the top: importing the package must not load yt-dlp (see ytdlp_loader)
    from yt_dlp.networking.exceptions import HTTPError, TransportError
    from yt_dlp.utils import DownloadError, ExtractorError, GeoRestrictedError, UnsupportedError

    inner: BaseException | None = exc
    if isinstance(exc, DownloadError) and exc.exc_info and exc.exc_info[1] is not None:
        inner = exc.exc_info[1]
    if is_disk_full(exc):  # "unable to write data: [Errno 28] ...": our disk, not the source
        return "disk_full"
    if (cause := unreachable_cause(str(exc))) is not None:
        return _unreachable_kind(cause)
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
        if "live-from-start" in text:
            return "no_live_from_start"
        if _UPCOMING.search(text):
            return "upcoming"
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


# what extractors say about a scheduled stream or premiere (YouTube: "This live event will begin in ...")
_UPCOMING = re.compile(r"live event will begin|premieres? in|stream (is )?(scheduled|upcoming)|will begin in")


def _classify_text(msg: str) -> ErrorKind:
    # Download-phase errors carry no cause, only text (recipe: media.md section 5).
    low = msg.lower()
    if mentions_disk_full(msg):
        return "disk_full"
    if (cause := unreachable_cause(msg)) is not None:
        return _unreachable_kind(cause)
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


# the network guard's 502 for an origin it could not reach, as the downloader repeats it (safety.py)
_UNREACHABLE = re.compile(re.escape(UNREACHABLE_REASON) + r" \(([^()\r\n]{1,300})\)")


def unreachable_cause(msg: str) -> str | None:
    """The origin's failure inside the network guard's 502 ("Connection refused by 127.0.0.1:9",
    "Cannot resolve host example.invalid"), or None when ``msg`` is not about one."""
    m = _UNREACHABLE.search(msg)
    return m[1] if m else None


def _unreachable_kind(cause: str) -> ErrorKind:
    # a dead port, a refused or unresolvable host: the source's network failure, never the guard's 5xx
    return "timeout" if "timed out" in cause.lower() else "network"


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
    text = re.sub(r"\s*\(caused by .*\)\s*$", "", text)  # the cause's repr adds nothing for people
    # sentences that give command-line advice ("use --no-live-from-start") do not apply to us
    sentences = re.split(r"(?<=[.!])\s+", text)
    text = " ".join(x for x in sentences if not re.search(r"(^|\s)--[a-z]", x)) or text
    return text[:300]


def _is_ytdlp_error(exc: BaseException) -> bool:
    # yt-dlp not loaded yet (a fast-path failure before any resolve): exc cannot be one of its errors
    utils = sys.modules.get("yt_dlp.utils")
    return utils is not None and isinstance(exc, utils.YoutubeDLError)


def map_error(exc: BaseException, *, resolving: bool) -> StageError:
    """Map any yt-dlp exception to the engine's tree, keeping the kind for the retry policy."""
    kind = classify(exc) if _is_ytdlp_error(exc) else _classify_text(str(exc))
    cls = ResolveError if resolving else EngineDownloadError
    # Failures whose specifics help (the HTTP status, the byte counts, the unknown) keep the source's
    # text, cleaned; the rest get our own sentence ("This video is private").
    message = clean_message(exc) if kind in DETAILED_KINDS else outcome_for(kind).message
    if (cause := unreachable_cause(str(exc))) is not None:
        message = cause  # "Connection refused by 127.0.0.1:9", not the proxy's "HTTP Error 502 ..."
    return cls(message, kind=kind, retry_after=_retry_after(exc) if _is_ytdlp_error(exc) else None)


def _retry_after(exc: BaseException) -> float | None:
    """The ``Retry-After`` of the HTTP error inside a yt-dlp error, in seconds (None without one)."""
    from yt_dlp.networking.exceptions import HTTPError  # loaded: exc is one of yt-dlp's errors
    from yt_dlp.utils import DownloadError, ExtractorError

    inner = exc.exc_info[1] if isinstance(exc, DownloadError) and exc.exc_info else exc
    if isinstance(inner, ExtractorError) and inner.exc_info:  # an extractor wraps the request's error
        inner = inner.exc_info[1]
    if not isinstance(inner, HTTPError):
        return None
    return parse_retry_after(inner.response.headers.get("Retry-After"), time.time())
