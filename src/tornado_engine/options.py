"""Media options of a job request: their rules and what they mean for the stages (pure: no I/O).

``JobRequest`` calls the ``parse_*``/``check_*`` functions while validating; the runner turns a validated
request into one :class:`MediaOptions`, which the resolver, downloader and muxer read. Quality presets
map to per-encoder CRF and speed here, so ``ffmpeg.py`` only applies them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args

from .codecs import (
    AUDIO_CONTAINERS,
    AUDIO_FORMATS,
    DEFAULT_AUDIO_FORMAT,
    VIDEO_CHOICES,
    AudioContainer,
    Container,
    VideoContainer,
)
from .errors import InvalidRequest

__all__ = [
    "DEFAULT_SUBTITLE_LANGUAGES",
    "MAX_RESOLUTIONS",
    "MAX_WAIT_SECONDS",
    "QUALITY_PRESETS",
    "MaxResolution",
    "MediaOptions",
    "MediaRequest",
    "QualityPreset",
    "audio_quality",
    "check_combinations",
    "encoder_settings",
    "parse_clip_time",
    "parse_languages",
    "parse_max_resolution",
    "parse_seconds",
    "video_quality_label",
]

MaxResolution = Literal["best", "2160", "1440", "1080", "720", "480", "360"]
QualityPreset = Literal["highest", "high", "medium", "low", "lowest"]

MAX_RESOLUTIONS: tuple[MaxResolution, ...] = get_args(MaxResolution)
DEFAULT_SUBTITLE_LANGUAGES: tuple[str, ...] = ("en",)
MAX_WAIT_SECONDS = 12 * 3600  # cap for max_duration and wait_for_video: a job holds a worker slot
_MAX_CLIP_SECONDS = 100 * 3600
_MAX_LANGUAGES = 20


# quality_preset -> encoder -> (CRF, speed). CRF scales differ per encoder, so one preset is one
# perceived quality: x264 23 ~ x265 28 ~ vp9 32. Speed is x264/x265's -preset, or vp9's
# "deadline:cpu-used". "medium" equals the defaults used without a preset (CRF 23, veryfast).
QUALITY_PRESETS: dict[QualityPreset, dict[str, tuple[int, str]]] = {
    "highest": {"libx264": (17, "slow"), "libx265": (20, "slow"), "libvpx-vp9": (20, "good:2")},
    "high": {"libx264": (20, "medium"), "libx265": (24, "medium"), "libvpx-vp9": (27, "good:4")},
    "medium": {"libx264": (23, "veryfast"), "libx265": (28, "veryfast"), "libvpx-vp9": (32, "realtime:8")},
    "low": {"libx264": (28, "veryfast"), "libx265": (32, "veryfast"), "libvpx-vp9": (38, "realtime:8")},
    # not "ultrafast": it turns off the tools that make files small, the point of "lowest"
    "lowest": {"libx264": (35, "veryfast"), "libx265": (38, "veryfast"), "libvpx-vp9": (48, "realtime:8")},
}
_DEFAULT_SPEED = {"libx264": "veryfast", "libx265": "veryfast", "libvpx-vp9": "realtime:8"}


def encoder_settings(encoder: str, crf: int, preset: QualityPreset | None) -> tuple[int, str]:
    """(CRF, speed) for ``encoder``: the preset's row when one is set, else the request's CRF."""
    if preset is not None:
        return QUALITY_PRESETS[preset][encoder]
    return crf, _DEFAULT_SPEED[encoder]


# -- field parsers (raise ValueError with a message naming the field) ------------------------------------

_HMS = re.compile(r"^(\d+):([0-5]?\d):([0-5]?\d(?:\.\d+)?)$")
_MS = re.compile(r"^(\d+):([0-5]?\d(?:\.\d+)?)$")
_SECONDS = re.compile(r"^\d+(?:\.\d+)?$")


def parse_clip_time(value: Any, label: str) -> float | None:
    """``HH:MM:SS``, ``MM:SS`` (fractions allowed on the seconds) or seconds -> seconds."""
    if value is None:
        return None
    bad = ValueError(f"{label} must be HH:MM:SS, MM:SS or seconds (got {value!r})")
    if isinstance(value, bool):
        raise bad
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if m := _HMS.match(text):
            seconds = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
        elif m := _MS.match(text):
            seconds = int(m[1]) * 60 + float(m[2])
        elif _SECONDS.match(text):
            seconds = float(text)
        else:
            raise bad
    else:
        raise bad
    if not math.isfinite(seconds) or seconds < 0:
        raise bad
    if seconds > _MAX_CLIP_SECONDS:
        raise ValueError(f"{label} too large (max {_MAX_CLIP_SECONDS // 3600} hours)")
    return round(seconds, 3)


def parse_seconds(value: Any, label: str, *, maximum: int = MAX_WAIT_SECONDS) -> int | None:
    """A whole number of seconds from 1 to ``maximum``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ValueError(f"{label} must be a whole number of seconds from 1 to {maximum} (got {value!r})")
    return value


