"""Uploader: put the finished file into the storage target under its deterministic key."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from pathlib import Path

from ..storage import Progress, StorageTarget, StoredObject

__all__ = ["upload"]


async def upload(
    target: StorageTarget,
    local: Path,
    key: str,
    *,
    executor: Executor | None = None,
    move: bool = True,
    on_progress: Progress | None = None,
) -> StoredObject:
    """``move``: the file is the job's own temporary, so a local target may take it by rename.
    ``on_progress(done, total)`` is called from the upload's threads."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        executor, lambda: target.put(local, key, move=move, on_progress=on_progress)
    )
