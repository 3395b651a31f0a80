"""S3 and S3-compatible services through s3fs.

Pitfalls handled here (see shared/recipes/storage.md):
- ``sign()`` gives SigV2 URLs unless the client is told ``signature_version="s3v4"``.
- s3fs's ``put_file`` sends multipart uploads in lockstep groups (read ``max_concurrency`` parts, send
  them, wait for *all*, read the next group), so the pipe drains at every group boundary. Large files go
  up here instead, as a sliding window: ``concurrency`` threads, each reading, checksumming, signing and
  sending one part at a time through a botocore client (same credentials, endpoint and region as s3fs).
  Threads, not s3fs's event loop: with one loop thread signing (SHA-256 over http) and sending every
  part, the upload ran on one core and, on a busy machine, got one thread's share of it (0.43x boto3's
  ``upload_file`` at load 18, with the same CPU). A failure or a cancel aborts the multipart upload: no
  pending upload and no object is left.
- The multipart upload is created with ``ChecksumAlgorithm=CRC32`` and completed with each part's CRC32,
  as boto3's ``upload_file`` does: the object gets a composite CRC32. Without it the service (AWS, moto)
  computes a full-object CRC64NVME over the whole object at completion.
- The bucket is never created here (``mkdir`` with region us-east-1 sends a LocationConstraint that
  some servers refuse): configuring expects an existing bucket and says so when it is missing.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import functools
import io
import logging
import math
import mimetypes
import threading
import zlib
from pathlib import Path
from typing import Any

from .base import FsspecBackend, Progress, parts_unit
from .config import S3Config
from .errors import require

__all__ = ["S3Backend", "crc32_b64"]

_log = logging.getLogger(__name__)

_MAX_PARTS = 10_000  # S3's limit: larger files get larger parts
_CLEANUP_SECONDS = 30.0  # how long a cancel waits for in-flight parts to stop


class S3Backend(FsspecBackend):
    def __init__(self, config: S3Config) -> None:
        s3fs = require("s3fs", "s3", "S3")
        client_kwargs: dict[str, Any] = {}
        if config.region:
            client_kwargs["region_name"] = config.region
        config_kwargs: dict[str, Any] = {
            "signature_version": "s3v4",
            # one pooled connection per part in flight (botocore's default pool is 10)
            "max_pool_connections": max(10, config.concurrency),
        }
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
        self._lock = threading.Lock()

    def put_options(self, size: int) -> dict[str, Any]:
        return {"chunksize": self.config.part_size, "max_concurrency": self.config.concurrency}

    def part_size(self, size: int) -> int:
        return max(self.config.part_size, math.ceil(size / _MAX_PARTS))

    def write_unit(self, size: int) -> int:
        return parts_unit(size, self.part_size(size), self.config.concurrency)

    def upload(self, local: Path, path: str, on_progress: Progress | None, *, move: bool) -> None:
        size = local.stat().st_size
        part = self.part_size(size)
        if size < 2 * part:  # as s3fs decides: one PutObject
            super().upload(local, path, on_progress, move=move)
            return
        bucket, key, _ = self.fs.split_path(self.full(path))
        _Multipart(self.client(), self.config, local, (bucket, key), size, part).run(on_progress)
        self.fs.invalidate_cache(self.full(path))

    @functools.cached_property
    def _client(self) -> Any:
        import botocore.config  # type: ignore[import-untyped]
        import botocore.session  # type: ignore[import-untyped]

        config = self.config
        s3: dict[str, Any] = {}
        if config.addressing_style != "auto":
            s3["addressing_style"] = config.addressing_style
        return botocore.session.get_session().create_client(
            "s3",
            region_name=config.region,
            endpoint_url=config.endpoint_url,
            aws_access_key_id=config.access_key_id,
            aws_secret_access_key=config.secret_access_key.get_secret_value(),
            aws_session_token=config.session_token.get_secret_value() if config.session_token else None,
            config=botocore.config.Config(
                signature_version="s3v4", max_pool_connections=max(10, config.concurrency), s3=s3 or None
            ),
        )

    def client(self) -> Any:
        """The botocore client for multipart uploads (made once; botocore clients are thread-safe)."""
        with self._lock:
            return self._client

    def sign(self, path: str, seconds: int) -> str:
        return str(self.fs.sign(self.full(path), expiration=seconds))

    def secrets(self) -> list[str]:
        return self.config.secret_values()


def crc32_b64(data: bytes | memoryview) -> str:
    """The ``x-amz-checksum-crc32`` value of ``data``: big-endian CRC32, base64."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _read(local: Path, offset: int, length: int, crc: bool) -> tuple[io.BytesIO, str | None]:
    """One part of the file and, if asked, its CRC32, in a worker thread (zlib releases the GIL). The
    file gets its own descriptor per part, so a cancel never races a close.

    The part is read straight into a ``BytesIO``'s own buffer. Given ``bytes``, botocore wraps them in a
    ``BytesIO`` that shares them, and aiohttp's first look at it (``getbuffer``) copies the whole part on
    the event loop to un-share it.
    """
    body = io.BytesIO()
    body.seek(length - 1)
    body.write(b"\0")  # sizes the buffer once
    with body.getbuffer() as view:
        got = 0
        with open(local, "rb", buffering=0) as f:
            f.seek(offset)
            while got < length and (n := f.readinto(view[got:])):
                got += n
        checksum = crc32_b64(view) if crc and got == length else None
    if got != length:
        raise OSError(f"{local} changed while it was uploaded (short read at {offset})")
    body.seek(0)
    return body, checksum


