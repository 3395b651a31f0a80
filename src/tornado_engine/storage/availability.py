"""Is a storage usable here, before any job needs it: its scheme supported, the optional package of its
backend installed (the error names the extra to add), a local folder writable.

Checked when an engine opens, when a tenant's storage is configured and when a job brings its own, so
that a missing extra is not found after a job has downloaded and muxed its media.

    extra_for("s3")         -> Extra(extra="s3", backend="S3", modules=("s3fs",))
    extra_for("file")       -> None                      (built in)
    extra_for("ftp")        -> InvalidRequest            (not a storage this engine supports)
    check_target(target)    -> MissingBackend naming ``pip install 'tornado-engine[s3]'``, or SetupError
"""

from __future__ import annotations

import errno
import importlib.util
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidRequest, MissingBackend, SetupError

__all__ = ["Extra", "check_local_folder", "check_target", "extra_for", "missing_modules"]


@dataclass(frozen=True)
class Extra:
    extra: str  # pip install 'tornado-engine[EXTRA]'
    backend: str  # the name a user knows the backend by
    modules: tuple[str, ...]  # what must be importable


_S3 = Extra("s3", "S3", ("s3fs",))
_GCS = Extra("gcs", "GCS", ("gcsfs",))
_AZURE = Extra("azure", "Azure Blob", ("adlfs",))
_OSS = Extra("oss", "OSS", ("ossfs", "oss2"))
# URL schemes (fsspec's names) and config kinds, one table: what each needs beyond the base install
_EXTRAS: dict[str, Extra | None] = {
    "": None, "file": None, "local": None, "memory": None,
    "s3": _S3, "s3a": _S3, "gs": _GCS, "gcs": _GCS, "az": _AZURE, "abfs": _AZURE, "abfss": _AZURE,
    "azure": _AZURE, "oss": _OSS,
}  # fmt: skip
_SUPPORTED = "file://PATH (or a plain path), s3://, gs://, az://, oss:// or memory://"


def extra_for(scheme: str) -> Extra | None:
    """The extra a storage scheme (or config kind) needs; None when built in; refused when unsupported."""
    scheme = scheme.lower()
    if scheme not in _EXTRAS:
        raise InvalidRequest(f"storage URL scheme {scheme!r} is not supported (use {_SUPPORTED})", "storage")
    return _EXTRAS[scheme]


def missing_modules(
    modules: tuple[str, ...], find: Callable[[str], Any] = importlib.util.find_spec
) -> list[str]:
    """The modules that cannot be imported; found without importing them (an SDK is slow to import)."""
    missing = []
    for name in modules:
        try:
            found = find(name)
        except (ImportError, ValueError):  # a parent that fails to import, or a module blocked in sys.modules
            found = None
        if found is None:
            missing.append(name)
    return missing


def check_local_folder(path: Path) -> None:
    """A file can be written in the folder, or, while it does not exist, a folder made where it would be.
    Tried for real (root passes os.access anyway) and undone: the check creates nothing."""
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        if existing == path:
            handle, probe = tempfile.mkstemp(prefix=".tornado-probe-", dir=path)
            os.close(handle)
            os.unlink(probe)
        else:
            os.rmdir(tempfile.mkdtemp(prefix=".tornado-probe-", dir=existing))
    except OSError as exc:
        # no path in the text: it is the user's own option, and paths stay out of error texts
        reason = exc.strerror or type(exc).__name__
        raise SetupError(
            f"the local storage folder cannot be written: {reason} (check --storage / storage=)"
        ) from None


def check_target(protocol: str, local_root: Path | None) -> None:
    """A storage target's scheme is supported, its backend installed and, when local, its folder writable."""
    if local_root is not None:
        check_local_folder(local_root)
        return
    extra = extra_for(protocol)
    if extra is None:
        return
    missing = missing_modules(extra.modules)
    if missing:
        raise MissingBackend(
            f"{extra.backend} storage needs the {', '.join(repr(m) for m in missing)} package: "
            f"pip install 'tornado-engine[{extra.extra}]'"
        )
