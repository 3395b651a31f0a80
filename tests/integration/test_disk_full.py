"""A disk that fills (issue 13, point 7): the engine's work folder on an 8 MB tmpfs.

Each job that cannot fit ends ``disk_full`` after the (tiny) retry policy's one retry, leaves no file in
the work folder, and the same engine then completes a small job; the pre-download check refuses a job
that cannot fit before any media byte is asked for. The store and the stored files live outside the
tmpfs, as they would on a real worker whose scratch disk fills.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from jobkit import run_job

from tornado_engine import Engine, JobRequest, Status
from tornado_engine.models import Job
from tornado_engine.pipeline.context import Resolved
from tornado_engine.pipeline.resolver import resolve_sync
from tornado_engine.retry import RetryPolicy, outcome_for
from tornado_engine.testing import MediaServer, MediaSet

pytestmark = pytest.mark.integration

DISK = 8 * 1024 * 1024
TINY_RETRY = RetryPolicy(max_retries=1, base_delay=0.05, max_delay=0.1)
DISK_FULL = outcome_for("disk_full").message


def _mount_small_disk(where: Path) -> None:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 and not os.environ.get("CI"):
        pytest.skip("mounting a tmpfs needs root (CI runs as root, and fails here instead)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(where)], capture_output=True, text=True
    )
    if done.returncode != 0:  # never skip under CI: the guarantee would go untested
        pytest.fail(f"cannot mount a tmpfs: {done.stderr.strip()}", pytrace=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """The engine's work folder (``data_dir/tmp``) on an 8 MB tmpfs, unmounted afterwards."""
    work = tmp_path / "engine" / "tmp"
    _mount_small_disk(work)
    try:
        yield work
    finally:
        subprocess.run(["umount", "-l", str(work)], check=False)


@contextlib.asynccontextmanager
async def _engine(tmp_path: Path, reserve: int = 0) -> AsyncIterator[Engine]:
    async with Engine.open(
        data_dir=tmp_path / "engine", concurrency=2, poll_interval=0.1, retry=TINY_RETRY,
        disk_reserve_bytes=reserve,
    ) as engine:  # fmt: skip
        yield engine


@pytest.fixture(scope="module")
def big_root(tmp_path_factory: pytest.TempPathFactory, ffmpeg_bin: str) -> Path:
    """``big.mp4``: 12 MB that cannot fit; ``mux.mkv``: 5 MB of h264/aac whose mp4 copy cannot fit too."""
    root = tmp_path_factory.mktemp("big")
    (root / "big.mp4").write_bytes(os.urandom(12 * 1024 * 1024))  # refused long before it is probed
    subprocess.run(
        [ffmpeg_bin, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "3", "-c:v", "libx264",
         "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
         str(root / "mux.mkv")],
        check=True,
    )  # fmt: skip
    size = (root / "mux.mkv").stat().st_size
    assert DISK / 2 < size < DISK - 1024 * 1024, size  # fits once, not twice
    return root


@pytest.fixture(scope="module")
def big_server(big_root: Path) -> Iterator[MediaServer]:
    with MediaServer(big_root) as srv:
        yield srv