class _Multipart:
    """One multipart upload, its parts sent by ``concurrency`` threads, waited for by the calling thread.

    The calling thread reports progress (so ``on_progress`` runs there, as for the other backends) and
    completes the upload. Anything raised while it waits (a failed part, a progress callback that
    raises, KeyboardInterrupt) stops the parts not yet started, waits for those in flight, and aborts.
    """

    def __init__(
        self, client: Any, config: S3Config, local: Path, where: tuple[str, str], size: int, part: int
    ) -> None:
        self.client = client
        self.bucket, self.key = where
        # Over plain http botocore signs each part's payload (SHA-256) and puts its CRC32 in a header: the
        # CRC32 is computed here with the read (same header, same value). Over https botocore signs no
        # payload and streams the CRC32 in a trailer; a CRC32 given up front would make it SHA-256 the
        # payload there, so it is left to botocore.
        self.crc_in_thread = (config.endpoint_url or "").lower().startswith("http://")
        self.window = max(1, config.concurrency)
        self.local = local
        self.size = size
        self.part = part
        self.count = math.ceil(size / part)
        self.stop = threading.Event()

    def run(self, on_progress: Progress | None) -> None:
        options: dict[str, Any] = {"ChecksumAlgorithm": "CRC32"}
        content_type, _ = mimetypes.guess_type(str(self.local))  # as s3fs's put_file does
        if content_type is not None:
            options["ContentType"] = content_type
        upload_id = self._call("create_multipart_upload", **options)["UploadId"]
        completing = False
        try:
            parts = self._send_parts(upload_id, on_progress)
            if not all("ChecksumCRC32" in p for p in parts):  # a service that ignored the checksum
                parts = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]
            completing = True
            self._call("complete_multipart_upload", UploadId=upload_id, MultipartUpload={"Parts": parts})
        except Exception:
            self._abort(upload_id)  # a refused completion assembled nothing
            raise
        except BaseException:  # a cancel: if it came during the completion, the object may exist
            self._abort(upload_id)
            if completing:
                with contextlib.suppress(Exception):
                    self._call("delete_object")
            raise

    def _call(self, method: str, **kwargs: Any) -> Any:
        return getattr(self.client, method)(Bucket=self.bucket, Key=self.key, **kwargs)

    def _abort(self, upload_id: str) -> None:
        try:
            self._call("abort_multipart_upload", UploadId=upload_id)
        except Exception as exc:  # the first failure is the news; this one only gets logged
            if "NoSuchUpload" not in str(exc):  # already gone
                _log.warning(
                    "S3 upload of %s: could not abort multipart upload %s: %s", self.key, upload_id, exc
                )

    def _send_part(self, upload_id: str, index: int) -> dict[str, Any]:
        if self.stop.is_set():
            raise concurrent.futures.CancelledError
        offset = index * self.part
        length = min(self.part, self.size - offset)
        body, crc = _read(self.local, offset, length, self.crc_in_thread)
        # the headers botocore would send: x-amz-sdk-checksum-algorithm, x-amz-checksum-crc32
        checksum = {"ChecksumAlgorithm": "CRC32"} | ({"ChecksumCRC32": crc} if crc else {})
        response = self._call("upload_part", UploadId=upload_id, PartNumber=index + 1, Body=body, **checksum)
        result = {"PartNumber": index + 1, "ETag": response["ETag"]}
        if response.get("ChecksumCRC32") or crc:
            result["ChecksumCRC32"] = response.get("ChecksumCRC32") or crc
        return result

    def _send_parts(self, upload_id: str, on_progress: Progress | None) -> list[dict[str, Any]]:
        pool = concurrent.futures.ThreadPoolExecutor(self.window, thread_name_prefix="s3-part")
        # all queued at once: a thread takes the next part as soon as it is free (at most `window` read)
        futures = {pool.submit(self._send_part, upload_id, i): i for i in range(self.count)}
        results: list[dict[str, Any]] = [{} for _ in range(self.count)]
        sent = 0
        try:
            pending = set(futures)
            while pending:
                done, pending = concurrent.futures.wait(
                    pending, return_when=concurrent.futures.FIRST_COMPLETED
                )
                for future in done:
                    index = futures[future]
                    results[index] = future.result()  # the first failure, if any
                    sent += min(self.part, self.size - index * self.part)
                    if on_progress is not None:
                        on_progress(sent, self.size)
            return results
        finally:
            self.stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
            # parts in flight end by themselves (a request each); the abort must come after them. (A
            # future cancelled in the queue never counts as done for wait(): left out.)
            running = [f for f in futures if not f.cancelled()]
            concurrent.futures.wait(running, timeout=_CLEANUP_SECONDS)
