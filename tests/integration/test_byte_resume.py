"""Byte-level resume (issue 13 point 4): a download cut short (a reset, a kill -9 of the process) goes on
from the bytes on disk with a Range request, on the fast path and on yt-dlp's, when the source's
validators are unchanged; a changed source starts over from byte 0. The server logs every request's
Range and If-Range and counts the body bytes it sent, so "asked only for the rest" is measured.

The media is a real MP4 with a ``free`` box of seeded random bytes appended (8 MiB): valid, ffprobe reads
it, and any byte out of place changes its hash. ``ie/plain/...`` (the test extractor, no cookies) takes the
fast path, ``ie/ok/...`` (cookies) yt-dlp's; ``slow/`` throttles, so a kill lands at ~60%.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jobkit import local_path

from tornado_engine import Engine, JobRequest, Status
from tornado_engine.errors import DownloadError
from tornado_engine.partial import done_bytes
from tornado_engine.partialfile import SUFFIX, load
from tornado_engine.pipeline import downloader, fastpath
from tornado_engine.retry import RetryPolicy
from tornado_engine.safety import NetworkPolicy
from tornado_engine.testing import MediaServer, MediaSet, ServedRequest
from tornado_engine.workspace import Workspace

pytestmark = pytest.mark.integration

SIZE = 8 * 2**20
RATE = 3 * 2**20  # bytes/s per connection on the slow/ route
FAST = "ie/plain/slow/big.mp4"  # no cookies: the fast path takes it
YTDLP = "ie/ok/slow/big.mp4"  # cookies: yt-dlp's path
CUT = 3 * 2**20  # body bytes sent before the reset
QUICK = RetryPolicy(base_delay=0.05, max_delay=0.1)
HERE = Path(__file__).parent


def _big_mp4(small: Path, dest: Path, size: int, seed: int) -> bytes:
    """``small`` with a ``free`` box of seeded random bytes appended up to ``size`` bytes."""
    head = small.read_bytes()
    filler = random.Random(seed).randbytes(size - len(head) - 8)
    data = head + struct.pack(">I", len(filler) + 8) + b"free" + filler
    dest.write_bytes(data)
    return data


@pytest.fixture(scope="module")
def big(media_set: MediaSet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MediaServer, bytes]]:
    root = tmp_path_factory.mktemp("big")
    data = _big_mp4(media_set.path(media_set.progressive_mp4), root / "big.mp4", SIZE, seed=1)
    with MediaServer(root, slow_bytes_per_sec=RATE) as server:
        yield server, data


def _ranged(requests: list[ServedRequest], path: str) -> list[ServedRequest]:
    return [r for r in requests if r.path == path and r.range]


def _start(request: ServedRequest) -> int:
    return int((request.range or "").split("=")[1].split("-")[0])


@pytest.mark.parametrize(("route", "strategy"), [(FAST, "fastpath"), (YTDLP, "ytdlp")])
async def test_a_reset_mid_transfer_is_resumed_in_the_same_attempt(
    big: tuple[MediaServer, bytes], tmp_path: Path, route: str, strategy: str
) -> None:
    server, data = big
    url = server.url(route.replace("slow/", ""))
    server.reset_once("big.mp4", after=CUT)
    before, sent = len(server.requests), server.sent["/big.mp4"]
    async with Engine.open(data_dir=tmp_path / "engine", poll_interval=0.1, retry=QUICK) as engine:
        job = await engine.wait((await engine.create_job(JobRequest(url=url))).job_id, timeout=60)
    assert job.status is Status.COMPLETED, job.error
    assert (job.download_strategy, job.download_retries) == (strategy, 1)
    assert local_path(job.s3_url).read_bytes() == data
    ranged = _ranged(server.requests[before:], "/big.mp4")
    resumed = [r for r in ranged if r.if_range]  # the retry's requests: "the rest, if still that version"
    kept = min(_start(r) for r in resumed)  # what the first try had written when the reset came
    refetched = server.sent["/big.mp4"] - sent - SIZE
    print(f"reset after 3 MiB sent ({strategy}): resumed at byte {kept}, {refetched} bytes sent twice")
    assert 0 < kept <= CUT
    assert refetched == CUT - kept  # only what the reset lost in flight was sent again


def _cut(fetch: Any, server: MediaServer, job_dir: Path) -> None:
    server.reset_once("v2.mp4", after=2**20)
    with pytest.raises(DownloadError):
        fetch()
    assert list(job_dir.glob(f"*{SUFFIX}")), "the cut download left no partial file"


@pytest.mark.parametrize("if_range", [True, False], ids=["if-range", "compared"])
@pytest.mark.parametrize("strategy", ["fastpath", "ytdlp"])
def test_changed_validators_start_over_from_byte_0(
    big: tuple[MediaServer, bytes], media_set: MediaSet, tmp_path: Path, strategy: str, if_range: bool
) -> None:
    """The server answers a stale If-Range with the whole new file, or (ignoring If-Range) with the rest
    of the new one: then the first response's validators tell, and the download starts over."""
    server, _ = big
    small = media_set.path(media_set.progressive_mp4)
    _big_mp4(small, server.root / "v2.mp4", 3 * 2**20, seed=2)
    url = server.url("v2.mp4")
    info = {"id": "x", "title": "x", "tornado_selected_format_ids": ["mp4"],
            "formats": [{"format_id": "mp4", "url": url, "ext": "mp4", "protocol": "http"}]}  # fmt: skip
    common: dict[str, Any] = {"on_progress": lambda *a: None, "cancel": threading.Event()}
    if strategy == "fastpath":
        policy = NetworkPolicy.build(["127.0.0.0/8"])

        def fetch() -> Any:
            return fastpath.download_sync(info, tmp_path, policy=policy, **common)
    else:

        def fetch() -> Any:
            return downloader.download_sync(info, tmp_path, **common)

    version = f"{strategy}-{if_range}"
    server.set_validators("v2.mp4", etag=f'"{version}-old"', last_modified="Sat, 05 Dec 2026 07:00:00 GMT")
    _cut(fetch, server, tmp_path)
    new = _big_mp4(small, server.root / "v2.mp4", 3 * 2**20, seed=3)  # same size, other bytes
    server.set_validators("v2.mp4", etag=f'"{version}-new"', last_modified="Sat, 05 Dec 2026 08:00:00 GMT")
    before = len(server.requests)
    server.honour_if_range(if_range)
    try:
        result = fetch()
    finally:
        server.honour_if_range(True)
    assert result.files[0].read_bytes() == new
    ranged = _ranged(server.requests[before:], "/v2.mp4")
    assert ranged[0].if_range is not None and _start(ranged[0]) > 0  # it asked for the rest first...
    starts = [_start(r) for r in ranged[1:] if r.if_range != ranged[0].if_range]
    # ...got the whole new version (If-Range failed): yt-dlp took it, the fast path asked again from 0;
    # or the rest of the new one, which the validators refused: both asked again from 0
    assert (strategy == "ytdlp" and if_range) or starts[0] == 0
    assert not list(tmp_path.glob(f"*{SUFFIX}"))


