"""Resolve bounds on generated manifests (the fixture server's ``/huge/`` routes): each bound fails the job
``too_large`` quickly, with the event loop's lag and the process's memory growth measured in this process."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tornado_engine import Engine, JobCreated, JobRequest, Quota
from tornado_engine.bounds import ResolveBounds
from tornado_engine.errors import ResolveError
from tornado_engine.models import Job
from tornado_engine.pipeline.downloader import download_sync
from tornado_engine.pipeline.resolver import resolve_sync
from tornado_engine.states import Status
from tornado_engine.testing import MediaServer, MediaSet

MAX_LAG = 0.2  # seconds the loop may be late (the bound; a frozen loop was late by minutes)
MAX_GROWTH_MB = 64  # a 3,000,000-segment timeline cost about 2 GB expanded (300,000: +192 MB measured)


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


class _Watch:
    """Samples the loop's lag every 10 ms and the process's peak RSS (VmHWM, reset at the start)."""

    def __init__(self) -> None:
        self.max_lag = 0.0
        with contextlib.suppress(OSError):  # "5" resets the peak RSS to the current RSS (Linux >= 4.0)
            Path("/proc/self/clear_refs").write_text("5")
        self.base_kb = _status_kb("VmRSS")

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            self.max_lag = max(self.max_lag, loop.time() - before - 0.01)

    @property
    def growth_mb(self) -> float:
        return (max(_status_kb("VmHWM"), _status_kb("VmRSS")) - self.base_kb) / 1024


@contextlib.asynccontextmanager
async def _watched() -> AsyncIterator[_Watch]:
    watch = _Watch()
    task = asyncio.create_task(watch.run())
    try:
        yield watch
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def engine(tmp_path: Path, media_server: MediaServer) -> AsyncIterator[Engine]:
    async with Engine.open(data_dir=tmp_path / "engine", concurrency=32, poll_interval=0.1) as eng:
        # warm up: yt-dlp's extractors are loaded once per process, not counted against a bound
        await eng.extract_metadata(media_server.url("huge/hls/10.m3u8"))
        yield eng


async def _failed(engine: Engine, url: str) -> tuple[Job, float]:
    started = time.monotonic()
    created = await engine.create_job(JobRequest(url=url))  # the playlist probe reads it first
    assert isinstance(created, JobCreated)
    job = await engine.wait(created.job_id, timeout=60)
    return job, time.monotonic() - started


@pytest.mark.parametrize(
    ("path", "bound"),
    [
        ("hls/100001.m3u8", "100,001 segments; the limit is 100,000 (max_segments)"),
        ("hls-plain/100001", "100,001 segments; the limit is 100,000 (max_segments)"),  # sniffed
        ("dash-list/100001.mpd", "100,001 segments; the limit is 100,000 (max_segments)"),
        ("dash-timeline/3000000.mpd", "3,000,000 segments; the limit is 100,000 (max_segments)"),
        ("dash-months.mpd", "the limit is 86400 s (max_duration_seconds)"),
    ],
)
async def test_each_bound_fails_the_job_quickly(
    engine: Engine, media_server: MediaServer, path: str, bound: str
) -> None:
    async with _watched() as watch:
        job, seconds = await _failed(engine, media_server.url(f"huge/{path}"))
    assert job.status is Status.FAILED and job.error is not None and bound in job.error, job.error
    assert job.attempts == 1  # permanent: never retried
    print(f"{path}: {seconds:.2f} s, max lag {watch.max_lag * 1000:.0f} ms, +{watch.growth_mb:.0f} MB")
    assert seconds < 10, seconds  # measured 0.1-0.4 s; unbounded, 300,000 segments took 1.8 s and +192 MB
    assert watch.max_lag < MAX_LAG, watch.max_lag
    assert watch.growth_mb < MAX_GROWTH_MB, watch.growth_mb


@pytest.mark.parametrize("route", ["hls", "hls-stream"])  # refused on Content-Length; read to the cap
async def test_manifest_size_is_judged_before_parsing(
    tmp_path: Path, media_server: MediaServer, route: str
) -> None:
    bounds = ResolveBounds(max_manifest_bytes=2**20)
    opened = Engine.open(data_dir=tmp_path / "e", poll_interval=0.1, resolve_bounds=bounds)
    async with opened as engine, _watched() as watch:
        job, seconds = await _failed(engine, media_server.url(f"huge/{route}/100001.m3u8"))  # 2.4 MB
    assert job.status is Status.FAILED and "over the 1 MiB limit (max_manifest_bytes)" in (job.error or "")
    assert seconds < 10 and watch.max_lag < MAX_LAG, (seconds, watch.max_lag)


async def test_a_tenant_quota_caps_the_declared_duration(engine: Engine, media_server: MediaServer) -> None:
    tenant = engine.tenant("bob")
    await tenant.set_quota(Quota(max_duration_seconds=60))
    created = await tenant.create_job(JobRequest(url=media_server.url("huge/hls/100.m3u8")))  # 200 s
    assert isinstance(created, JobCreated)
    job = await tenant.wait(created.job_id, timeout=60)
    assert job.status is Status.FAILED and "allows at most 60 s" in (job.error or ""), job.error


async def test_metadata_is_bounded_too(engine: Engine, media_server: MediaServer) -> None:
    async with _watched() as watch:
        with pytest.raises(ResolveError, match="max_segments") as caught:
            await engine.extract_metadata(media_server.url("huge/dash-timeline/3000000.mpd"))
    assert caught.value.kind == "too_large"
    assert watch.max_lag < MAX_LAG and watch.growth_mb < MAX_GROWTH_MB, (watch.max_lag, watch.growth_mb)


async def test_many_resolves_at_once_leave_the_loop_responsive(
    engine: Engine, media_server: MediaServer
) -> None:
    """40 resolves of 2.4 MB manifests at once: the resolve pool (sized to the cores) keeps the loop free."""
    url = media_server.url("huge/dash-list/100001.mpd")
    async with _watched() as watch:
        results = await asyncio.gather(
            *(engine.extract_metadata(url) for _ in range(40)), return_exceptions=True
        )
    assert all(isinstance(r, ResolveError) and r.kind == "too_large" for r in results), results[:2]
    print(f"40 resolves: max lag {watch.max_lag * 1000:.0f} ms, +{watch.growth_mb:.0f} MB")
    assert watch.max_lag < MAX_LAG, watch.max_lag


def test_a_manifest_fetched_again_at_download_is_bounded(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet
) -> None:
    """yt-dlp's HLS downloader reads the list again (it may have grown since the resolve): same bounds."""
    info = resolve_sync(media_server.url(media_set.hls_master), None, 20)
    with pytest.raises(ResolveError, match="max_segments") as caught:
        download_sync(
            info, tmp_path, on_progress=lambda *a: None, cancel=threading.Event(),
            bounds=ResolveBounds(max_segments=1),  # the fixture's lists have 2 segments
        )  # fmt: skip
    assert caught.value.kind == "too_large"
