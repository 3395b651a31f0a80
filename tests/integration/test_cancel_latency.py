"""Cancel and ``Engine.close()`` stop a job within 2 s, also when its source drips (issue 13).

yt-dlp calls its progress hook once per block, so a dripping source would keep a cancelled download going
for minutes; the network guard cuts the job's connections on cancel instead, and the fast path looks at
cancel every tick. The default stall policy (30 s) is left on, so nothing here ends by a stall.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from test_live import LiveStream, live  # noqa: F401 - the live HLS stream fixture
from test_stages import Recorder, context

from tornado_engine import Engine, JobCreated, JobRequest, Status, Step
from tornado_engine.errors import JobCancelled
from tornado_engine.ffmpeg import FFmpegPaths
from tornado_engine.pipeline.context import Muxed
from tornado_engine.pipeline.upload import upload
from tornado_engine.storage import StorageTarget
from tornado_engine.storage.base import LocalBackend, Progress
from tornado_engine.testing import MediaServer

pytestmark = pytest.mark.integration

DRIP = "drip/100/0.25/progressive.mp4"
BOUND = 2.0  # the bound


async def _downloading(engine: Engine, url: str) -> str:
    """Submit ``url`` and return its job id once it is downloading (and has been for a moment)."""
    created = await engine.create_job(JobRequest(url=url))
    assert isinstance(created, JobCreated)
    async with asyncio.timeout(30):
        while (job := await engine.get_job(created.job_id)).step is not Step.DOWNLOADING:
            assert not job.is_terminal, job.error
            await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # well inside the blocked read now
    return created.job_id


async def _stage_ended(engine: Engine, job_id: str) -> None:
    """Until the job's attempt is over here (its stage thread returned), not only its stored status."""
    runner = engine._runtime._runner
    assert runner is not None
    async with asyncio.timeout(30):
        while job_id in runner.active:
            await asyncio.sleep(0.01)


@pytest.mark.parametrize(("path", "strategy"), [(DRIP, "fastpath"), (f"ie/ok/{DRIP}", "ytdlp")])
async def test_cancel_of_a_dripping_download_lands_within_2_s(
    media_server: MediaServer, tmp_path: Path, path: str, strategy: str
) -> None:
    async with Engine.open(data_dir=tmp_path / "engine", poll_interval=0.1) as engine:
        job_id = await _downloading(engine, media_server.url(path))
        started = time.monotonic()
        await engine.cancel_job(job_id)
        job = await engine.wait(job_id, timeout=30)
        await _stage_ended(engine, job_id)
        took = time.monotonic() - started
    print(f"cancel ({strategy}, dripping source): {took:.2f} s")
    assert job.status is Status.CANCELLED
    assert job.download_strategy == strategy
    assert took < BOUND


@pytest.mark.parametrize(("path", "strategy"), [(DRIP, "fastpath"), (f"ie/ok/{DRIP}", "ytdlp")])
async def test_close_stops_a_dripping_download_and_waits_for_its_threads(
    media_server: MediaServer, tmp_path: Path, path: str, strategy: str
) -> None:
    engine = Engine(data_dir=tmp_path / "engine", poll_interval=0.1)
    await engine.start()
    try:
        await _downloading(engine, media_server.url(path))
    finally:
        started = time.monotonic()
        await engine.close()
        took = time.monotonic() - started
    print(f"close ({strategy}, dripping source): {took:.2f} s")
    left = [t.name for t in threading.enumerate() if t.name.startswith(("tornado-stage", "fastpath"))]
    assert left == []
    assert took < BOUND


async def test_cancel_of_a_live_recording_lands_within_2_s(tmp_path: Path, live: LiveStream) -> None:  # noqa: F811
    async with Engine.open(data_dir=tmp_path / "engine", poll_interval=0.1) as engine:
        created = await engine.create_job(JobRequest(url=live.url, live_recording=True, max_duration=120))
        assert isinstance(created, JobCreated)
        async with asyncio.timeout(30):
            while (job := await engine.get_job(created.job_id)).step is not Step.DOWNLOADING:
                assert not job.is_terminal, job.error
                await asyncio.sleep(0.05)
        await asyncio.sleep(3.0)  # ffmpeg is recording now
        started = time.monotonic()
        await engine.cancel_job(created.job_id)
        job = await engine.wait(created.job_id, timeout=30)
        await _stage_ended(engine, created.job_id)
        took = time.monotonic() - started
    print(f"cancel (live recording): {took:.2f} s")
    assert job.status is Status.CANCELLED
    assert took < BOUND
    assert live.running  # only the recording stopped


class _HungBackend(LocalBackend):
    """A storage SDK stuck in a write: one progress report, then nothing until released."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.release = threading.Event()

    def upload(self, local: Path, path: str, on_progress: Progress | None, *, move: bool) -> None:
        if on_progress is not None:
            on_progress(1, 2)
        self.release.wait(30)
        super().upload(local, path, on_progress, move=move)


async def test_cancel_of_a_hung_upload_lands_within_2_s(
    tmp_path: Path, ffmpeg_bin: str, ffprobe_bin: str
) -> None:
    storage = StorageTarget((tmp_path / "store").as_uri())
    backend = storage._backend = _HungBackend(tmp_path / "store")
    rec = Recorder()
    ctx = context(rec, tmp_path / "job", FFmpegPaths(ffmpeg_bin, ffprobe_bin), storage=storage)
    media = ctx.folder / "media.mp4"
    media.write_bytes(b"x" * 1000)
    task = asyncio.create_task(upload(ctx, Muxed(media), title="clip"))
    await asyncio.sleep(0.5)
    started = time.monotonic()
    ctx.cancel.set()
    ctx.cancel_async.set()
    with pytest.raises(JobCancelled):
        await task
    took = time.monotonic() - started
    backend.release.set()  # the stuck write ends now: at its next report it stops too
    print(f"cancel (hung upload): {took:.2f} s")
    assert took < BOUND
