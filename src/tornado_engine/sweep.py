"""Sweeping the work dir: job folders no attempt can use any more go; running and resumable ones stay.

The work dir is this engine's own slot of ``DATA_DIR/tmp`` (:mod:`tornado_engine.workspace`): other
engines on the data folder work in slots of their own, so the store this engine uses is the one that
knows every job whose folder can be here."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Container
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from .checkpoint import Checkpoint, this_host
from .models import Job
from .partialfile import holds_partials
from .states import TERMINAL, Status
from .store.base import JobStore

_SLOT = re.compile(r"engine-\d+")  # an engine's slot of DATA_DIR/tmp (workspace.py)

__all__ = ["remove_job_folders", "sweep"]


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


def remove_job_folders(data_dir: Path, job_id: str, checkpoint: dict[str, Any] | None) -> int:
    """Blocking: remove a job's temporary folders on this host, in whichever slot of ``data_dir/tmp``
    they are and where its ``checkpoint`` points (maybe another data folder). -> how many went.

    Only once the store has the job ended: no attempt can use them then, whichever engine holds the slot
    now, and an engine that died cannot clean up after itself."""
    folders = list((data_dir / "tmp").glob(f"engine-*/{job_id}")) if job_id else []
    mark = Checkpoint.from_data(checkpoint)
    if mark is not None and mark.host == this_host():
        folders.append(Path(mark.folder))
    removed = 0
    for folder in {f for f in folders if f.name == job_id and _SLOT.fullmatch(f.parent.name)}:
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed
