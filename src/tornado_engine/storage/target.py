"""StorageTarget: one place finished files go, whatever the backend, with errors mapped at the boundary.

    target = StorageTarget(S3Config(bucket="media", access_key_id="...", secret_access_key="..."))
    target.verify()                                 # writes, fetches and deletes a probe, or InvalidRequest
    stored = target.put(Path("clip.mp4"), object_key("shows", "clip", "mp4"), on_progress=print)
    stored.key  # 'videos/shows/clip.mp4'    stored.url  # signed, valid url_expiry_seconds
    target.delete(stored.key)

A URL string still works as before: ``file:///srv/media`` (or a bare path) is a local folder with no
base folder; any other fsspec URL (``memory://x``, ``s3://bucket/prefix``) uses fsspec's defaults.
Every method blocks: the engine calls them in a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidRequest, JobCancelled, UploadError
from .availability import check_target, extra_for
from .base import Backend, FsspecBackend, LocalBackend, Progress
from .config import (
    MAX_URL_EXPIRY,
    AzureBlobConfig,
    GCSConfig,
    LocalStorageConfig,
    OSSConfig,
    S3Config,
    StorageConfig,
)
from .errors import MissingBackend, classify, describe

__all__ = ["StorageTarget", "StoredObject", "object_key"]

_DEFAULT_EXPIRY = 24 * 3600
_FSSPEC_SCHEMES = {"s3": "s3", "azure": "az", "gcs": "gs", "oss": "oss"}
_PROBE_DATA = b"tornado-engine credential check\n"


@dataclass(frozen=True)
class StoredObject:
    key: str  # the full object key (base_folder/[folder/]name.ext): what delete() and exists() take
    url: str  # signed URL (cloud) or file:// URI (local)
    size: int


def object_key(folder: str | None, filename: str, ext: str) -> str:
    """``[folder/]filename.ext``: deterministic, so running a job again overwrites its file."""
    name = f"{filename}.{ext}"
    return f"{folder}/{name}" if folder else name


def _checked(key: str) -> str:
    if "\\" in key or "\x00" in key or any(p in ("", ".", "..") for p in key.split("/")):
        raise InvalidRequest(f"storage: invalid object key {key!r}", field="key")
    return key


def _build(config: StorageConfig) -> Backend:
    # imported per kind so that a missing optional SDK only matters to whoever uses that backend
    if isinstance(config, LocalStorageConfig):
        return LocalBackend(Path(os.path.abspath(os.path.expanduser(config.path))))
    if isinstance(config, S3Config):
        from .s3 import S3Backend

        return S3Backend(config)
    if isinstance(config, AzureBlobConfig):
        from .azure import AzureBackend

        return AzureBackend(config)
    if isinstance(config, GCSConfig):
        from .gcs import GCSBackend

        return GCSBackend(config)
    if isinstance(config, OSSConfig):
        from .oss import OSSBackend

        return OSSBackend(config)
    raise InvalidRequest(f"storage: unknown configuration {type(config).__name__}", field="storage")


class StorageTarget:
    """One storage location. Backends are built lazily (first use) and then shared by threads."""

    def __init__(self, source: str | StorageConfig, *, url_expiry_seconds: int | None = None) -> None:
        self.config: StorageConfig | None = None
        self.local_root: Path | None = None
        self._url: str | None = None
        if isinstance(source, str):
            parsed = urllib.parse.urlsplit(source)
            self.protocol = parsed.scheme or "file"
            self.base_folder = ""
            if parsed.scheme in ("", "file"):
                path = parsed.path if parsed.scheme else source
                if not path:
                    raise InvalidRequest("storage: a local folder path is required", field="storage")
                self.local_root = Path(os.path.abspath(os.path.expanduser(path)))
                self.url = self.local_root.as_uri()
            else:
                self._url = self.url = source
            expiry = _DEFAULT_EXPIRY
        else:
            self.config = source
            self.protocol = source.kind
            self.base_folder = source.base_folder
            expiry = source.url_expiry_seconds
            if isinstance(source, LocalStorageConfig):
                self.local_root = Path(os.path.abspath(os.path.expanduser(source.path)))
                self.url = self.local_root.as_uri()
            else:
                # the fsspec URL of the bucket, without endpoint or credentials: safe in a job record
                scheme, bucket = _FSSPEC_SCHEMES[source.kind], getattr(source, "bucket", None)
                self.url = f"{scheme}://{bucket or getattr(source, 'container', '')}"
        self.url_expiry_seconds = min(url_expiry_seconds or expiry, MAX_URL_EXPIRY)
        self.name = {"s3": "S3", "azure": "Azure Blob", "gcs": "GCS", "oss": "OSS"}.get(
            self.protocol, "local" if self.local_root else self.protocol
        )
        self._backend: Backend | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        if self.config is not None:
            return f"StorageTarget({self.config!r})"
        parsed = urllib.parse.urlsplit(self.url)  # never print credentials a URL may carry
        return f"StorageTarget({parsed.scheme}://{parsed.hostname or ''}{parsed.path})"

    # -- plumbing ---------------------------------------------------------------------------------

    @property
    def backend(self) -> Backend:
        with self._lock:
            if self._backend is None:
                self._backend = self._make_backend()
            return self._backend

    def _make_backend(self) -> Backend:
        try:
            if self.config is not None:
                return _build(self.config)
            if self.local_root is not None:
                return LocalBackend(self.local_root)
            import fsspec

            fs, root = fsspec.core.url_to_fs(self._url)
            return FsspecBackend(fs, root, name=self.protocol)
        except MissingBackend as exc:
            raise UploadError(str(exc), kind="storage_error") from exc
        except ImportError as exc:  # check() found it at open; a package removed since still names the extra
            extra = extra_for(self.protocol)
            hint = f"pip install 'tornado-engine[{extra.extra}]'" if extra else str(exc)
            raise UploadError(f"storage backend {self.protocol!r} is not installed: {hint}") from exc

    def check(self) -> None:
        """Usable here, without touching the network: a supported scheme, its backend's package installed
        (:class:`MissingBackend` names the extra), a local folder writable (:class:`SetupError`)."""
        check_target(self.protocol, self.local_root)

    def full_key(self, key: str) -> str:
        """``base_folder/key`` for a key made by :func:`object_key`."""
        key = _checked(key)
        return f"{self.base_folder}/{key}" if self.base_folder else key

    def _error(self, exc: BaseException, action: str) -> UploadError:
        secrets = self._backend.secrets() if self._backend is not None else []
        kind = classify(exc).kind
        return UploadError(f"{self.name} storage: {action} failed: {describe(exc, secrets)}", kind=kind)

    # -- operations ---------------------------------------------------------------------------------

    def put(
        self, local: Path, key: str, *, move: bool = False, on_progress: Progress | None = None
    ) -> StoredObject:
        """Upload ``local`` to ``base_folder/key``; large files go in parts. Maps failures to UploadError."""
        full = self.full_key(key)
        size = local.stat().st_size
        try:
            backend = self.backend
            backend.upload(local, full, _monotonic(on_progress), move=move)
            url = backend.sign(full, self.url_expiry_seconds)
        except (UploadError, InvalidRequest, JobCancelled):  # a cancel from the progress callback
            raise
        except Exception as exc:  # the SDK boundary: botocore, azure, google, oss2, fsspec, OSError
            raise self._error(exc, "upload") from exc
        return StoredObject(full, url, size)

    def write_unit(self, local: Path) -> int:
        """The most bytes of uploading ``local`` one progress report may stand for (a part, or parts
        sent at once): what an upload's stall rule allows a silent write (:class:`..bounds.WriteWatch`)."""
        return self.backend.write_unit(local.stat().st_size)

    def sign(self, full_key: str, seconds: int | None = None) -> str:
        """A fresh URL for an object stored earlier (``StoredObject.key``), capped at 7 days."""
        expiry = min(seconds or self.url_expiry_seconds, MAX_URL_EXPIRY)
        key = _checked(full_key)
        try:
            return self.backend.sign(key, expiry)
        except UploadError:
            raise
        except Exception as exc:
            raise self._error(exc, "signing") from exc

    def delete(self, key: str) -> None:
        """Remove the object at the full key (``StoredObject.key``); a missing object is fine."""
        key = _checked(key)
        try:
            self.backend.delete(key)
        except UploadError:
            raise
        except Exception as exc:
            raise self._error(exc, "delete") from exc

    def exists(self, key: str) -> bool:
        key = _checked(key)
        try:
            return self.backend.exists(key)
        except UploadError:
            raise
        except Exception as exc:
            raise self._error(exc, "lookup") from exc

    def verify(self, *, fetch_url: bool = True, timeout: float = 30.0) -> None:
        """Prove the credentials: write a probe, fetch it through a signed URL, delete it.

        Raises :class:`InvalidRequest` (field ``storage``) naming the backend and the cause.
        """
        probe = self.full_key(f".tornado-probe-{uuid.uuid4().hex}")
        where = self.config.describe() if self.config is not None else repr(self)
        step = "connecting"
        try:
            backend = self.backend
            step = "writing a test object"
            backend.write_bytes(probe, _PROBE_DATA)
            try:
                if fetch_url and self.local_root is None:
                    step = "reading the test object through a signed URL"
                    _fetch(backend.sign(probe, 300), timeout)
            except BaseException:
                with contextlib.suppress(Exception):  # best effort; the first failure is the news
                    backend.delete(probe)
                raise
            step = "deleting the test object"
            backend.delete(probe)
        except UploadError as exc:
            raise InvalidRequest(f"{self.name} storage ({where}): {exc.message}", field="storage") from exc
        except Exception as exc:
            raise InvalidRequest(self._refusal(exc, where, step), field="storage") from exc

    def _refusal(self, exc: BaseException, where: str, step: str) -> str:
        info = classify(exc)
        cause = describe(exc, self._backend.secrets() if self._backend is not None else [])
        if info.kind == "storage_denied":
            what = "the credentials were refused"
        elif step == "connecting" and info.kind == "storage_error":  # built offline: a bad key
            what = "the credentials could not be used"
        elif info.not_found:
            what = "the bucket or container does not exist"
        elif info.kind == "storage_transient":
            what = "the service could not be reached"
        else:
            what = "the check failed"
        return f"{self.name} storage ({where}): {what} while {step}: {cause}"


def _monotonic(on_progress: Progress | None) -> Progress | None:
    """Parts finish out of order (Azure reports each block's absolute offset): only forward growth."""
    if on_progress is None:
        return None
    lock = threading.Lock()
    best = -1

    def report(done: int, total: int) -> None:
        nonlocal best
        with lock:
            if done <= best and not (done == total == 0 and best < 0):
                return
            best = done
        on_progress(done, total)

    return report


def _fetch(url: str, timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # our own signed URL
            body: Any = response.read()
    except urllib.error.HTTPError as exc:
        exc.close()
        raise OSError(f"the signed URL was refused with HTTP {exc.code}") from exc
    if body != _PROBE_DATA:
        raise OSError("the signed URL returned other bytes than were written")
