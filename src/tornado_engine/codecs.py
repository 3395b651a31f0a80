"""The container and codec vocabulary, and which fit together (pure: no I/O).

The one table for every place that names a container or a codec: ``JobRequest`` validation and the CLI's
choices, the audio formats of ``audio_only``, the ffmpeg plan (encoders, muxers, what a stream copy may
keep) and yt-dlp's format preference. A container's name is also its file extension. Requests name codecs
("h265") differently from ffprobe ("hevc"): the encoder tables give both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from .errors import InvalidRequest

__all__ = [
    "AUDIO_BITRATES",
    "AUDIO_CHOICES",
    "AUDIO_CONTAINERS",
    "AUDIO_ENCODERS",
    "AUDIO_FALLBACK",
    "AUDIO_FORMATS",
    "CONTAINERS",
    "DEFAULT_AUDIO_FORMAT",
    "ISO_BMFF",
    "MUXERS",
    "VIDEO_CHOICES",
    "VIDEO_CONTAINERS",
    "VIDEO_ENCODERS",
    "VIDEO_FALLBACK",
    "AudioBitrate",
    "AudioChoice",
    "AudioContainer",
    "AudioFormat",
    "Container",
    "Encoder",
    "VideoChoice",
    "VideoContainer",
    "check_combination",
    "holds_audio",
    "holds_video",
    "video_tag",
]

VideoContainer = Literal["mp4", "mkv", "webm", "mov"]  # JobRequest.format
AudioContainer = Literal["m4a", "mp3", "ogg", "opus"]  # JobRequest.audio_format: no video stream
Container = Literal[VideoContainer, AudioContainer]  # what the muxer writes
VideoChoice = Literal["copy", "h264", "h265", "vp9"]  # JobRequest.video_codec
AudioChoice = Literal["copy", "aac", "opus", "mp3"]  # JobRequest.audio_codec
AudioBitrate = Literal["64k", "128k", "192k", "256k", "320k"]

DEFAULT_AUDIO_FORMAT: AudioContainer = "m4a"  # audio_only without an audio_format
VIDEO_CONTAINERS: tuple[VideoContainer, ...] = get_args(VideoContainer)
AUDIO_CONTAINERS: tuple[AudioContainer, ...] = get_args(AudioContainer)
CONTAINERS: tuple[Container, ...] = (*VIDEO_CONTAINERS, *AUDIO_CONTAINERS)
VIDEO_CHOICES: tuple[VideoChoice, ...] = get_args(VideoChoice)
AUDIO_CHOICES: tuple[AudioChoice, ...] = get_args(AudioChoice)
AUDIO_BITRATES: tuple[AudioBitrate, ...] = get_args(AudioBitrate)


@dataclass(frozen=True)
class Encoder:
    """How a request's codec choice is written: the ffmpeg encoder, and the codec ffprobe then reports."""

    encoder: str
    codec: str


VIDEO_ENCODERS: dict[str, Encoder] = {
    "h264": Encoder("libx264", "h264"),
    "h265": Encoder("libx265", "hevc"),
    "vp9": Encoder("libvpx-vp9", "vp9"),
}
AUDIO_ENCODERS: dict[str, Encoder] = {
    "aac": Encoder("aac", "aac"),
    "opus": Encoder("libopus", "opus"),
    "mp3": Encoder("libmp3lame", "mp3"),
    "vorbis": Encoder("libvorbis", "vorbis"),  # audio_format ogg only; not a JobRequest.audio_codec choice
}
# ffmpeg's muxer for each container: "ipod" is the m4a muxer (brand M4A); "opus" is Ogg with .opus ways
MUXERS: dict[Container, str] = {
    "mp4": "mp4", "mkv": "matroska", "webm": "webm", "mov": "mov",
    "m4a": "ipod", "mp3": "mp3", "ogg": "ogg", "opus": "opus",
}  # fmt: skip