@pytest.fixture(scope="module")
def no_range_server(big_root: Path) -> Iterator[str]:
    """The same files without Range support: the fast path falls back, yt-dlp downloads."""
    handler = functools.partial(_Quiet, directory=str(big_root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _files(folder: Path) -> list[str]:
    """Files under ``folder`` but the slot locks (``engine-N.lock``: they name the last holder)."""
    return [os.path.join(d, n) for d, _, names in os.walk(folder) for n in names if not n.endswith(".lock")]


def _assert_disk_full(job: Job, work: Path) -> None:
    assert job.status is Status.FAILED, (job.status, job.error)
    assert job.error_type == "error"
    assert job.download_retries == TINY_RETRY.max_retries  # transient: retried, then given up
    assert _files(work) == []  # no partial file left behind
    assert shutil.disk_usage(work).used < 256 * 1024


async def _then_a_small_job_completes(engine: Engine, media_server: MediaServer, media_set: MediaSet) -> None:
    job = await run_job(engine, url=media_server.url(media_set.progressive_mp4), timeout=60)
    assert job.status is Status.COMPLETED, job.error
    assert _files(engine.data_dir / "tmp") == []


async def test_a_fast_download_that_fills_the_disk(
    tmp_path: Path, small_disk: Path, big_server: MediaServer, media_server: MediaServer, media_set: MediaSet
) -> None:
    async with _engine(tmp_path) as engine:
        job = await run_job(engine, url=big_server.url("big.mp4"), timeout=60)
        assert job.download_strategy == "fastpath"  # a failed fast download says so too
        assert job.error == DISK_FULL
        _assert_disk_full(job, small_disk)
        await _then_a_small_job_completes(engine, media_server, media_set)


async def test_a_ytdlp_download_that_fills_the_disk(
    tmp_path: Path, small_disk: Path, no_range_server: str, media_server: MediaServer, media_set: MediaSet
) -> None:
    async with _engine(tmp_path) as engine:
        job = await run_job(engine, url=f"{no_range_server}/big.mp4", timeout=60)
        assert job.download_strategy == "ytdlp"
        assert job.error == DISK_FULL
        _assert_disk_full(job, small_disk)
        await _then_a_small_job_completes(engine, media_server, media_set)


async def test_a_mux_that_fills_the_disk(
    tmp_path: Path, small_disk: Path, big_server: MediaServer, media_server: MediaServer, media_set: MediaSet
) -> None:
    async with _engine(tmp_path) as engine:
        job = await run_job(engine, url=big_server.url("mux.mkv"), format="mp4", timeout=60)
        assert job.error is not None and "No space left on device" in job.error, job.error
        assert job.native_video_codec == "h264"  # it got as far as the mux's probe
        _assert_disk_full(job, small_disk)
        await _then_a_small_job_completes(engine, media_server, media_set)


async def test_the_free_space_check_refuses_before_any_media_byte(
    tmp_path: Path, small_disk: Path, media_server: MediaServer, media_set: MediaSet
) -> None:
    url = media_server.url(media_set.dash_mpd)
    info = await asyncio.to_thread(resolve_sync, url, None, 5.0)
    expected = Resolved(info).expected_bytes
    assert 0 < expected < DISK // 2
    free = shutil.disk_usage(small_disk).free
    reserve = free - expected // 2  # room for half of it
    media = [p for p in media_server.hits if p.startswith("/dash/") and not p.endswith(".mpd")]
    before = {p: media_server.hits[p] for p in media}
    async with _engine(tmp_path, reserve=reserve) as engine:
        job = await run_job(engine, url=url, timeout=60)
    assert job.status is Status.FAILED
    assert job.error is not None and job.error.startswith("Not enough disk space"), job.error
    assert job.download_retries == TINY_RETRY.max_retries
    after = [p for p in media_server.hits if p.startswith("/dash/") and not p.endswith(".mpd")]
    assert {p: media_server.hits[p] for p in after} == before  # not one segment was asked for
    assert job.download_strategy is None  # refused before the download stage began


async def test_usage_shows_the_temporary_space_in_use(
    engine: Engine, media_server: MediaServer, media_set: MediaSet
) -> None:
    created = await engine.create_job(JobRequest(url=media_server.url("slow/" + media_set.progressive_mp4)))
    seen = 0
    async with asyncio.timeout(30):
        while seen == 0:
            seen = (await engine.usage()).temp_bytes
            job = await engine.get_job(created.job_id)
            assert not job.is_terminal or seen, "finished before any temporary byte was seen"
            await asyncio.sleep(0.05)
    job = await engine.wait(created.job_id, timeout=60)
    assert job.status is Status.COMPLETED, job.error
    assert 0 < seen <= 2 * (media_set.path(media_set.progressive_mp4).stat().st_size + 1024 * 1024)
    assert (await engine.usage()).temp_bytes == 0
    assert (await engine.tenant("someone-else").usage()).temp_bytes == 0
