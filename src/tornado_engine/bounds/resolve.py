"""What one resolve may cost (pure): a manifest's size, its segment count and its declared duration.

A hostile or broken source can declare months of media or millions of segments in a few bytes (a DASH
``<S r="9999999"/>``) or in a few megabytes (an HLS list); expanded by the extractor, that took minutes of
CPU and gigabytes of memory. :class:`ResolveBounds` caps the three; :func:`manifest_problem` judges a
manifest's bytes before anything parses them (counting, never expanding), and :func:`info_problem`
judges the resolved info as a second line. Both return an :class:`Exceeded` (kind and message) or None.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ..errors import ErrorKind
from ..quota import quota_problem
from ..results import Quota

__all__ = ["Exceeded", "ResolveBounds", "info_problem", "iso_duration", "manifest_problem", "size_problem"]


@dataclass(frozen=True)
class ResolveBounds:
    """Caps on what a resolve reads: ``Engine(resolve_bounds=...)``.

    ``max_duration_seconds`` applies to media that is not live; a tenant quota's ``max_duration_seconds``
    takes its place for that tenant's jobs (see :meth:`with_quota`)."""

    max_manifest_bytes: int = 16 * 2**20
    max_segments: int = 100_000
    max_duration_seconds: float = 24 * 3600.0
    quota_duration: bool = False  # max_duration_seconds is the tenant's quota, not the engine's

    def __post_init__(self) -> None:
        if self.max_manifest_bytes < 1 or self.max_segments < 1 or not self.max_duration_seconds > 0:
            raise ValueError("resolve bounds must be positive")

    def with_quota(self, max_duration_seconds: float | None) -> ResolveBounds:
        """These bounds for a tenant whose quota caps the duration (None: the engine's cap stands)."""
        if max_duration_seconds is None:
            return self
        return ResolveBounds(
            self.max_manifest_bytes, self.max_segments, float(max_duration_seconds), quota_duration=True
        )


@dataclass(frozen=True)
class Exceeded:
    """A bound the source broke: ``kind`` "too_large" (or "quota_exceeded" for a tenant's duration)."""

    kind: ErrorKind
    message: str


def size_problem(size: int, bounds: ResolveBounds) -> Exceeded | None:
    """A response body (a manifest, a page) of ``size`` bytes, known or read so far."""
    if size <= bounds.max_manifest_bytes:
        return None
    limit = bounds.max_manifest_bytes / 2**20
    return Exceeded(
        "too_large", f"The source's manifest is over the {limit:g} MiB limit (max_manifest_bytes)"
    )


def _segments(count: int, bounds: ResolveBounds) -> Exceeded | None:
    if count <= bounds.max_segments:
        return None
    return Exceeded(
        "too_large",
        f"The source's manifest lists {count:,} segments; the limit is {bounds.max_segments:,} "
        "(max_segments)",
    )


def _duration(seconds: float | None, bounds: ResolveBounds) -> Exceeded | None:
    if seconds is None or not seconds > bounds.max_duration_seconds:
        return None
    shown = f"{seconds:.0f} s" if math.isfinite(seconds) else "an endless duration"
    if bounds.quota_duration:  # the tenant's own limit: refused as _admit would, in its words
        quota = Quota(max_duration_seconds=bounds.max_duration_seconds)
        return Exceeded("quota_exceeded", quota_problem(quota, duration=seconds) or "")
    return Exceeded(
        "too_large",
        f"The source declares {shown} of media; the limit is {bounds.max_duration_seconds:.0f} s "
        "(max_duration_seconds)",
    )


# --- HLS ---------------------------------------------------------------------------------------------
_EXTINF = re.compile(rb"#EXTINF:\s*([0-9]+(?:\.[0-9]*)?)")


