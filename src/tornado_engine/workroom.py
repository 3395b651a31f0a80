"""The work disk's room: downloads admitted against free space, and the temporary bytes jobs hold.

The decision is pure (:func:`tornado_engine.diskspace.room_problem`); this module reads the disk, off the
event loop, and remembers what the downloads running in this process still expect to write, so jobs that
check at the same moment do not all count the same free space.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import Executor
from pathlib import Path
from typing import TypeVar

from .diskspace import room_problem
from .errors import DownloadError

__all__ = ["WorkRoom"]

_T = TypeVar("_T")


class WorkRoom:
    def __init__(self, reserve_bytes: int, executor: Executor | None) -> None:
        self.reserve_bytes = reserve_bytes
        self._executor = executor
        self._downloading: dict[Path, int] = {}  # job folder -> expected bytes, while it downloads

    @contextlib.asynccontextmanager
    async def download(self, folder: Path, expected: int) -> AsyncIterator[None]:
        """Admit a download of ``expected`` bytes into ``folder`` for the ``async with`` block, or raise
        ``DownloadError(kind="disk_full")`` (retried later) when it would not fit above the reserve."""
        # counted before the free space is read: jobs checking at once each see the others' share
        self._downloading[folder] = expected
        try:
            others = {f: n for f, n in self._downloading.items() if f != folder}
            free, promised = await self._in_thread(_space, folder, others)
            problem = room_problem(
                free=free, expected=expected, reserve=self.reserve_bytes, promised=promised
            )
            if problem:
                raise DownloadError(problem, kind="disk_full")
            yield
        finally:
            self._downloading.pop(folder, None)

    async def bytes_in(self, folders: Iterable[Path]) -> int:
        """Bytes the files under ``folders`` take on disk."""
        folders = list(folders)
        if not folders:
            return 0
        return await self._in_thread(lambda: sum(_tree_bytes(f) for f in folders))

    async def _in_thread(self, fn: Callable[..., _T], *args: object) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)


def _space(folder: Path, others: dict[Path, int]) -> tuple[int, int]:
    """(free bytes where ``folder`` is, bytes the ``others`` downloads still expect to write there)."""
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free  # what an unprivileged writer may still use
    return free, sum(max(0, expected - _tree_bytes(f)) for f, expected in others.items())


def _tree_bytes(folder: Path) -> int:
    """Bytes the files under ``folder`` take on disk (allocated blocks: a sparse file counts what it holds).

    Files come and go while a job runs: one removed while we look is simply not counted."""
    total = 0
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total
