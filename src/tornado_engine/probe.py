"""ffprobe's JSON as typed data, and which container a probed file already is (pure: no I/O).

The muxer stage runs ffprobe (:func:`tornado_engine.pipeline.muxer.probe`); :mod:`tornado_engine.ffmpeg`
plans from what this module parses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .codecs import Container
from .errors import MuxError

__all__ = ["MediaInfo", "StreamInfo", "StreamKind", "detect_container", "normal_rotation", "parse_probe"]

StreamKind = Literal["video", "audio", "subtitle", "other"]


@dataclass(frozen=True)
class StreamInfo:
    index: int
    kind: StreamKind
    codec: str  # ffprobe's codec_name: h264, hevc, vp9, av1, aac, opus, mp3, vorbis ...
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    bit_rate: int | None = None
    channels: int | None = None
    sample_rate: int | None = None
    codec_tag: str | None = None  # e.g. hvc1 / hev1 / avc1
    language: str | None = None
    default: bool = False
    attached_pic: bool = False  # cover art: a "video" stream that is one picture
    rotation: int = 0  # the display matrix's rotation in degrees, as ffprobe prints it (-90: shown upright)


@dataclass(frozen=True)
class MediaInfo:
    path: Path
    duration: float | None
    streams: tuple[StreamInfo, ...]
    format_name: str  # ffprobe's, e.g. "mov,mp4,m4a,3gp,3g2,mj2" or "matroska,webm"
    major_brand: str | None = None
    size: int | None = None

    def of_kind(self, kind: StreamKind) -> tuple[StreamInfo, ...]:
        return tuple(s for s in self.streams if s.kind == kind)


def _signed(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _float(value: Any) -> float | None:
    number = _signed(value)
    return number if number is not None and number >= 0 else None


def _int(value: Any) -> int | None:
    number = _float(value)
    return int(number) if number is not None else None


_HMS = re.compile(r"^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$")


def _stream_duration(raw: Mapping[str, Any]) -> float | None:
    if (value := _float(raw.get("duration"))) is not None:
        return value
    # Matroska keeps per-stream durations in a tag: DURATION=00:00:02.000000000
    tags = raw.get("tags") or {}
    text = next((v for k, v in tags.items() if k.upper() == "DURATION"), None)
    if isinstance(text, str) and (m := _HMS.match(text.strip())):
        return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
    return None


def _rotation(raw: Mapping[str, Any]) -> int:
    # ffprobe >= 5 puts it in the display matrix side data; older ones wrote a "rotate" tag (opposite sign)
    for side in raw.get("side_data_list") or ():
        if isinstance(side, Mapping) and (value := _signed(side.get("rotation"))) is not None:
            return normal_rotation(value)
    tag = _signed((raw.get("tags") or {}).get("rotate"))
    return normal_rotation(-tag) if tag is not None else 0


def normal_rotation(degrees: float) -> int:
    """Degrees rounded and brought into (-180, 180], as ffprobe prints them: 270 -> -90, -180 -> 180."""
    value = round(degrees) % 360
    return value - 360 if value > 180 else value


def parse_probe(data: Mapping[str, Any], path: Path | str | None = None) -> MediaInfo:
    """``ffprobe -print_format json -show_format -show_streams`` output -> :class:`MediaInfo` (pure)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("format", {}), Mapping):
        raise MuxError("ffprobe returned unexpected data", kind="invalid_media")
    fmt: Mapping[str, Any] = data.get("format") or {}
    streams: list[StreamInfo] = []
    for raw in data.get("streams") or ():
        if not isinstance(raw, Mapping) or not isinstance(raw.get("index"), int):
            continue
        kind = raw.get("codec_type")
        disposition = raw.get("disposition") or {}
        tags = raw.get("tags") or {}
        streams.append(
            StreamInfo(
                index=raw["index"],
                kind=kind if kind in ("video", "audio", "subtitle") else "other",
                codec=str(raw.get("codec_name") or "unknown"),
                width=_int(raw.get("width")),
                height=_int(raw.get("height")),
                duration=_stream_duration(raw),
                bit_rate=_int(raw.get("bit_rate")),
                channels=_int(raw.get("channels")),
                sample_rate=_int(raw.get("sample_rate")),
                codec_tag=raw.get("codec_tag_string") or None,
                language=tags.get("language"),
                default=bool(disposition.get("default")),
                attached_pic=bool(disposition.get("attached_pic")),
                rotation=_rotation(raw),
            )
        )
    duration = _float(fmt.get("duration"))
    if duration is None:
        known = [s.duration for s in streams if s.duration is not None]
        duration = max(known) if known else None
    filename = str(fmt.get("filename") or "")
    brand = next((v for k, v in (fmt.get("tags") or {}).items() if k.lower() == "major_brand"), None)
    return MediaInfo(
        path=Path(path) if path is not None else Path(filename.removeprefix("file:")),
        duration=duration,
        streams=tuple(streams),
        format_name=str(fmt.get("format_name") or ""),
        major_brand=brand.strip() if isinstance(brand, str) else None,
        size=_int(fmt.get("size")),
    )


def detect_container(info: MediaInfo) -> Container | None:
    """Which of our containers a probed file already is, or None (e.g. MPEG-TS named .mp4, pitfall 9)."""
    families = set(info.format_name.split(","))
    if "mp4" in families:
        if info.major_brand == "qt":
            return "mov"
        return "m4a" if info.path.suffix.lower() == ".m4a" else "mp4"
    if "mp3" in families:
        return "mp3"
    if "ogg" in families:
        return "opus" if info.path.suffix.lower() == ".opus" else "ogg"
    if "matroska" in families:
        # ffprobe reports both as "matroska,webm"; the name decides (a WebM is also valid Matroska).
        return "webm" if info.path.suffix.lower() == ".webm" else "mkv"
    return None