def _hls_problem(body: bytes, bounds: ResolveBounds) -> Exceeded | None:
    # count first (in C): a list over the cap is refused before its durations are read one by one
    if problem := _segments(body.count(b"#EXTINF"), bounds):
        return problem
    live = b"#EXT-X-ENDLIST" not in body and b"PLAYLIST-TYPE:VOD" not in body
    if live:
        return None  # a live list's window says nothing of the recording's length
    return _duration(sum(float(m[1]) for m in _EXTINF.finditer(body)), bounds)


# --- DASH --------------------------------------------------------------------------------------------
_ISO_DURATION = re.compile(
    rb"P(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?"
    rb"(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)
_UNIT_SECONDS = (365.25 * 86400, 30.44 * 86400, 7 * 86400, 86400, 3600, 60, 1)
_MPD_DURATION = re.compile(rb'mediaPresentationDuration\s*=\s*"([^"]{1,64})"')
_DYNAMIC = re.compile(rb'<MPD\b[^>]*\btype\s*=\s*"dynamic"')
_TIMELINE = re.compile(rb"<SegmentTimeline\b.*?</SegmentTimeline>", re.S)
_S_REPEAT = re.compile(rb"<S\b[^>]*?\br\s*=\s*\"(-?\d{1,12})\"")
_TEMPLATE = re.compile(rb"<SegmentTemplate\b[^>]*>")
_ATTR = re.compile(rb'\b(duration|timescale)\s*=\s*"(\d{1,15})"')


def iso_duration(text: bytes) -> float | None:
    """Seconds of an ISO 8601 duration (``PT1H2M3.5S``, ``P3M``), or None if it is not one."""
    m = _ISO_DURATION.match(text.strip())
    if not m or not any(m.groups()):
        return None
    return sum(float(v) * unit for v, unit in zip(m.groups(), _UNIT_SECONDS, strict=True) if v)


def _timeline_segments(block: bytes, declared: float | None) -> int:
    count = block.count(b"<S ") + block.count(b"<S/>")
    for m in _S_REPEAT.finditer(block):
        repeat = int(m[1])
        # r="-1": repeat to the period's end; counted as if every segment were one second (worst case)
        count += repeat if repeat >= 0 else int(declared or 0)
    return count


def _template_segments(tag: bytes, declared: float | None) -> int:
    attrs = {k: int(v) for k, v in _ATTR.findall(tag)}
    duration, timescale = attrs.get(b"duration"), attrs.get(b"timescale", 1) or 1
    if not duration or declared is None:
        return 0
    return math.ceil(declared * timescale / duration)


def _dash_problem(body: bytes, bounds: ResolveBounds) -> Exceeded | None:
    m = _MPD_DURATION.search(body)
    declared = iso_duration(m[1]) if m else None
    if not _DYNAMIC.search(body) and (problem := _duration(declared, bounds)):
        return problem
    # the longest representation decides: each one is a format with its own fragment list
    counts = [_timeline_segments(b, declared) for b in _TIMELINE.findall(body)]
    counts += [_template_segments(t, declared) for t in _TEMPLATE.findall(body)]
    counts.append(body.count(b"<SegmentURL"))
    return _segments(max(counts), bounds)


def manifest_problem(body: bytes, bounds: ResolveBounds) -> Exceeded | None:
    """Judge an HLS or DASH manifest's bytes before any parser expands them; other bodies pass."""
    if problem := size_problem(len(body), bounds):
        return problem
    head = body[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"#EXTM3U"):
        return _hls_problem(body, bounds)
    if b"<MPD" in head:
        return _dash_problem(body, bounds)
    return None


def info_problem(info: dict[str, Any], bounds: ResolveBounds) -> Exceeded | None:
    """The resolved info's declared duration (not live) and each format's fragment count."""
    live = bool(info.get("is_live")) or info.get("live_status") in ("is_live", "is_upcoming")
    duration = info.get("duration")
    seconds = None
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        seconds = float(duration)
    if not live and (problem := _duration(seconds, bounds)):
        return problem
    counts = [len(f.get("fragments") or ()) for f in info.get("formats") or () if isinstance(f, dict)]
    return _segments(max(counts, default=0), bounds)