_WORKER = """
import asyncio, sys
from tornado_engine import Engine, JobRequest

async def main() -> None:
    async with Engine.open(data_dir=sys.argv[1], poll_interval=0.1, lease_seconds=2) as engine:
        created = await engine.create_job(JobRequest(url=sys.argv[2]))
        print(created.job_id, flush=True)
        await asyncio.sleep(600)

asyncio.run(main())
"""


def _on_disk(folder: Path) -> int:
    """What the killed process had written and vouched for: a sidecar's spans, or a .part's size."""
    for sidecar in folder.glob(f"*{SUFFIX}"):
        media = sidecar.with_name(sidecar.name.removesuffix(SUFFIX))
        partial = load(media)
        assert partial is not None
        return media.stat().st_size if media.name.endswith(".part") else done_bytes(partial.spans)
    raise AssertionError(f"no partial download in {sorted(p.name for p in folder.iterdir())}")


@pytest.mark.parametrize(("route", "strategy"), [(FAST, "fastpath"), (YTDLP, "ytdlp")])
async def test_kill_9_at_60_percent_then_a_new_process_asks_only_for_the_rest(
    big: tuple[MediaServer, bytes], tmp_path: Path, route: str, strategy: str
) -> None:
    server, data = big
    data_dir = tmp_path / "engine"
    # the fast path's run: the victim works in slot 1, the new engine in slot 0 and adopts its folder
    held = Workspace.take(data_dir / "tmp") if strategy == "fastpath" else None
    paths = [str(HERE.parents[1] / "src"), str(HERE.parent / "plugins")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    victim = subprocess.Popen([sys.executable, "-c", _WORKER, str(data_dir), server.url(route)], env=env,
                              stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)  # fmt: skip
    started, sent = time.monotonic(), server.sent["/slow/big.mp4"]
    try:
        assert victim.stdout is not None
        job_id = victim.stdout.readline().decode().strip()
        while server.sent["/slow/big.mp4"] - sent < 0.6 * SIZE:
            assert victim.poll() is None and time.monotonic() - started < 60
            await asyncio.sleep(0.01)
    finally:
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
    slot = data_dir / "tmp" / ("engine-1" if held else "engine-0")
    on_disk = _on_disk(slot / job_id)
    await asyncio.sleep(0.2)  # the server notices the dead connections
    before, sent = len(server.requests), server.sent["/slow/big.mp4"]
    if held is not None:
        held.release()
    async with Engine.open(data_dir=data_dir, poll_interval=0.1, lease_seconds=2) as engine:
        job = await engine.wait(job_id, timeout=60)
    assert job.status is Status.COMPLETED, job.error
    assert job.download_strategy == strategy
    stored = local_path(job.s3_url).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(data).hexdigest()
    ranged = _ranged(server.requests[before:], "/slow/big.mp4")
    first = min(_start(r) for r in ranged)
    refetched = server.sent["/slow/big.mp4"] - sent
    print(f"kill -9 ({strategy}): {on_disk} of {SIZE} bytes on disk, resumed at byte {first}, "
          f"{refetched} bytes fetched after, {time.monotonic() - started:.1f}s")  # fmt: skip
    assert 0.4 * SIZE < on_disk < SIZE
    assert first == on_disk if strategy == "ytdlp" else 0 < first <= on_disk
    assert refetched == SIZE - on_disk  # exactly the missing bytes
