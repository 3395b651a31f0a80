"""The backend interface, its fsspec implementation, and the local folder.

A backend knows one service: how to upload a file in parts, sign a URL, delete, test for existence and
write a tiny probe. Paths given to a backend are object keys inside its bucket / container / folder
(``videos/a/clip.mp4``); the target above it decides the key, maps errors and checks arguments.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["Backend", "FsspecBackend", "LocalBackend", "Progress", "parts_unit", "progress_callback"]

Progress = Callable[[int, int], None]
"""``on_progress(bytes_done, bytes_total)``: called from the uploading thread."""

_COPY_CHUNK = 8 * 2**20


class Backend(ABC):
    name: str = "storage"  # for people: "S3", "Azure Blob", ...

    @abstractmethod
    def upload(self, local: Path, path: str, on_progress: Progress | None, *, move: bool) -> None: ...

    @abstractmethod
    def sign(self, path: str, seconds: int) -> str: ...

    @abstractmethod
    def delete(self, path: str) -> None:
        """Remove the object; a missing one is not an error."""

    @abstractmethod
    def exists(self, path: str) -> bool: ...

    @abstractmethod
    def write_bytes(self, path: str, data: bytes) -> None: ...

    def secrets(self) -> list[str]:
        """Secret strings to scrub from error texts."""
        return []

    def write_unit(self, size: int) -> int:
        """The most bytes of a ``size``-byte upload one progress report may stand for: the SDK writes
        that much (a part, or parts in parallel) before it says anything. By default the whole file."""
        return size


def parts_unit(size: int, part: int, concurrency: int) -> int:
    """:meth:`Backend.write_unit` of an SDK that puts a file under two parts at once, else sends
    ``concurrency`` parts of ``part`` bytes at a time."""
    return size if size < 2 * part else min(size, part * concurrency)


def progress_callback(on_progress: Progress | None) -> Any:
    """An fsspec ``Callback`` forwarding (value, size) to ``on_progress``; ``None`` if there is none."""
    if on_progress is None:
        return None
    from fsspec.callbacks import Callback

    report: Progress = on_progress

    class _Forward(Callback):  # type: ignore[misc]  # fsspec ships no types
        def call(self, *args: Any, **kwargs: Any) -> None:
            if self.size:
                report(min(int(self.value or 0), int(self.size)), int(self.size))

    return _Forward()


class FsspecBackend(Backend):
    """Any fsspec filesystem; ``root`` is the bucket (and prefix) every path is joined to."""

    def __init__(self, fs: Any, root: str, name: str = "storage") -> None:
        self.fs = fs
        self.root = root.strip("/")
        self.name = name

    def full(self, path: str) -> str:
        return f"{self.root}/{path}" if self.root else path

    def put_options(self, size: int) -> dict[str, Any]:
        """Extra ``put_file`` arguments (part size, concurrency) for a file of ``size`` bytes."""
        return {}

    def upload(self, local: Path, path: str, on_progress: Progress | None, *, move: bool) -> None:
        size = local.stat().st_size
        callback = progress_callback(on_progress)
        options = self.put_options(size)
        if callback is not None:
            options["callback"] = callback
        self.fs.put_file(str(local), self.full(path), **options)
        if on_progress is not None:
            on_progress(size, size)  # some SDKs report only per part: always end on the total

    def sign(self, path: str, seconds: int) -> str:
        try:
            return str(self.fs.sign(self.full(path), expiration=seconds))
        except NotImplementedError:  # e.g. memory://: a plain URI is the best there is
            return str(self.fs.unstrip_protocol(self.full(path)))

    def delete(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.full(path))

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(self.full(path)))

    def write_bytes(self, path: str, data: bytes) -> None:
        self.fs.pipe_file(self.full(path), data)


class LocalBackend(Backend):
    """A folder. Writes are atomic: readers see the whole file or nothing."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def full(self, path: str) -> Path:
        return self.root / path

    def upload(self, local: Path, path: str, on_progress: Progress | None, *, move: bool) -> None:
        dest = self.full(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        size = local.stat().st_size
        if move:
            try:
                os.replace(local, dest)  # same filesystem: a rename, atomic and free
            except OSError:
                pass  # another filesystem: copy below
            else:
                if on_progress is not None:
                    on_progress(size, size)
                return
        # copy beside the destination, then rename, so readers never see half a file
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".upload-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, open(local, "rb") as src:
                done = 0
                while chunk := src.read(_COPY_CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    if on_progress is not None:
                        on_progress(done, size)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        if move:
            with contextlib.suppress(FileNotFoundError):
                local.unlink()
        if on_progress is not None and size == 0:
            on_progress(0, 0)

    def write_unit(self, size: int) -> int:
        return min(size, _COPY_CHUNK)  # a copy reports each chunk (a rename is instant)

    def sign(self, path: str, seconds: int) -> str:
        return self.full(path).as_uri()  # a local file needs no signature

    def delete(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.full(path).unlink()

    def exists(self, path: str) -> bool:
        return self.full(path).is_file()

    def write_bytes(self, path: str, data: bytes) -> None:
        dest = self.full(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
