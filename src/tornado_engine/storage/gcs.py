"""Google Cloud Storage through gcsfs, with V4 signed URLs from the service-account key.

- Data calls use the key as an OAuth credential; against an emulator (``emulator=True``) they go without
  one (``token="anon"``), because the key would make gcsfs fetch a token from Google first. Signing
  always uses the key, offline.
- Emulator mode uses ``gcsfs.core.GCSFileSystem`` itself: the package-level name may be the
  experimental ``ExtendedGcsFileSystem``, which asks an emulator's port for the bucket layout over
  gRPC and stalls 60 s per call (recipe pitfall 1).
- gcsfs switches to a resumable upload at 5 MiB (fixed) and sends ``chunksize`` bytes per request, in
  order (a resumable upload is sequential by nature, so ``concurrency`` does not apply here).
"""

from __future__ import annotations

from typing import Any

from .base import FsspecBackend
from .config import GCSConfig
from .errors import require

__all__ = ["GCSBackend"]

_QUANTUM = 256 * 1024  # resumable chunks must be multiples of 256 KiB


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

    def put_options(self, size: int) -> dict[str, Any]:
        return {"chunksize": max(_QUANTUM, self.config.part_size // _QUANTUM * _QUANTUM)}

    def write_unit(self, size: int) -> int:
        return min(size, int(self.put_options(size)["chunksize"]))  # one chunk per request, in turn

    def sign(self, path: str, seconds: int) -> str:
        return str(self.signer.sign(self.full(path), expiration=seconds, version="v4"))

    def secrets(self) -> list[str]:
        return [*self.config.secret_values(), str(self.config.key_info().get("private_key", ""))]
