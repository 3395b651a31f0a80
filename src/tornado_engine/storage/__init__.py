"""Storage targets: where finished files go, and the signed URL a caller gets back.

Backends: S3-compatible (s3fs), Azure Blob (adlfs), GCS (gcsfs), Alibaba OSS (ossfs + oss2) and a local
folder, each configured by a typed model (:mod:`.config`) and each an optional extra
(``pip install 'tornado-engine[s3]'``, ``[azure]``, ``[gcs]``, ``[oss]``, ``[all-storage]``).

    StorageTarget(config_or_url)      .verify() .put(local, key, on_progress=) .sign(key) .delete(key)
    object_key(folder, filename, ext) -> "[folder/]filename.ext"; the object lands at base_folder/key

Keys are deterministic, so running the same job again overwrites instead of duplicating. SDK errors
become ``UploadError`` with kind ``storage_transient`` (retried), ``storage_denied`` or ``storage_error``.
"""

from __future__ import annotations

from .base import Progress
from .config import (
    MAX_URL_EXPIRY,
    AzureBlobConfig,
    GCSConfig,
    LocalStorageConfig,
    OSSConfig,
    S3Config,
    StorageConfig,
    open_config,
    parse_storage_config,
    seal_config,
)
from .errors import MissingBackend, classify
from .target import StorageTarget, StoredObject, object_key

__all__ = [
    "MAX_URL_EXPIRY",
    "AzureBlobConfig",
    "GCSConfig",
    "LocalStorageConfig",
    "MissingBackend",
    "OSSConfig",
    "Progress",
    "S3Config",
    "StorageConfig",
    "StorageTarget",
    "StoredObject",
    "classify",
    "object_key",
    "open_config",
    "open_target",
    "parse_storage_config",
    "seal_config",
]


def open_target(storage: str | StorageConfig | StorageTarget | None, *, default: str) -> StorageTarget:
    """What ``Engine(storage=...)`` accepts: a URL, a config, a ready target, or None for ``default``."""
    if isinstance(storage, StorageTarget):
        return storage
    return StorageTarget(storage or default)
