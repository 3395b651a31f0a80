"""The moov parser (rotation per track, fragmented or not), the fourcc rule and rotation in ffprobe's JSON."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest

from tornado_engine.avprobe import fourcc
from tornado_engine.mp4header import Moov, display_rotation, parse_moov, read_moov
from tornado_engine.probe import normal_rotation, parse_probe

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def matrix(degrees: float) -> tuple[float, ...]:
    """What FFmpeg's av_display_rotation_set(``degrees``) writes (it turns by minus that angle)."""
    c, s = math.cos(math.radians(-degrees)), math.sin(math.radians(-degrees))
    return (c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0)


def fixed(m: tuple[float, ...]) -> bytes:
    return struct.pack(">9i", *(round(v * (1 << 30 if i % 3 == 2 else 1 << 16)) for i, v in enumerate(m)))


def mvhd(m: tuple[float, ...] = IDENTITY) -> bytes:
    return box(b"mvhd", b"\0" * 4 + b"\0" * 16 + b"\0" * 16 + fixed(m) + b"\0" * 28)


def tkhd(m: tuple[float, ...], version: int = 0) -> bytes:
    times = b"\0" * (32 if version == 1 else 20)
    return box(b"tkhd", bytes([version, 0, 0, 0]) + times + b"\0" * 16 + fixed(m) + b"\0" * 8)


def trak(m: tuple[float, ...], version: int = 0) -> bytes:
    return box(b"trak", tkhd(m, version) + box(b"mdia", b"\0" * 12))


def test_rotations_per_track_in_order_both_tkhd_versions() -> None:
    moov = mvhd() + trak(matrix(-90)) + trak(IDENTITY, version=1) + trak(matrix(180), version=1)
    assert parse_moov(moov) == Moov((90, 0, 180), fragmented=False)


def test_fragmented_when_mvex() -> None:
    assert parse_moov(mvhd() + trak(IDENTITY) + box(b"mvex", box(b"trex", b"\0" * 24))) == Moov((0,), True)


def test_cannot_tell_a_movie_matrix_or_a_missing_tkhd() -> None:
    assert parse_moov(mvhd(matrix(90)) + trak(IDENTITY)) is None
    assert parse_moov(mvhd() + box(b"trak", box(b"mdia", b""))) is None


def test_a_broken_box_ends_the_walk() -> None:
    moov = mvhd() + trak(matrix(90)) + struct.pack(">I4s", 4000, b"trak") + b"\0" * 10
    assert parse_moov(moov) == Moov((-90,), False)


@pytest.mark.parametrize(("degrees", "expected"), [(0, 0), (90, -90), (-90, 90), (180, 180), (270, 90)])
def test_display_rotation_is_ffmpegs_sign(degrees: float, expected: int) -> None:
    # av_display_rotation_get(av_display_rotation_set(d)) is -d: ffprobe prints the former
    assert display_rotation(matrix(degrees)) == expected


def test_display_rotation_of_a_degenerate_matrix() -> None:
    assert display_rotation((0.0,) * 9) == 0


@pytest.mark.parametrize(
    ("value", "expected"), [(270, -90), (-180, 180), (180.4, 180), (-90.0, -90), (359.6, 0)]
)
def test_normal_rotation(value: float, expected: int) -> None:
    assert normal_rotation(value) == expected


def test_read_moov_skips_boxes_and_finds_moov_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "late.mp4"
    large = struct.pack(">I4sQ", 1, b"mdat", 16 + 5) + b"x" * 5  # a 64-bit size
    path.write_bytes(box(b"ftyp", b"isom" + b"\0" * 4) + large + box(b"moov", mvhd() + trak(matrix(90))))
    assert read_moov(path) == Moov((-90,), False)


def test_read_moov_cannot_tell(tmp_path: Path) -> None:
    none = tmp_path / "none.mp4"
    none.write_bytes(box(b"ftyp", b"isom") + box(b"mdat", b"x" * 10))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(box(b"ftyp", b"isom") + box(b"moov", mvhd() + trak(IDENTITY))[:-10])
    to_end = tmp_path / "to_end.mp4"
    to_end.write_bytes(struct.pack(">I4s", 0, b"mdat") + b"x" * 10)
    assert read_moov(none) is None and read_moov(cut) is None and read_moov(to_end) is None


@pytest.mark.parametrize(
    ("tag", "expected"),
    [("avc1", "avc1"), ("\x1b\0\0\0", "[27][0][0][0]"), ("\0\0\0\0", "[0][0][0][0]"), ("hev1", "hev1")],
)
def test_fourcc_as_ffprobe_prints_it(tag: str, expected: str) -> None:
    assert fourcc(tag) == expected


def test_rotation_from_ffprobe_side_data_or_old_rotate_tag() -> None:
    streams = [
        {"index": 0, "codec_type": "video", "codec_name": "h264", "side_data_list": [{"rotation": -90}]},
        {"index": 1, "codec_type": "video", "codec_name": "h264", "tags": {"rotate": "90"}},
        {
            "index": 2,
            "codec_type": "video",
            "codec_name": "h264",
            "side_data_list": [{"side_data_type": "x"}],
        },
    ]
    info = parse_probe({"format": {"format_name": "mov,mp4"}, "streams": streams}, "a.mp4")
    assert [s.rotation for s in info.streams] == [-90, -90, 0]
