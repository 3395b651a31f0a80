"""S3 and S3-compatible services through s3fs.

Pitfalls handled here (see shared/recipes/storage.md):
- ``sign()`` gives SigV2 URLs unless the client is told ``signature_version="s3v4"``.
- s3fs's ``put_file`` sends multipart uploads in lockstep groups (read ``max_concurrency`` parts, send
  them, wait for *all*, read the next group), so the pipe drains at every group boundary. Large files go
  up here instead, as a sliding window: ``concurrency`` parts in flight, the next one read (in a thread)
  and sent as soon as any finishes, through s3fs's own client (credentials, endpoint, region, retries).
  A failure or a cancel aborts the multipart upload: no pending upload and no object is left.
- The multipart upload is created with ``ChecksumAlgorithm=CRC32`` and completed with each part's CRC32,
  as boto3's ``upload_file`` does: the object gets a composite CRC32. Without it the service (AWS, moto)
  computes a full-object CRC64NVME over the whole object at completion.
- The bucket is never created here (``mkdir`` with region us-east-1 sends a LocationConstraint that
  some servers refuse): configuring expects an existing bucket and says so when it is missing.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import io
import logging
import math
import mimetypes
import queue
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
_CLEANUP_SECONDS = 30.0  # how long a cancel waits for in-flight parts to stop and the abort to answer


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
        _Multipart(self, local, self.full(path), size, part).run(on_progress)  # reports up to size
        self.fs.invalidate_cache(self.full(path))

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
    """One multipart upload, run as a coroutine on s3fs's event loop and waited for by the calling thread.

    The calling thread forwards progress (so ``on_progress`` runs there, as for the other backends) and
    turns anything raised while it waits (a progress callback that raises, KeyboardInterrupt) into a
    cancel of the coroutine, then waits for its clean-up: in-flight parts stopped, upload aborted.
    """

    def __init__(self, backend: S3Backend, local: Path, full: str, size: int, part: int) -> None:
        self.fs = backend.fs
        # Over plain http botocore signs each part's payload (SHA-256) and puts its CRC32 in a header,
        # both on the event loop: the CRC32 is computed here with the read instead (same header, same
        # value). Over https botocore signs no payload and streams the CRC32 in a trailer; a CRC32 given
        # up front would make it SHA-256 the payload there, so it is left to botocore.
        self.crc_in_thread = (backend.config.endpoint_url or "").lower().startswith("http://")
        self.window = max(1, backend.config.concurrency)
        self.local = local
        self.bucket, self.key, _ = self.fs.split_path(full)
        self.size = size
        self.part = part
        self.count = math.ceil(size / part)
        self.progress: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self.finished = threading.Event()  # set when the coroutine (and its clean-up) is over

    def run(self, on_progress: Progress | None) -> None:
        future = asyncio.run_coroutine_threadsafe(self._main(), self.fs.loop)
        future.add_done_callback(lambda _: self.progress.put(None))
        try:
            while (done := self.progress.get()) is not None:
                if on_progress is not None:
                    on_progress(done, self.size)
            future.result()
        except BaseException:
            future.cancel()  # the coroutine aborts the upload; wait for that before reporting
            if not self.finished.wait(_CLEANUP_SECONDS):
                _log.warning("S3 upload of %s: clean-up still running after a cancel", self.key)
            elif future.done() and not future.cancelled() and future.exception() is None:
                # completed before the cancel got there (e.g. on_progress raised at the last part)
                with contextlib.suppress(Exception):
                    self.fs.rm_file(f"{self.bucket}/{self.key}")
            raise

    async def _main(self) -> None:
        try:
            await self._upload()
        finally:
            self.finished.set()

    async def _call(self, method: str, **kwargs: Any) -> Any:
        return await self.fs._call_s3(method, Bucket=self.bucket, Key=self.key, **kwargs)

    async def _upload(self) -> None:
        options: dict[str, Any] = {"ChecksumAlgorithm": "CRC32"}
        content_type, _ = mimetypes.guess_type(str(self.local))  # as s3fs's put_file does
        if content_type is not None:
            options["ContentType"] = content_type
        # shielded: once sent, the upload may exist on the server even if we are cancelled meanwhile
        created = asyncio.ensure_future(self._call("create_multipart_upload", **options))
        try:
            upload_id = (await asyncio.shield(created))["UploadId"]
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                late = await asyncio.wait_for(created, _CLEANUP_SECONDS)
                await self._abort(late["UploadId"])
            raise
        try:
            parts = await self._send_parts(upload_id)
        except BaseException:
            await self._abort(upload_id)
            raise
        await self._complete(upload_id, parts)

    async def _complete(self, upload_id: str, parts: list[dict[str, Any]]) -> None:
        if not all("ChecksumCRC32" in p for p in parts):  # a service that ignored the checksum
            parts = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]
        completing = asyncio.ensure_future(
            self._call("complete_multipart_upload", UploadId=upload_id, MultipartUpload={"Parts": parts})
        )
        try:
            await asyncio.shield(completing)
        except asyncio.CancelledError:
            # cancelled while the service assembles the object: let it answer, then undo whichever way
            try:
                await asyncio.wait_for(completing, _CLEANUP_SECONDS)
            except Exception:
                await self._abort(upload_id)
            else:
                with contextlib.suppress(Exception):
                    await self.fs._call_s3("delete_object", Bucket=self.bucket, Key=self.key)
            raise
        except BaseException:
            await self._abort(upload_id)  # refused: nothing was assembled; drop the parts
            raise

    async def _abort(self, upload_id: str) -> None:
        try:
            await asyncio.wait_for(self._call("abort_multipart_upload", UploadId=upload_id), _CLEANUP_SECONDS)
        except FileNotFoundError:
            pass  # NoSuchUpload: already gone
        except Exception as exc:  # the first failure is the news; this one only gets logged
            _log.warning("S3 upload of %s: could not abort multipart upload %s: %s", self.key, upload_id, exc)

    async def _send_parts(self, upload_id: str) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        results: list[dict[str, Any]] = [{} for _ in range(self.count)]
        numbers = iter(range(self.count))
        sent = 0
        reader = concurrent.futures.ThreadPoolExecutor(self.window, thread_name_prefix="s3-part-read")

        async def worker() -> None:
            nonlocal sent
            for index in numbers:  # a shared iterator: each part is taken by exactly one worker
                offset = index * self.part
                length = min(self.part, self.size - offset)
                body, crc = await loop.run_in_executor(
                    reader, _read, self.local, offset, length, self.crc_in_thread
                )
                # the headers botocore would send: x-amz-sdk-checksum-algorithm, x-amz-checksum-crc32
                checksum = {"ChecksumAlgorithm": "CRC32"} | ({"ChecksumCRC32": crc} if crc else {})
                response = await self._call(
                    "upload_part", UploadId=upload_id, PartNumber=index + 1, Body=body, **checksum
                )
                del body
                result = {"PartNumber": index + 1, "ETag": response["ETag"]}
                if response.get("ChecksumCRC32") or crc:
                    result["ChecksumCRC32"] = response.get("ChecksumCRC32") or crc
                results[index] = result
                sent += length
                self.progress.put(sent)

        tasks = [asyncio.ensure_future(worker()) for _ in range(min(self.window, self.count))]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # the first failure, if any
            return results
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            reader.shutdown(wait=False, cancel_futures=True)
