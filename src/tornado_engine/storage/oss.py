"""Alibaba Cloud OSS through ossfs (sync ``OSSFileSystem``) and oss2.

- ossfs's async filesystem is broken on aiohttp >= 3.10.6 and its ``open("wb")`` fails past one block,
  so small files go through ``put_file`` (one PutObject) and nothing uses ``open``.
- ossfs switches to multipart only at a fixed 100 MiB and has no ``sign``. Large files therefore go
  through ``oss2.resumable_upload`` (what ossfs itself calls past 100 MiB) with our part size, thread
  count and a checkpoint folder beside the local file (not ``~/.py-oss-upload``), and URLs come from
  ``oss2.Bucket.sign_url``. oss2 reports progress as each part *starts* (bytes of finished parts), so
  with few parts and many threads the report is coarse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import FsspecBackend, Progress, parts_unit
from .config import OSSConfig
from .errors import require

__all__ = ["OSSBackend"]


class OSSBackend(FsspecBackend):
    def __init__(self, config: OSSConfig) -> None:
        ossfs = require("ossfs", "oss", "OSS")
        self.oss2: Any = require("oss2", "oss", "OSS")
        secret = config.access_key_secret.get_secret_value()
        fs = ossfs.OSSFileSystem(
            endpoint=config.endpoint, key=config.access_key_id, secret=secret, skip_instance_cache=True
        )
        self.bucket: Any = self.oss2.Bucket(
            self.oss2.Auth(config.access_key_id, secret), config.endpoint, config.bucket
        )
        super().__init__(fs, config.bucket, name="OSS")
        self.config = config

    def upload(self, local: Path, path: str, on_progress: Progress | None, *, move: bool) -> None:
        size = local.stat().st_size
        if size < 2 * self.config.part_size:
            super().upload(local, path, on_progress, move=move)
            return
        progress = None
        if on_progress is not None:

            def progress(done: int, total: int | None) -> None:
                on_progress(done, total or size)

        self.oss2.resumable_upload(
            self.bucket,
            path,
            str(local),
            store=self.oss2.ResumableStore(root=str(local.parent), dir=".oss-resumable"),
            multipart_threshold=2 * self.config.part_size,
            part_size=self.config.part_size,
            num_threads=self.config.concurrency,
            progress_callback=progress,
        )
        if on_progress is not None:
            on_progress(size, size)

    def write_unit(self, size: int) -> int:
        return parts_unit(size, self.config.part_size, self.config.concurrency)

    def sign(self, path: str, seconds: int) -> str:
        return str(self.bucket.sign_url("GET", path, seconds, slash_safe=True))

    def exists(self, path: str) -> bool:
        return bool(self.bucket.object_exists(path))  # one HEAD, not ossfs's three listings

    def secrets(self) -> list[str]:
        return self.config.secret_values()
