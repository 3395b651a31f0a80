"""Checkpoints: what an attempt's stages have finished, so the next attempt can resume there (pure).

A checkpoint is saved with the job (fenced, in the same write that enters the next step) and names the
files on this machine's disk that the finished stage produced. A rescued attempt (a crash, a lost lease,
a shutdown that re-queued the job, a store outage) resumes from it only when it runs on the same host,
in the same job folder, and every file is still there with the size recorded: anything else starts the
job from the beginning, which is always correct, only slower.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["DOWNLOADED", "MUXED", "Checkpoint", "FileMark", "this_host"]

DOWNLOADED = "downloaded"  # the media (and any subtitles/thumbnail) are in the job folder
MUXED = "muxed"  # the output file is ready to upload
_STAGES = (DOWNLOADED, MUXED)


def this_host() -> str:
    return socket.gethostname()


@dataclass(frozen=True)
class FileMark:
    """One file in the job folder: its name (no path) and its size when the stage finished."""

    name: str
    size: int


@dataclass(frozen=True)
class Checkpoint:
    stage: str
    host: str
    folder: str  # the job folder, absolute
    media: tuple[FileMark, ...]  # the downloaded media files, in the order the muxer takes them
    format_ids: tuple[str, ...] = ()
    download_bytes: int = 0
    duration: float | None = None  # the source's duration as the resolver saw it (for the muxer)
    subtitles: tuple[tuple[str, FileMark], ...] = ()  # (language, file)
    thumbnail: FileMark | None = None
    output: FileMark | None = None  # MUXED: the file to upload

    def files(self) -> list[FileMark]:
        marks = [*self.media, *(mark for _, mark in self.subtitles)]
        marks += [m for m in (self.thumbnail, self.output) if m is not None and m not in marks]
        return marks

    def usable(self, host: str, folder: str, size_of: Callable[[str], int | None]) -> bool:
        """True when this attempt can resume here: same host and folder, every file present and whole.

        ``size_of(name)`` gives a file's size in the folder, or None when it is missing."""
        if self.host != host or self.folder != folder or not self.media:
            return False
        if self.stage == MUXED and self.output is None:
            return False
        return all(size_of(mark.name) == mark.size for mark in self.files())

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "stage": self.stage,
            "host": self.host,
            "folder": self.folder,
            "media": [_mark_data(m) for m in self.media],
            "format_ids": list(self.format_ids),
            "download_bytes": self.download_bytes,
            "duration": self.duration,
            "subtitles": [[lang, _mark_data(m)] for lang, m in self.subtitles],
        }
        if self.thumbnail is not None:
            data["thumbnail"] = _mark_data(self.thumbnail)
        if self.output is not None:
            data["output"] = _mark_data(self.output)
        return data

    @classmethod
    def from_data(cls, data: object) -> Checkpoint | None:
        """The checkpoint a job record holds, or None when there is none or it is not one we wrote."""
        if not isinstance(data, dict) or data.get("stage") not in _STAGES:
            return None
        try:
            duration = data.get("duration")
            return cls(
                stage=data["stage"],
                host=_text(data["host"]),
                folder=_text(data["folder"]),
                media=tuple(_mark(m) for m in data["media"]),
                format_ids=tuple(_text(f) for f in data.get("format_ids", [])),
                download_bytes=int(data.get("download_bytes", 0)),
                duration=float(duration) if isinstance(duration, int | float) else None,
                subtitles=tuple((_text(lang), _mark(m)) for lang, m in data.get("subtitles", [])),
                thumbnail=_mark(data["thumbnail"]) if data.get("thumbnail") else None,
                output=_mark(data["output"]) if data.get("output") else None,
            )
        except (KeyError, TypeError, ValueError):
            return None


def _mark_data(mark: FileMark) -> dict[str, Any]:
    return {"name": mark.name, "size": mark.size}


def _mark(data: Any) -> FileMark:
    name = _text(data["name"])
    # a bare file name: a record edited to point elsewhere must not make us read (or upload) another file
    if not name or "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
        raise ValueError(f"bad file name in checkpoint: {name!r}")
    size = data["size"]
    if not isinstance(size, int) or size < 0:
        raise ValueError("bad file size in checkpoint")
    return FileMark(name, size)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("text expected")
    return value
