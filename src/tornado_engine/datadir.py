"""The engine's data folder must be a folder: checked when an engine opens (and before a worker locks it),
so that ``--data-dir`` naming a file is a clear error instead of a ``NotADirectoryError`` traceback."""

from __future__ import annotations

from pathlib import Path

from .errors import SetupError

__all__ = ["check_data_dir"]


def check_data_dir(path: Path) -> None:
    """``path`` is a folder, or could be made one: its nearest existing ancestor is a folder. Creates
    nothing (a read-only command must leave the disk as it found it)."""
    for candidate in (path, *path.absolute().parents):
        if candidate.exists():
            if not candidate.is_dir():
                what = "is a file" if candidate == path else "is inside a file"
                raise SetupError(f"the data dir {what}, not a folder (check --data-dir / data_dir=)")
            return
