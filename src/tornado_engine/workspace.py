"""Each running engine's own folder for temporary job files, so engines sharing a data folder never touch
each other's files.

An engine takes the first free slot ``DATA_DIR/tmp/engine-N`` by holding an exclusive ``flock`` on
``engine-N.lock`` for as long as it runs. The kernel drops the lock when the process ends, however it ends
(kill -9, power loss), so a slot is free exactly when its holder is provably gone; the next engine to take
it sweeps the leftovers with its own store's rules. Two engines in one process get two slots (``flock``
locks belong to the open file, not the process). A lone engine restarted after a crash takes the same slot
again, so it can resume from the files its last run left. The lock file names its holder (pid, host,
since) for whoever looks.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MAX_SLOTS", "Workspace", "adopt", "hide_local_paths", "holder_line", "holder_of"]

MAX_SLOTS = 1024  # engines running at once on one data folder; a safety stop, not a limit anyone meets


def holder_line() -> str:
    """What a lock file says of its holder: "pid N on HOST since TIME" (UTC)."""
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return f"pid {os.getpid()} on {socket.gethostname()} since {since}"


def holder_of(lock_path: Path) -> str:
    """Who holds (or last held) ``lock_path``: "pid N on HOST since TIME", or "?" when unknown."""
    with contextlib.suppress(OSError):
        return lock_path.read_text(errors="replace").strip() or "?"
    return "?"


def _try_lock(lock_path: Path, *, sign: bool = True) -> int | None:
    """The open, exclusively locked descriptor of ``lock_path``, or None when another holds it.

    ``sign``: write this process in as the holder (a slot taken for good, not a moment's look)."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if sign:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{holder_line()}\n".encode(), 0)
    return fd


@dataclass
class Workspace:
    """One engine's slot: ``path`` is where its job folders go while ``fd`` holds the slot's lock."""

    path: Path
    _fd: int | None

    @classmethod
    def take(cls, root: Path) -> Workspace:
        """Blocking: lock the first free slot under ``root`` (``DATA_DIR/tmp``) and return it."""
        root.mkdir(parents=True, exist_ok=True)
        for slot in range(MAX_SLOTS):
            path = root / f"engine-{slot}"
            fd = _try_lock(root / f"engine-{slot}.lock")
            if fd is not None:
                path.mkdir(exist_ok=True)
                return cls(path, fd)
        raise RuntimeError(f"{MAX_SLOTS} engines already run on this data folder")

    def release(self) -> None:
        """Let the slot go (the folder stays: a later engine taking it resumes from or sweeps its files)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor of the open file drops the flock
            self._fd = None


def adopt(work_dir: Path, name: str) -> Path | None:
    """Blocking: move job folder ``name`` here (into ``work_dir``, this engine's slot) from the slot of an
    engine that is gone, so its partial downloads are resumed. -> the folder it came from, or None.

    A slot's folders are moved only under that slot's lock: its engine is provably gone, and no engine
    can take the slot (and sweep it) meanwhile. A folder of our own that holds anything stays as it is."""
    own = work_dir / name
    with contextlib.suppress(OSError):
        if any(own.iterdir()):
            return None
    for slot in sorted(work_dir.parent.glob("engine-*")):
        folder = slot / name
        if slot == work_dir or not folder.is_dir() or folder.is_symlink():
            continue
        fd = _try_lock(slot.with_name(f"{slot.name}.lock"), sign=False)
        if fd is None:
            continue  # its engine runs: what it holds is its own
        try:
            if folder.is_dir():  # looked at again under the lock
                with contextlib.suppress(FileNotFoundError):
                    own.rmdir()
                os.rename(folder, own)
                return folder
        finally:
            os.close(fd)
    return None


def hide_local_paths(text: str, job_folder: Path, data_dir: Path) -> str:
    """``text`` without local paths: files in the job folder by name only, the rest of the data folder as
    ``DATA_DIR``. Errors from yt-dlp, ffmpeg or the OS quote full paths, which must not reach job records
    (they show the host's layout and user name)."""
    replacements: list[tuple[str, str]] = []
    for folder, label in ((job_folder, ""), (data_dir, "DATA_DIR/")):
        for form in {str(folder), os.path.realpath(folder)}:
            replacements.append((form.rstrip("/") + "/", label))
            replacements.append((form.rstrip("/"), label.rstrip("/") or "."))
    # the longest first: the job folder lies inside the data folder
    for path, label in sorted(replacements, key=lambda pair: len(pair[0]), reverse=True):
        text = text.replace(path, label)
    return text
