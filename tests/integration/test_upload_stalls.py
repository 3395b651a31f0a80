"""Uploads the storage stops taking end with kind ``stalled`` and are retried like a timeout (issue 13).

Real S3 (moto) behind a TCP proxy on 127.0.0.1 that stops forwarding a connection's request body after
a few kB (the storage "hangs": the SDK's socket fills and its write blocks, nothing is reported). The
stall policy is short (1 MiB/s, 0.5 s window) so the test is quick; a 1 MiB file is one PutObject, so
its write may take 0.5 + 1 MiB / (1 MiB/s) = 1.5 s before it counts as stalled.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from storage_fixtures import BUCKET, S3_REGION
from test_stages import Recorder, context

from tornado_engine.bounds import StallPolicy
from tornado_engine.errors import JobCancelled, StageError, UploadError
from tornado_engine.ffmpeg import FFmpegPaths
from tornado_engine.pipeline.context import Muxed
from tornado_engine.pipeline.upload import upload
from tornado_engine.retry import RetryPolicy
from tornado_engine.storage import S3Config, StorageTarget

pytestmark = pytest.mark.integration

_T = TypeVar("_T")
POLICY = StallPolicy(min_bytes_per_second=2**20, window_seconds=0.5)
SIZE = 2**20


class StallingProxy:
    """TCP on 127.0.0.1 to ``upstream``; the first ``stalls`` connections forward only ``after`` bytes of
    what the client sends, then hold the rest (answers still come back) until ``release()``."""

    def __init__(self, upstream: tuple[str, int], *, stalls: int, after: int) -> None:
        self.upstream, self.stalls, self.after = upstream, stalls, after
        self.stalled = 0
        self.forwarded = 0  # bytes clients sent that reached the upstream
        self.released = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True, name="stalling-proxy").start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            limit = self.after if self.stalled < self.stalls else None
            self.stalled += limit is not None
            for src, dst, cap, upstream in ((client, server, limit, True), (server, client, None, False)):
                threading.Thread(target=self._pump, args=(src, dst, cap, upstream), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, cap: int | None, upstream: bool) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if cap is not None and len(data) > cap:
                    self._send(dst, data[:cap], upstream)
                    self.released.wait()  # reading nothing meanwhile: the client's write blocks
                    data, cap = data[cap:], None
                self._send(dst, data, upstream)
                cap = None if cap is None else cap - len(data)
            dst.shutdown(socket.SHUT_WR)

    def _send(self, dst: socket.socket, data: bytes, upstream: bool) -> None:
        dst.sendall(data)
        self.forwarded += len(data) if upstream else 0

    def release(self) -> None:
        """Forward what was held, and stall no more: a write given up on ends now (its thread too)."""
        self.stalls = 0
        self.released.set()

    def close(self) -> None:
        self.release()
        self._listener.close()


@pytest.fixture
def proxy(request: pytest.FixtureRequest, s3_endpoint: str) -> Iterator[StallingProxy]:
    host, port = s3_endpoint.removeprefix("http://").split(":")
    stalling = StallingProxy((host, int(port)), stalls=request.param, after=16 * 1024)
    yield stalling
    stalling.close()


def _retrying(policy: RetryPolicy, kinds: list[str]) -> Callable[..., Awaitable[Any]]:
    """The runner's retry loop, without its back-off: retried while the policy says so."""

    async def retry(counter: str, attempt: Callable[[], Awaitable[_T]], cleanup: Any = None) -> _T:
        while True:
            try:
                return await attempt()
            except StageError as exc:
                if not policy.should_retry(exc.kind, len(kinds)):
                    raise
                kinds.append(exc.kind)

    return retry


def _ctx(tmp_path: Path, paths: FFmpegPaths, proxy: StallingProxy, kinds: list[str]) -> Any:
    config = S3Config(endpoint_url=proxy.url, access_key_id="testing", secret_access_key="testing",
                      bucket=BUCKET, region=S3_REGION)  # fmt: skip
    ctx = context(Recorder(), tmp_path / "job", paths, storage=StorageTarget(config))
    return dataclasses.replace(ctx, stall=POLICY, retry=_retrying(RetryPolicy(max_retries=1), kinds))


@pytest.fixture
def paths(ffmpeg_bin: str, ffprobe_bin: str) -> FFmpegPaths:
    return FFmpegPaths(ffmpeg_bin, ffprobe_bin)


@pytest.mark.parametrize("proxy", [1], indirect=True)
async def test_a_stalled_upload_is_retried_like_a_timeout(
    tmp_path: Path, paths: FFmpegPaths, proxy: StallingProxy
) -> None:
    kinds: list[str] = []
    ctx = _ctx(tmp_path, paths, proxy, kinds)
    data = os.urandom(SIZE)
    (ctx.folder / "media.mp4").write_bytes(data)
    started = time.monotonic()
    try:
        stored = await upload(ctx, Muxed(ctx.folder / "media.mp4"), title="stalled")
    finally:
        proxy.release()  # before the loop closes: it waits for the abandoned write's thread
    took = time.monotonic() - started
    print(f"upload stalled once, retried: {took:.2f} s")
    assert kinds == ["stalled"] and proxy.stalled == 1
    assert ctx.storage.backend.fs.cat_file(f"{BUCKET}/{stored.media.key}") == data
    assert took < 1.5 + 1.0 + 2  # the stall's bound, the abandoned write's grace, the retry


@pytest.mark.parametrize("proxy", [99], indirect=True)
async def test_an_upload_that_always_stalls_fails_with_kind_stalled(
    tmp_path: Path, paths: FFmpegPaths, proxy: StallingProxy
) -> None:
    kinds: list[str] = []
    ctx = _ctx(tmp_path, paths, proxy, kinds)
    (ctx.folder / "media.mp4").write_bytes(os.urandom(SIZE))
    with pytest.raises(UploadError) as caught:
        try:
            await upload(ctx, Muxed(ctx.folder / "media.mp4"), title="stalled")
        finally:
            proxy.release()
    assert caught.value.kind == "stalled" and kinds == ["stalled"]
    assert caught.value.message == POLICY.storage_message
    assert caught.value.message.startswith("The storage stopped accepting data (under ")


@pytest.mark.parametrize("proxy", [1], indirect=True)
async def test_a_cancelled_upload_the_sdk_finishes_later_leaves_no_object(
    tmp_path: Path, paths: FFmpegPaths, proxy: StallingProxy
) -> None:
    """Cancel lands while the SDK is stuck in a write; the write goes through afterwards (the storage
    wakes up): what it wrote is removed by the write's own thread, with no stage left to do it."""
    executor = concurrent.futures.ThreadPoolExecutor(2)
    ctx = dataclasses.replace(_ctx(tmp_path, paths, proxy, []), stall=StallPolicy(), executor=executor)
    (ctx.folder / "media.mp4").write_bytes(os.urandom(SIZE))
    task = asyncio.create_task(upload(ctx, Muxed(ctx.folder / "media.mp4"), title="late"))
    try:
        async with asyncio.timeout(10):
            while proxy.forwarded < proxy.after:  # the PUT is on its way, and stuck
                await asyncio.sleep(0.05)
        ctx.cancel.set()
        ctx.cancel_async.set()
        with pytest.raises(JobCancelled):
            await task
    finally:
        proxy.release()
    await asyncio.to_thread(executor.shutdown, wait=True)  # the late write has ended
    assert proxy.forwarded > SIZE  # the whole object reached the storage after the cancel
    assert not ctx.storage.exists(ctx.storage.full_key("late.mp4"))
