"""Probing in-process with PyAV: the :class:`MediaInfo` ffprobe gives, without starting a process.

An ffprobe process spends ~150 ms of CPU, most of it loading FFmpeg's shared libraries; PyAV (the ``av``
wheel: FFmpeg's libraries as a Python extension, the ``probe`` extra) opens the same file in a few ms
once imported (~0.1 s, at the first probe). It reads the same fields with the same demuxers, though from
its own FFmpeg build, not the system's: ``tests/integration/test_probe_equivalence.py`` compares both on
every media kind the test kit makes. Where they differ, or PyAV cannot tell, :func:`probe_file` returns
None and the caller asks ffprobe, whose verdict and words stay the engine's:
- PyAV is not installed, ``TORNADO_PROBE=ffprobe`` is set, the file does not open, has no stream, or a
  codec PyAV does not know;
- an MP4 whose ``moov`` cannot be read (the rotation comes from it: PyAV does not expose it);
- with ``audio_bit_rate``: an audio stream in MPEG-TS or a fragmented MP4, whose bit rate FFmpeg 8.1
  estimates differently from 5.1 (125,874 against 123,537 b/s for the DASH fixture's audio), which
  would change an audio-only job's quality label.
"""

from __future__ import annotations

import functools
import os
import struct
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

from .mp4header import Moov, read_moov
from .probe import MediaInfo, parse_probe

__all__ = ["ENV_PROBE", "fourcc", "loaded", "probe_file"]

ENV_PROBE = "TORNADO_PROBE"  # "ffprobe": always a process; anything else (default): in-process first
_OPTIONS = {"protocol_whitelist": "file,pipe"}  # as for ffprobe: a playlist named .mp4 fetches nothing
# the least FFmpeg reads past the header before describing the streams: for an unfragmented MP4 the
# header says it all (~0.7 ms instead of ~5 for the benchmark's 1.5 MB clip, which find_stream_info
# would otherwise decode a frame of); the equivalence test compares the answers with ffprobe's
_QUICK = {**_OPTIONS, "probesize": "32"}
_DEFAULT, _ATTACHED_PIC = 0x1, 0x400  # AV_DISPOSITION_* bits
_PRINTABLE = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ. -_")


@functools.cache
def _av() -> ModuleType | None:
    try:
        import av
    except ImportError:
        return None
    return av


def loaded() -> bool:
    """PyAV is installed and importable (imports it: ~0.1 s the first time)."""
    return _av() is not None


def probe_file(path: Path, *, audio_bit_rate: bool = True) -> MediaInfo | None:
    """``path``'s streams, or None when the in-process probe cannot tell (then ffprobe decides).

    Blocking (run it in a thread); ``path`` is a local file. ``audio_bit_rate``: the caller uses the
    audio streams' bit rates (an audio-only job's quality label)."""
    if os.environ.get(ENV_PROBE, "").strip().lower() == "ffprobe" or (av := _av()) is None:
        return None
    moov = _moov(path)
    # an MP4's streams are all in its moov: FFmpeg need not read (and decode) packets to describe them
    quick = moov is not None and not moov.fragmented
    found = _open(av, path, _QUICK if quick else _OPTIONS)
    if found is not None and quick and "mp4" not in found[0]["format_name"].split(","):
        found = _open(av, path, _OPTIONS)  # a moov in something else: the full look
    if found is None:
        return None
    fmt, streams = found
    families = set(fmt["format_name"].split(","))
    fragmented = False
    if "mp4" in families:
        if moov is None or len(moov.rotations) != len(streams):
            return None
        for raw, rotation in zip(streams, moov.rotations, strict=True):
            if raw["codec_type"] == "video":  # ffprobe shows the display matrix on video streams only
                raw["side_data_list"] = [{"rotation": rotation}]
        fragmented = moov.fragmented
    has_audio = any(raw["codec_type"] == "audio" for raw in streams)
    if audio_bit_rate and has_audio and (fragmented or "mpegts" in families):
        return None
    return parse_probe({"format": fmt, "streams": streams}, path)


def _moov(path: Path) -> Moov | None:
    try:
        return read_moov(path)
    except (OSError, struct.error):  # not an MP4 (its first bytes read as a box), or unreadable
        return None


def _open(av: ModuleType, path: Path, options: dict[str, str]) -> tuple[dict[str, Any], list[Any]] | None:
    """(format, streams) in ffprobe's shape; None when PyAV cannot tell."""
    try:
        with av.open("file:" + os.path.abspath(path), options=options, metadata_errors="ignore") as box:
            fmt, streams = _format(box, path), [_stream(s) for s in box.streams]
    except Exception:  # whatever PyAV raises (FFmpegError, OSError, ValueError ...): ffprobe's turn
        return None
    if not streams or any(raw["codec_name"] is None for raw in streams):
        return None
    return fmt, streams


def _format(box: Any, path: Path) -> dict[str, Any]:
    fmt: dict[str, Any] = {"format_name": box.format.name, "tags": dict(box.metadata)}
    if box.duration is not None and box.duration >= 0:
        fmt["duration"] = round(box.duration / 1_000_000, 6)  # AV_TIME_BASE units; ffprobe prints 6 places
    fmt["size"] = os.path.getsize(path)
    return fmt


def _stream(stream: Any) -> dict[str, Any]:
    """One stream in ffprobe's JSON shape, for the same :func:`parse_probe` (one set of rules)."""
    ctx = stream.codec_context
    disposition = int(stream.disposition)
    raw: dict[str, Any] = {
        "index": stream.index,
        "codec_type": stream.type,
        "codec_name": ctx.codec.canonical_name if ctx is not None and ctx.codec is not None else None,
        "tags": dict(stream.metadata),
        "disposition": {"default": disposition & _DEFAULT, "attached_pic": disposition & _ATTACHED_PIC},
    }
    if stream.duration is not None and stream.time_base is not None:
        raw["duration"] = round(float(stream.duration * Fraction(stream.time_base)), 6)
    if ctx is None:
        return raw
    raw["codec_tag_string"] = fourcc(ctx.codec_tag)
    raw["bit_rate"] = ctx.bit_rate or None
    if stream.type == "video":
        raw["width"], raw["height"] = ctx.width or None, ctx.height or None
    elif stream.type == "audio":
        raw["channels"], raw["sample_rate"] = ctx.channels or None, ctx.sample_rate or None
    return raw


def fourcc(tag: str) -> str:
    """FFmpeg's ``av_fourcc_make_string`` of PyAV's 4-character tag: ``avc1``, ``[27][0][0][0]`` (pure)."""
    out = []
    for byte in tag.encode("latin-1", errors="replace")[:4]:
        out.append(chr(byte) if byte in _PRINTABLE else f"[{byte - 256 if byte > 127 else byte}]")
    return "".join(out)
