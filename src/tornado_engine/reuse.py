"""Reuse (pure): when a job may take a finished job's stored file instead of downloading again.

Two jobs make the same file when they have the same **source** (yt-dlp's extractor and media id, or for
the generic extractor the canonical page URL: :func:`source_key`) and the same **output options** (every
request field that changes the stored bytes: :func:`output_key`). Each request field is listed once,
in :data:`OUTPUT_FIELDS` or in :data:`OTHER_FIELDS`; a test fails when a new field is in neither.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .models import JobRequest

__all__ = ["OTHER_FIELDS", "OUTPUT_FIELDS", "ReusePolicy", "output_key", "source_key", "wants_reuse"]

# What the stored bytes (media and side files) depend on.
OUTPUT_FIELDS = frozenset({
    "format", "video_codec", "audio_codec", "audio_bitrate", "video_quality", "audio_only", "audio_format",
    "max_resolution", "quality_preset", "clip_start", "clip_end", "download_subtitles",
    "subtitle_languages", "download_thumbnail", "live_recording", "live_from_start", "max_duration",
})  # fmt: skip
# What does not change them: the source (compared on its own), where the file goes and its name, how and
# when it is fetched (impersonation and bandwidth change the requests, not the media picked), who is told.
OTHER_FIELDS = frozenset({
    "url", "filename", "folder", "webhook_url", "paused", "enable_progress_webhook", "storage",
    "impersonate", "limit_rate", "wait_for_video", "reuse",
})  # fmt: skip
_VERSION = 1  # raised when the pipeline makes other bytes from the same options: old files stop matching
# extractors whose ids are made from file or page names, not the site's media ids
_GENERIC = frozenset({"generic", "html5", "html5mediaembed"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class ReusePolicy:
    """``Engine(reuse=..., reuse_window=...)``: reuse unless a request says otherwise, and how old (in
    seconds since it ended) a job's file may be to be reused."""

    default: bool = False
    window_seconds: float = 7 * 24 * 3600.0

    def __post_init__(self) -> None:
        if not self.window_seconds > 0:
            raise ValueError("reuse_window must be a positive number of seconds")


def wants_reuse(request: JobRequest, policy: ReusePolicy) -> bool:
    """The request's ``reuse``, else the engine's default; never for a live recording (its bytes are
    whatever the stream sent while it was recorded)."""
    if request.live_recording:
        return False
    return policy.default if request.reuse is None else request.reuse


def output_key(request: JobRequest) -> str:
    """A digest of the request's output options (32 hex digits)."""
    dumped = request.model_dump(mode="json", include=set(OUTPUT_FIELDS))
    text = json.dumps({"v": _VERSION, **dumped}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def source_key(info: Mapping[str, Any], url: str) -> str:
    """``extractor:id`` (``youtube:dQw4w9WgXcQ``) when the extractor names the media; else ``url:`` and a
    digest of the canonical page URL (yt-dlp's ``webpage_url``, else ``url``): no URL text in the record."""
    names = {str(info.get(name) or "").lower() for name in ("extractor_key", "extractor")} - {""}
    media_id = info.get("id")
    if names and not names & _GENERIC and media_id:
        return f"{str(info.get('extractor_key') or info.get('extractor')).lower()}:{str(media_id)[:200]}"
    page = str(info.get("webpage_url") or url)
    return "url:" + hashlib.sha256(_canonical(page).encode()).hexdigest()[:32]


def _canonical(url: str) -> str:
    """Scheme and host lower-cased, the default port and the fragment dropped; path and query kept."""
    parts = urllib.parse.urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    return urllib.parse.urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
