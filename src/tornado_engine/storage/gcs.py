"""Google Cloud Storage through gcsfs, with V4 signed URLs from the service-account key.

- Data calls use the key as an OAuth credential; against an emulator (``emulator=True``) they go without
  one (``token="anon"``), because the key would make gcsfs fetch a token from Google first. Signing
  always uses the key, offline.
- Emulator mode uses ``gcsfs.core.GCSFileSystem`` itself: the package-level name may be the
  experimental ``ExtendedGcsFileSystem``, which asks an emulator's port for the bucket layout over
  gRPC and stalls 60 s per call (recipe pitfall 1).
- Files under 5 MiB go through gcsfs (one multipart request). Larger ones go as a resumable upload whose
  session gcsfs opens (its credentials, retries and error mapping) and whose bytes :mod:`.gcs_upload`
  sends in one request, reporting progress every ``part_size`` bytes (``concurrency`` does not apply: a
  resumable upload is sequential). Zonal buckets (gcsfs's gRPC path) stay with gcsfs.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from .base import FsspecBackend, Progress
from .config import GCSConfig
from .errors import require
from .gcs_upload import ResumableUpload

__all__ = ["GCSBackend"]

_QUANTUM = 256 * 1024  # resumable chunks must be multiples of 256 KiB
_SIMPLE_BELOW = 5 * 2**20  # gcsfs's own switch: smaller files are one multipart request


class GCSBackend(FsspecBackend):
    def __init__(self, config: GCSConfig) -> None:
        gcsfs = require("gcsfs", "gcs", "GCS")
        info = config.key_info()
        common: dict[str, Any] = {
            "project": config.project or info.get("project_id"),
            "endpoint_url": config.endpoint_url,
            "skip_instance_cache": True,
        }
        if config.emulator:
            core = require("gcsfs.core", "gcs", "GCS")
            fs = core.GCSFileSystem(token="anon", **common)
            self.signer = core.GCSFileSystem(token=info, **common)
        else:
            fs = gcsfs.GCSFileSystem(token=info, **common)
            self.signer = fs
        super().__init__(fs, config.bucket, name="GCS")
        self.config = config
        self._zonal_buckets: dict[str, bool] = {}

    def put_options(self, size: int) -> dict[str, Any]:
        return {"chunksize": max(_QUANTUM, self.config.part_size // _QUANTUM * _QUANTUM)}

    def write_unit(self, size: int) -> int:
        return min(size, self.config.part_size)  # progress every part_size bytes (gcsfs: every chunk)

    def upload(self, local: Path, path: str, on_progress: Progress | None, *, move: bool) -> None:
        size = local.stat().st_size
        full = self.full(path)
        bucket, key, _ = self.fs.split_path(full)
        if size < _SIMPLE_BELOW or self._zonal(bucket):
            super().upload(local, path, on_progress, move=move)
            return
        from fsspec.asyn import sync

        core = require("gcsfs.core", "gcs", "GCS")
        content_type = mimetypes.guess_type(str(local))[0] or "application/octet-stream"  # as gcsfs does
        location = sync(self.fs.loop, core.initiate_upload, self.fs, bucket, key, content_type)
        upload = ResumableUpload(str(location), local, size, self.config.part_size)
        upload.run(on_progress, forget=lambda: self.fs.rm_file(full))
        self.fs.invalidate_cache(full)

    def _zonal(self, bucket: str) -> bool:
        """A zonal bucket takes appends over gRPC only (gcsfs's ``ExtendedGcsFileSystem`` knows)."""
        probe = getattr(self.fs, "_is_zonal_bucket", None)
        if probe is None:
            return False
        if bucket not in self._zonal_buckets:
            from fsspec.asyn import sync

            self._zonal_buckets[bucket] = bool(sync(self.fs.loop, probe, bucket))
        return self._zonal_buckets[bucket]

    def sign(self, path: str, seconds: int) -> str:
        return str(self.signer.sign(self.full(path), expiration=seconds, version="v4"))

    def secrets(self) -> list[str]:
        return [*self.config.secret_values(), str(self.config.key_info().get("private_key", ""))]
