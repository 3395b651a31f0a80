"""Sweeping the work dir: job folders no attempt can use any more go; running and resumable ones stay.

The work dir is this engine's own slot of ``DATA_DIR/tmp`` (:mod:`tornado_engine.workspace`): other
engines on the data folder work in slots of their own, so the store this engine uses is the one that
knows every job whose folder can be here."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Container
from concurrent.futures import Executor
from pathlib import Path

from .checkpoint import Checkpoint, this_host
from .models import Job
from .partialfile import holds_partials
from .states import TERMINAL, Status
from .store.base import JobStore

__all__ = ["sweep"]


async def sweep(
    work_dir: Path, active: Container[str], store: JobStore, executor: Executor | None
) -> tuple[int, int]:
    """Remove folders whose job ended, is gone, or has no checkpoint pointing here. -> (removed, kept)

    ``active``: the ids of jobs running here (read again after each store call: it changes meanwhile)."""
    entries = await asyncio.get_running_loop().run_in_executor(
        executor, lambda: sorted(work_dir.iterdir()) if work_dir.is_dir() else []
    )
    removed = kept = 0
    for entry in entries:
        if entry.name in active or (
            (job := await store.get_job(entry.name)) is not None and _worth_keeping(job, entry)
        ):
            kept += 1
            continue
        if entry.name in active:  # an attempt started while we asked the store
            kept += 1
            continue
        # synchronously: no attempt can start for this job while the folder goes
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed, kept


def _worth_keeping(job: Job, folder: Path) -> bool:
    """A job folder stays while its job may still run, here or (Processing) anywhere, and use it."""
    if job.status in TERMINAL:
        return False
    if job.status is Status.PROCESSING:
        return True  # here, or elsewhere: its lease decides, and a later sweep looks again
    checkpoint = Checkpoint.from_data(job.checkpoint)
    if checkpoint is not None and checkpoint.folder == str(folder) and checkpoint.host == this_host():
        return True
    return holds_partials(folder)  # a partial download its next attempt resumes (here or adopted)
