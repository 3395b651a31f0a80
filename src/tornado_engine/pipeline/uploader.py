"""Uploader: put the finished file into the storage target under its deterministic key."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from pathlib import Path

from ..storage import StorageTarget, StoredObject

__all__ = ["upload"]


async def upload(
    target: StorageTarget, local: Path, key: str, *, executor: Executor | None = None, move: bool = True
) -> StoredObject:
    """``move``: the file is the job's own temporary, so a local target may take it by rename."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, lambda: target.put(local, key, move=move))
