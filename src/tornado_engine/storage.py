"""Storage targets: where finished files go, and the URL a caller gets back.

A target is a URL: ``file:///srv/media`` (the embedded default) or any fsspec URL whose backend is
installed (``s3://bucket/prefix`` ...). Keys are deterministic (``[folder/]filename.ext``), so running the
same job again overwrites instead of duplicating.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InvalidRequest, UploadError

__all__ = ["StorageTarget", "StoredObject", "object_key"]


@dataclass(frozen=True)
class StoredObject:
    key: str
    url: str
    size: int


def object_key(folder: str | None, filename: str, ext: str) -> str:
    name = f"{filename}.{ext}"
    return f"{folder}/{name}" if folder else name


class StorageTarget:
    """One storage location. ``put`` is blocking: callers run it in a thread."""

    def __init__(self, url: str, *, url_expiry_seconds: int = 24 * 3600) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme in ("", "file"):
            path = parsed.path if parsed.scheme else url
            if not path:
                raise InvalidRequest("storage: a local folder path is required", field="storage")
            self.local_root: Path | None = Path(os.path.abspath(os.path.expanduser(path)))
            self.url = self.local_root.as_uri()
        else:
            self.local_root = None
            self.url = url
        self.protocol = parsed.scheme or "file"
        self.url_expiry_seconds = url_expiry_seconds

    def __repr__(self) -> str:
        # never print credentials a URL may carry
        parsed = urllib.parse.urlsplit(self.url)
        return f"StorageTarget({parsed.scheme}://{parsed.hostname or ''}{parsed.path})"

    def put(self, local: Path, key: str, *, move: bool = False) -> StoredObject:
        try:
            if self.local_root is not None:
                return self._put_local(local, key, move=move)
            return self._put_fsspec(local, key)
        except UploadError:
            raise
        except OSError as exc:
            raise UploadError(f"storage write failed: {exc.strerror or exc}", kind="storage_error") from exc

    def _put_local(self, local: Path, key: str, *, move: bool) -> StoredObject:
        assert self.local_root is not None
        dest = self.local_root / key
        dest.parent.mkdir(parents=True, exist_ok=True)
        size = local.stat().st_size
        if move:
            try:
                os.replace(local, dest)  # same filesystem: a rename, atomic and free
                return StoredObject(key, dest.as_uri(), size)
            except OSError:
                pass
        # another filesystem: copy beside the destination, then rename, so readers never see half a file
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".upload-", suffix=".part")
        os.close(fd)
        try:
            shutil.copyfile(local, tmp)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return StoredObject(key, dest.as_uri(), size)

    def _fs(self) -> tuple[Any, str]:
        import fsspec

        try:
            fs, root = fsspec.core.url_to_fs(self.url)
        except ImportError as exc:
            raise UploadError(
                f"storage backend {self.protocol!r} is not installed: {exc}", kind="storage_error"
            ) from exc
        return fs, root.rstrip("/")

    def _put_fsspec(self, local: Path, key: str) -> StoredObject:
        fs, root = self._fs()
        remote = f"{root}/{key}"
        fs.put_file(str(local), remote)
        try:
            url = str(fs.sign(remote, expiration=self.url_expiry_seconds))
        except NotImplementedError:
            url = fs.unstrip_protocol(remote)
        return StoredObject(key, url, local.stat().st_size)

    def delete(self, key: str) -> None:
        if self.local_root is not None:
            with contextlib.suppress(FileNotFoundError):
                (self.local_root / key).unlink()
            return
        fs, root = self._fs()
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(f"{root}/{key}")

    def exists(self, key: str) -> bool:
        if self.local_root is not None:
            return (self.local_root / key).is_file()
        fs, root = self._fs()
        return bool(fs.exists(f"{root}/{key}"))
