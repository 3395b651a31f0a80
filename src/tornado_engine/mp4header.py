"""What PyAV does not say about an MP4/MOV file, from its ``moov`` box: each track's rotation, and
whether the file is fragmented (header parsing, no FFmpeg).

PyAV reads a file's streams but does not expose their display matrix (FFmpeg's stream side data), which
is where ffprobe finds a phone video's rotation. FFmpeg's mov demuxer builds that matrix from each
track's ``tkhd`` matrix (times the movie's ``mvhd`` matrix), one stream per ``trak`` in order; this
reads the same boxes. A fragmented file (``mvex`` in ``moov``: DASH, CMAF) is flagged because FFmpeg's
versions estimate its streams' bit rates differently (see :mod:`tornado_engine.avprobe`). Anything
unexpected (no ``moov``, a huge or broken one, a movie matrix that is not the identity) gives None: the
caller then asks ffprobe.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .probe import normal_rotation

__all__ = ["MAX_MOOV", "Moov", "display_rotation", "parse_moov", "read_moov"]

MAX_MOOV = 64 * 2**20  # a moov this large is read by ffprobe instead
_IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
_Matrix = tuple[float, ...]


@dataclass(frozen=True)
class Moov:
    rotations: tuple[int, ...]  # per trak, in order: the streams FFmpeg makes of them
    fragmented: bool  # an mvex box: the media is in moof/mdat fragments after the moov


def display_rotation(matrix: Sequence[float]) -> int:
    """FFmpeg's ``av_display_rotation_get`` of a row-major 3x3 matrix, in ffprobe's convention (degrees,
    brought into (-180, 180]); 0 for a degenerate matrix (pure)."""
    scale0, scale1 = math.hypot(matrix[0], matrix[3]), math.hypot(matrix[1], matrix[4])
    if not scale0 or not scale1:
        return 0
    return normal_rotation(-math.degrees(math.atan2(matrix[1] / scale1, matrix[0] / scale0)))


def _boxes(
    data: bytes | memoryview, start: int = 0, end: int | None = None
) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box in ``data[start:end]``; stops at a broken one."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1 and pos + 16 <= end:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield bytes(kind), pos + header, pos + size
        pos += size


def _matrix(data: bytes | memoryview, at: int) -> _Matrix:
    """A box's matrix: a, b, u, c, d, v, x, y, w as 16.16, 16.16, 2.30 fixed point per row."""
    raw = struct.unpack_from(">9i", data, at)
    return tuple(v / (1 << 30 if i % 3 == 2 else 1 << 16) for i, v in enumerate(raw))


def _full_box_matrix(data: bytes | memoryview, start: int, end: int, v0: int, v1: int) -> _Matrix | None:
    """The matrix of an ``mvhd``/``tkhd`` box: it sits ``v0``/``v1`` bytes in, by the box's version."""
    at = start + (v1 if data[start] == 1 else v0)
    return _matrix(data, at) if at + 36 <= end else None


def parse_moov(moov: bytes | memoryview) -> Moov | None:
    """What a ``moov`` payload says (pure); None if it cannot tell."""
    rotations: list[int] = []
    fragmented = False
    for kind, start, end in _boxes(moov):
        if kind == b"mvhd":
            movie = _full_box_matrix(moov, start, end, 36, 48)
            if movie is None or any(abs(a - b) > 1e-6 for a, b in zip(movie, _IDENTITY, strict=True)):
                return None  # FFmpeg multiplies the two: not worth doing for what nothing writes
        elif kind == b"trak":
            tkhd = next(((s, e) for k, s, e in _boxes(moov, start, end) if k == b"tkhd"), None)
            matrix = _full_box_matrix(moov, *tkhd, 40, 52) if tkhd else None
            if matrix is None:
                return None
            rotations.append(display_rotation(matrix))
        elif kind == b"mvex":
            fragmented = True
    return Moov(tuple(rotations), fragmented)


def read_moov(path: Path) -> Moov | None:
    """The ``moov`` of the MP4/MOV file at ``path`` (blocking); None if it cannot tell."""
    with path.open("rb") as f:
        while header := f.read(8):
            if len(header) < 8:
                return None
            size, kind = struct.unpack(">I4s", header)
            body = 8
            if size == 1:
                size, body = struct.unpack(">Q", f.read(8))[0], 16
            if kind == b"moov":
                length = (size or MAX_MOOV + 1) - body
                if length > MAX_MOOV or length < 0:
                    return None
                moov = f.read(length)
                return parse_moov(moov) if len(moov) == length else None
            if size < body:  # 0 (to the end of the file) or broken, before any moov
                return None
            f.seek(size - body, 1)
    return None