# What each container takes by stream copy (ffprobe codec names; media recipes, section 6).
# None = anything. Vorbis in mp4 is accepted by ffmpeg but not playable (pitfall 10), so it is left out.
_VIDEO_OK: dict[str, frozenset[str] | None] = {
    "mp4": frozenset({"h264", "hevc", "vp9", "av1"}),
    "mov": frozenset({"h264", "hevc"}),
    "webm": frozenset({"vp8", "vp9", "av1"}),
    "mkv": None,
    **dict.fromkeys(AUDIO_CONTAINERS, frozenset[str]()),
}
_AUDIO_OK: dict[str, frozenset[str] | None] = {
    "mp4": frozenset({"aac", "mp3", "opus"}),
    "mov": frozenset({"aac", "mp3"}),
    "webm": frozenset({"opus", "vorbis"}),
    "mkv": None,
    "m4a": frozenset({"aac"}),
    "mp3": frozenset({"mp3"}),
    "ogg": frozenset({"vorbis"}),
    "opus": frozenset({"opus"}),
}
# ISO base media files: ffmpeg moves their index to the front (faststart) so playback starts before the end
ISO_BMFF: frozenset[Container] = frozenset({"mp4", "mov", "m4a"})
# what a stream is encoded to when the source's codec cannot be copied into the container
VIDEO_FALLBACK: dict[str, str] = {"mp4": "h264", "mkv": "h264", "webm": "vp9", "mov": "h264"}
AUDIO_FALLBACK: dict[str, str] = {
    "mp4": "aac", "mkv": "aac", "webm": "opus", "mov": "aac",
    "m4a": "aac", "mp3": "mp3", "ogg": "vorbis", "opus": "opus",
}  # fmt: skip


def holds_video(container: str, codec: str) -> bool:
    """Whether ``container`` can hold a video stream of ``codec`` (ffprobe's name) as it is."""
    return _accepts(_VIDEO_OK, container, codec)


def holds_audio(container: str, codec: str) -> bool:
    """Whether ``container`` can hold an audio stream of ``codec`` (ffprobe's name) as it is."""
    return _accepts(_AUDIO_OK, container, codec)


def video_tag(container: str, codec: str) -> str | None:
    """The codec tag a video stream needs in ``container``: default hev1 does not play on Apple devices."""
    return "hvc1" if codec == "hevc" and container in ("mp4", "mov") else None  # pitfall 10


def _accepts(table: dict[str, frozenset[str] | None], container: str, codec: str) -> bool:
    allowed = table[container]
    return codec != "unknown" and (allowed is None or codec in allowed)


@dataclass(frozen=True)
class AudioFormat:
    """An audio-only output: file extension, the codec it holds (ffprobe name) and its encoder."""

    ext: AudioContainer
    codec: str
    encoder: str
    request_codec: AudioChoice | None  # the JobRequest.audio_codec value naming the same codec, if any


def _audio_format(ext: AudioContainer) -> AudioFormat:
    codec = AUDIO_FALLBACK[ext]  # an audio container holds exactly one codec
    request_codec = next((c for c in AUDIO_CHOICES if c == codec), None)
    return AudioFormat(ext, codec, AUDIO_ENCODERS[codec].encoder, request_codec)


# m4a sources in AAC are copied, never re-encoded
AUDIO_FORMATS: dict[str, AudioFormat] = {ext: _audio_format(ext) for ext in AUDIO_CONTAINERS}


def check_combination(container: str, video_codec: str, audio_codec: str) -> None:
    """Refuse requests no source can satisfy (call at submit time). Raises :class:`InvalidRequest`."""
    if container not in MUXERS:
        raise InvalidRequest(f"Format must be one of: {', '.join(CONTAINERS)} (got {container!r})", "format")
    if video_codec != "copy":
        _check_codec("video", VIDEO_ENCODERS, _VIDEO_OK, container, video_codec)
    if audio_codec != "copy":
        _check_codec("audio", AUDIO_ENCODERS, _AUDIO_OK, container, audio_codec)


def _check_codec(
    kind: str,
    encoders: dict[str, Encoder],
    table: dict[str, frozenset[str] | None],
    container: str,
    choice: str,
) -> None:
    field = f"{kind}_codec"
    if choice not in encoders:
        raise InvalidRequest(f"Unknown {kind} codec {choice!r}", field)
    if not _accepts(table, container, encoders[choice].codec):
        ok = [c for c, enc in encoders.items() if _accepts(table, container, enc.codec)]
        raise InvalidRequest(
            f"{container} cannot hold {choice} {kind}; use {' or '.join(['copy', *ok])}, or choose mkv", field
        )
