"""S3 and S3-compatible services through s3fs.

Pitfalls handled here (see shared/recipes/storage.md):
- ``sign()`` gives SigV2 URLs unless the client is told ``signature_version="s3v4"``.
- ``put_file`` ignores ``default_block_size``: multipart happens only when ``size >= 2 * chunksize``, so
  the part size is passed per call, with ``max_concurrency`` parts in flight.
- The bucket is never created here (``mkdir`` with region us-east-1 sends a LocationConstraint that
  some servers refuse): configuring expects an existing bucket and says so when it is missing.
"""

from __future__ import annotations

from typing import Any

from .base import FsspecBackend
from .config import S3Config
from .errors import require

__all__ = ["S3Backend"]


class S3Backend(FsspecBackend):
    def __init__(self, config: S3Config) -> None:
        s3fs = require("s3fs", "s3", "S3")
        client_kwargs: dict[str, Any] = {}
        if config.region:
            client_kwargs["region_name"] = config.region
        config_kwargs: dict[str, Any] = {"signature_version": "s3v4"}
        if config.addressing_style != "auto":
            config_kwargs["s3"] = {"addressing_style": config.addressing_style}
        fs = s3fs.S3FileSystem(
            key=config.access_key_id,
            secret=config.secret_access_key.get_secret_value(),
            token=config.session_token.get_secret_value() if config.session_token else None,
            endpoint_url=config.endpoint_url,
            client_kwargs=client_kwargs,
            config_kwargs=config_kwargs,
            max_concurrency=config.concurrency,
            skip_instance_cache=True,  # no global cache holding credentials past this target
        )
        super().__init__(fs, config.bucket, name="S3")
        self.config = config

    def put_options(self, size: int) -> dict[str, Any]:
        return {"chunksize": self.config.part_size, "max_concurrency": self.config.concurrency}

    def sign(self, path: str, seconds: int) -> str:
        return str(self.fs.sign(self.full(path), expiration=seconds))

    def secrets(self) -> list[str]:
        return self.config.secret_values()
