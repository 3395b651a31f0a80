"""A dripping source ends ``stalled`` (bounds.StallPolicy), by the fast path and by yt-dlp through the guard.

The fixture server's ``/drip/<bytes>/<seconds>/<file>`` sends a few bytes at a time, never quite going
silent, so no socket timeout fires; a small test policy (4 KiB/s over 2 s) makes the test take seconds.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import time
from pathlib import Path

import pytest
from jobkit import run_job

from tornado_engine import Engine, RetryPolicy, StallPolicy, Status
from tornado_engine.errors import DownloadError
from tornado_engine.netguard import NetGuard
from tornado_engine.pipeline.fastpath import FastPathTuning, download_sync
from tornado_engine.safety import NetworkPolicy
from tornado_engine.testing import MediaServer

pytestmark = pytest.mark.integration

POLICY = StallPolicy(min_bytes_per_second=4096, window_seconds=2)
DRIP = "drip/100/0.25/progressive.mp4"  # 400 B/s: under the policy's 4 KiB/s, never silent for long
NO_RETRY = RetryPolicy(max_retries=0)


def _info(url: str) -> dict[str, object]:
    fmt = {"format_id": "mp4", "url": url, "ext": "mp4", "protocol": "http"}
    return {"id": "x", "title": "x", "formats": [fmt], "tornado_selected_format_ids": ["mp4"]}


def test_fast_path_ends_a_drip_stalled(media_server: MediaServer, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(DownloadError) as caught:
        download_sync(
            _info(media_server.url(DRIP)), tmp_path, on_progress=lambda *a: None, cancel=threading.Event(),
            socket_timeout=5.0, policy=NetworkPolicy.build(["127.0.0.0/8"]), stall=POLICY,
            tuning=FastPathTuning(connections=1),
        )  # fmt: skip
    took = time.monotonic() - started
    print(f"fast path: stalled after {took:.2f} s")
    assert caught.value.kind == "stalled"
    assert caught.value.message == POLICY.message
    assert took < POLICY.window_seconds + 3
    # what arrived is kept, with its sidecar, for the retry to resume
    assert sorted(p.name for p in tmp_path.iterdir()) == ["media.mp4.mp4", "media.mp4.mp4.resume.json"]


@pytest.mark.parametrize(
    ("path", "strategy"),
    [(DRIP, "fastpath"), (f"ie/ok/{DRIP}", "ytdlp")],  # the test extractor's cookies keep the fast path off
)
async def test_engine_job_on_a_drip_fails_stalled(
    media_server: MediaServer, tmp_path: Path, path: str, strategy: str
) -> None:
    async with Engine.open(
        data_dir=tmp_path / "engine", poll_interval=0.1, stall=POLICY, retry=NO_RETRY, socket_timeout=10
    ) as engine:
        started = time.monotonic()
        job = await run_job(engine, timeout=60, url=media_server.url(path))
        took = time.monotonic() - started
    print(f"{strategy}: job ended {job.status.value} after {took:.2f} s: {job.error}")
    assert job.status is Status.FAILED
    assert job.error == POLICY.message
    assert job.download_strategy == strategy
    assert took < POLICY.window_seconds + 8


async def test_a_page_that_drips_during_the_resolve_fails_stalled(
    media_server: MediaServer, tmp_path: Path
) -> None:
    # yt-dlp's generic extractor reads the whole page; the guard cuts it, and the resolve says why
    async with Engine.open(
        data_dir=tmp_path / "engine", poll_interval=0.1, stall=POLICY, retry=NO_RETRY, socket_timeout=10
    ) as engine:
        job = await run_job(engine, timeout=60, url=media_server.url("drip/50/0.5/page.html"))
    assert job.status is Status.FAILED
    assert job.error == POLICY.message
    assert job.download_strategy is None  # it never got past the resolve


async def test_a_stall_is_retried(media_server: MediaServer, tmp_path: Path) -> None:
    retry = RetryPolicy(max_retries=1, base_delay=0.05, max_delay=0.1)
    async with Engine.open(data_dir=tmp_path / "engine", poll_interval=0.1, stall=POLICY, retry=retry) as eng:
        job = await run_job(eng, timeout=60, url=media_server.url(f"ie/ok/{DRIP}"))
    assert job.status is Status.FAILED and job.error == POLICY.message
    assert job.download_retries == 1


def _through_guard(guard: NetGuard, job: str, first: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", int(guard.url.rsplit(":", 1)[1])), timeout=10)
    token = base64.b64encode(f"{job}:x".encode()).decode()
    sock.sendall(first.replace(b"\r\n\r\n", f"\r\nProxy-Authorization: Basic {token}\r\n\r\n".encode(), 1))
    return sock


def _read_until_closed(sock: socket.socket) -> float:
    started = time.monotonic()
    with contextlib.suppress(ConnectionError):
        while sock.recv(65536):
            pass
    return time.monotonic() - started


def test_guard_cuts_a_dripping_tunnel_and_tells_whose_it_was(media_server: MediaServer) -> None:
    guard = NetGuard(NetworkPolicy.build(["127.0.0.0/8"]), stall=POLICY)
    guard.start()
    try:
        authority = f"127.0.0.1:{media_server.port}".encode()
        sock = _through_guard(guard, "job-a", b"CONNECT " + authority + b" HTTP/1.1\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        sock.sendall(f"GET /{DRIP} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        took = _read_until_closed(sock)
        print(f"guard tunnel: a drip cut after {took:.2f} s")
        assert POLICY.window_seconds - 0.5 < took < POLICY.window_seconds + 3
        assert guard.take_stall("job-a") and not guard.take_stall("job-a")  # told once
        idle = _through_guard(guard, "job-b", b"CONNECT " + authority + b" HTTP/1.1\r\n\r\n")
        assert idle.recv(1024).startswith(b"HTTP/1.1 200")
        time.sleep(POLICY.window_seconds + 1.5)  # a kept-alive tunnel that sits idle is no stall
        assert not guard.take_stall("job-b")
        guard.cut("job-b")  # cancel: its connections close at once, new ones are refused
        assert _read_until_closed(idle) < 1.0
        again = _through_guard(guard, "job-b", b"CONNECT " + authority + b" HTTP/1.1\r\n\r\n")
        assert again.recv(1024).startswith(b"HTTP/1.1 410")
        for s in (sock, idle, again):
            s.close()
    finally:
        guard.stop()
