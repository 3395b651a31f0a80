"""Resuming a job where an earlier attempt stopped: checkpoints to and from the stages' results.

:mod:`tornado_engine.checkpoint` says what a checkpoint is and when it is usable (pure); this module
turns a finished download or mux into one, finds whether the job folder still holds a usable one, and
rebuilds the stage results an attempt resumes with.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from dataclasses import replace
from pathlib import Path

from .checkpoint import DOWNLOADED, MUXED, Checkpoint, FileMark, this_host
from .models import Job
from .pipeline.context import Fetched, Muxed
from .pipeline.sidecar import SideFiles

__all__ = ["downloaded", "fetched_from", "muxed", "muxed_from", "resumable"]

_log = logging.getLogger("tornado_engine.runner")


def _mark(path: Path) -> FileMark:
    return FileMark(path.name, path.stat().st_size)


def downloaded(folder: Path, fetched: Fetched) -> Checkpoint:
    """The checkpoint of a finished download (stats its files)."""
    return Checkpoint(
        stage=DOWNLOADED,
        host=this_host(),
        folder=str(folder),
        media=tuple(_mark(p) for p in fetched.files),
        format_ids=fetched.format_ids,
        download_bytes=fetched.bytes,
        duration=fetched.duration,
        subtitles=tuple((lang, _mark(p)) for lang, p in fetched.side.subtitles),
        thumbnail=_mark(fetched.side.thumbnail) if fetched.side.thumbnail else None,
    )


def muxed(download: Checkpoint, result: Muxed) -> Checkpoint:
    """The download's checkpoint extended by the mux's output (no second stat of the inputs)."""
    return replace(download, stage=MUXED, output=_mark(result.output))


def _side(folder: Path, checkpoint: Checkpoint) -> SideFiles:
    return SideFiles(
        subtitles=tuple((lang, folder / m.name) for lang, m in checkpoint.subtitles),
        thumbnail=folder / checkpoint.thumbnail.name if checkpoint.thumbnail else None,
    )


def fetched_from(folder: Path, checkpoint: Checkpoint) -> Fetched:
    return Fetched(
        files=tuple(folder / m.name for m in checkpoint.media),
        format_ids=checkpoint.format_ids,
        bytes=checkpoint.download_bytes,
        seconds=0.0,
        side=_side(folder, checkpoint),
        duration=checkpoint.duration,
    )


def muxed_from(folder: Path, checkpoint: Checkpoint) -> Muxed:
    assert checkpoint.output is not None  # Checkpoint.usable() checked it
    return Muxed(folder / checkpoint.output.name, side=_side(folder, checkpoint))


async def resumable(job: Job, folder: Path, executor: Executor | None) -> Checkpoint | None:
    """The previous attempt's checkpoint, if its files are here and whole; else None (and none on the job)."""
    checkpoint = Checkpoint.from_data(job.checkpoint)

    def size_of(name: str) -> int | None:
        try:
            return (folder / name).stat().st_size
        except OSError:
            return None

    if checkpoint is not None and await asyncio.get_running_loop().run_in_executor(
        executor, checkpoint.usable, this_host(), str(folder), size_of
    ):
        return checkpoint
    if checkpoint is not None:
        _log.info("job %s: the earlier attempt's files are not here; starting from the beginning", job.id)
    job.checkpoint = None
    return None
