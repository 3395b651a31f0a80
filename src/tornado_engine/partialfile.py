"""Partial downloads on disk: each kept file's sidecar (``<file>.resume.json``), written atomically.

The policy (what a sidecar says, when its bytes may be kept) is :mod:`tornado_engine.partial`; this
module reads and writes sidecars and empties a job folder down to its resumable files. A sidecar is
replaced (written to a temporary name, then renamed) only after the bytes it vouches for were written
and flushed to the disk, so whatever a crash leaves, the sidecar never claims bytes that are not there.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from pathlib import Path

from .partial import Partial

__all__ = ["SUFFIX", "discard", "disown", "holds_partials", "keep_partials", "load", "save", "sidecar_of"]

SUFFIX = ".resume.json"


def sidecar_of(path: Path) -> Path:
    return path.with_name(path.name + SUFFIX)


def load(path: Path) -> Partial | None:
    """The sidecar of ``path``, or None when there is none, or it is not one we wrote."""
    try:
        data = json.loads(sidecar_of(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Partial.from_data(data)


def save(path: Path, partial: Partial, *, flush_fd: int | None = None) -> None:
    """Record ``partial`` for ``path``; ``flush_fd``: the file's descriptor, flushed to disk first."""
    if flush_fd is not None:
        os.fdatasync(flush_fd)  # after a power cut too, the sidecar never claims bytes the disk lost
    sidecar = sidecar_of(path)
    # one temporary name per thread: a download's connections may save at the same moment
    temporary = sidecar.with_name(f"{sidecar.name}.{threading.get_ident()}.tmp")
    temporary.write_text(json.dumps(partial.to_data()), encoding="utf-8")
    os.replace(temporary, sidecar)


def discard(path: Path) -> None:
    """``path`` and its sidecar, gone."""
    for victim in (path, sidecar_of(path)):
        victim.unlink(missing_ok=True)


def disown(folder: Path) -> None:
    """Blocking: no file in ``folder`` is resumable any more (a full disk: the next try starts afresh)."""
    with contextlib.suppress(OSError):
        for sidecar in folder.glob(f"*{SUFFIX}"):
            sidecar.unlink(missing_ok=True)


def _resumable(folder: Path) -> set[str]:
    """Names of the files in ``folder`` that a later download may resume, with their sidecars."""
    names = {entry.name for entry in folder.iterdir()}
    kept = {name for name in names if name + SUFFIX in names and not name.endswith(SUFFIX)}
    return kept | {name + SUFFIX for name in kept}


def holds_partials(folder: Path) -> bool:
    """Blocking: whether ``folder`` holds a partial download a later attempt may resume."""
    with contextlib.suppress(OSError):
        return bool(_resumable(folder))
    return False


def keep_partials(folder: Path) -> None:
    """Blocking: ``folder`` exists and holds nothing but resumable files and their sidecars."""
    folder.mkdir(parents=True, exist_ok=True)
    kept = _resumable(folder)
    for entry in folder.iterdir():
        if entry.name in kept and entry.is_file() and not entry.is_symlink():
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