def parse_max_resolution(value: Any) -> str:
    """``best`` or a short-side height; 720, "720" and "720p" are the same."""
    text = str(value).strip().lower() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    text = text.removesuffix("p")
    if text in MAX_RESOLUTIONS:
        return text
    raise ValueError(f"Max resolution must be one of: {', '.join(MAX_RESOLUTIONS)} (got {value!r})")


# BCP 47-ish: "en", "pt-BR", "zh-Hans". Strict, because yt-dlp reads these as regular expressions.
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,2}$")


def parse_languages(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise ValueError("Subtitle languages must be a non-empty list of language codes such as ['en']")
    if len(value) > _MAX_LANGUAGES:
        raise ValueError(f"Subtitle languages: at most {_MAX_LANGUAGES} languages")
    out: list[str] = []
    for item in value:
        # "all" would be yt-dlp's "every language": not a code, and not one subtitle_url
        if not isinstance(item, str) or not _LANGUAGE.match(item) or item.lower() == "all":
            raise ValueError(f"Subtitle languages: {item!r} is not a language code such as 'en' or 'pt-BR'")
        if item not in out:
            out.append(item)
    return tuple(out)


# -- combinations (called once the fields are valid) ---------------------------------------------------


class MediaRequest(Protocol):
    """The fields of a ``JobRequest`` this module reads (a protocol: options must not import models)."""

    @property
    def format(self) -> VideoContainer: ...
    @property
    def video_codec(self) -> str: ...
    @property
    def audio_codec(self) -> str: ...
    @property
    def audio_only(self) -> bool: ...
    @property
    def audio_format(self) -> AudioContainer | None: ...
    @property
    def max_resolution(self) -> str: ...
    @property
    def quality_preset(self) -> QualityPreset | None: ...
    @property
    def clip_start(self) -> float | None: ...
    @property
    def clip_end(self) -> float | None: ...
    @property
    def download_subtitles(self) -> bool: ...
    @property
    def subtitle_languages(self) -> tuple[str, ...] | None: ...
    @property
    def download_thumbnail(self) -> bool: ...
    @property
    def live_recording(self) -> bool: ...
    @property
    def live_from_start(self) -> bool: ...
    @property
    def max_duration(self) -> int | None: ...
    @property
    def wait_for_video(self) -> int | None: ...


def _or_list(items: Sequence[str]) -> str:
    return " or ".join(items) if len(items) < 3 else f"{', '.join(items[:-1])} or {items[-1]}"


def check_combinations(req: MediaRequest) -> None:
    """Refuse option combinations that cannot work. Raises :class:`InvalidRequest` naming a field."""
    if req.audio_format is not None and not req.audio_only:
        raise InvalidRequest("Audio format applies only with audio_only", "audio_format")
    if req.audio_only:
        fmt = AUDIO_FORMATS[req.audio_format or DEFAULT_AUDIO_FORMAT]
        if req.format != "mp4":
            raise InvalidRequest(
                "Format is a video container; with audio_only choose audio_format "
                f"({', '.join(AUDIO_CONTAINERS)})",
                "format",
            )
        if req.video_codec != "copy":
            raise InvalidRequest("Video codec does not apply to audio_only", "video_codec")
        if req.audio_codec not in ("copy", fmt.request_codec):
            allowed = " or ".join(c for c in ("copy", fmt.request_codec) if c)
            raise InvalidRequest(
                f"Audio format {fmt.ext} holds {fmt.codec} audio; use audio_codec {allowed}", "audio_codec"
            )
        if req.max_resolution != "best":
            raise InvalidRequest("Max resolution does not apply to audio_only", "max_resolution")
        if req.quality_preset is not None:
            raise InvalidRequest("Quality preset applies to video; not with audio_only", "quality_preset")
    if req.quality_preset is not None and req.video_codec == "copy":
        raise InvalidRequest(
            f"Quality preset needs a video codec to encode with ({_or_list(VIDEO_CHOICES[1:])}); "
            "copy does not re-encode",
            "quality_preset",
        )
    if req.clip_start is not None and req.clip_end is not None and req.clip_end <= req.clip_start:
        raise InvalidRequest(
            f"Clip end must be after clip start (got start {req.clip_start:g} s, end {req.clip_end:g} s)",
            "clip_end",
        )
    if req.subtitle_languages is not None and not req.download_subtitles:
        raise InvalidRequest("Subtitle languages apply only with download_subtitles", "subtitle_languages")
    if not req.live_recording:
        for name in ("live_from_start", "max_duration", "wait_for_video"):
            if getattr(req, name):
                raise InvalidRequest(f"{name} applies only with live_recording", name)
    elif req.clip_start is not None or req.clip_end is not None:
        raise InvalidRequest(
            "Clips do not apply to live recordings; use max_duration",
            "clip_start" if req.clip_start is not None else "clip_end",
        )


# -- what the stages read -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaOptions:
    """The media options of one validated request, in the form the stages use."""

    container: Container  # the muxer's target: a video container, or an audio format (audio_only)
    audio_only: bool = False
    max_height: int | None = None  # cap on the short side; None = best
    quality_preset: QualityPreset | None = None
    clip: tuple[float, float | None] | None = None  # (start, end or None = to the end)
    subtitle_languages: tuple[str, ...] = ()  # empty: no subtitles
    thumbnail: bool = False
    live_recording: bool = False
    live_from_start: bool = False
    max_duration: int | None = None
    wait_for_video: int | None = None

    @property
    def extension(self) -> str:
        return self.container

    @property
    def requested_quality(self) -> str:
        if self.audio_only:
            return "audio"
        return f"{self.max_height}p" if self.max_height else "best"

    @classmethod
    def from_request(cls, req: MediaRequest) -> MediaOptions:
        clip = None
        if req.clip_start is not None or req.clip_end is not None:
            clip = (req.clip_start or 0.0, req.clip_end)
        langs = (req.subtitle_languages or DEFAULT_SUBTITLE_LANGUAGES) if req.download_subtitles else ()
        return cls(
            container=(req.audio_format or DEFAULT_AUDIO_FORMAT) if req.audio_only else req.format,
            audio_only=req.audio_only,
            max_height=None if req.max_resolution == "best" else int(req.max_resolution),
            quality_preset=req.quality_preset,
            clip=clip,
            subtitle_languages=langs,
            thumbnail=req.download_thumbnail,
            live_recording=req.live_recording,
            live_from_start=req.live_from_start,
            max_duration=req.max_duration,
            wait_for_video=req.wait_for_video,
        )


def video_quality_label(width: int | None, height: int | None) -> str | None:
    """``360p`` from the shorter side, so a 720x1280 portrait video is ``720p``."""
    return f"{min(width, height)}p" if width and height else None


def audio_quality(bit_rate: int | None) -> str:
    """What an audio-only job reports as its actual quality: the audio bitrate, e.g. ``128k``."""
    return f"{round(bit_rate / 1000)}k" if bit_rate else "audio"
