"""Per-host pacing and back-off with real parts on 127.0.0.1 (issue 16 points 3 and 4): a fresh media
server counts the connections open at once and logs when each request arrived and how it was answered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from jobkit import record_events

from tornado_engine import Engine, JobRequest, RetryPolicy, Status
from tornado_engine.models import Job
from tornado_engine.progress import Event
from tornado_engine.sources import SourceSettings
from tornado_engine.testing import MediaServer, MediaSet

pytestmark = pytest.mark.integration


@pytest.fixture
def server(media_root: Path) -> Iterator[MediaServer]:
    with MediaServer(media_root) as srv:  # its own: the peaks and the timeline are this test's only
        yield srv


async def _engine(tmp_path: Path, events: list[Event], **sources: Any) -> AsyncIterator[Engine]:
    async with Engine.open(data_dir=tmp_path / "engine", poll_interval=0.05, expand_playlists=False,
                           retry=RetryPolicy(max_retries=3, base_delay=0.2),
                           sources=SourceSettings.build(**sources)) as engine:  # fmt: skip
        record_events(engine, events)
        yield engine


async def _run_all(engine: Engine, urls: list[str]) -> list[Job]:
    created = [await engine.create_job(JobRequest(url=url)) for url in urls]
    ids = [c.job_id for c in created]
    return list(await asyncio.gather(*(engine.wait(i, timeout=90) for i in ids)))


async def test_two_connections_per_host_with_ten_jobs(
    tmp_path: Path, server: MediaServer, media_set: MediaSet
) -> None:
    events: list[Event] = []
    # eight for the fast path (four connections each, unpaced), two for yt-dlp through the guard
    urls = [server.url(media_set.progressive_mp4)] * 8 + [server.url(media_set.hls_master)] * 2
    async for engine in _engine(tmp_path, events, host_connections=2):
        jobs = await _run_all(engine, urls)
    assert [j.status for j in jobs] == [Status.COMPLETED] * 10, [j.error for j in jobs]
    assert {j.download_strategy for j in jobs} == {"fastpath", "ytdlp"}
    assert server.peak_connections() == 2  # the limit was reached, never passed


async def test_a_429_storm_makes_every_job_of_the_host_wait(
    tmp_path: Path, server: MediaServer, media_set: MediaSet
) -> None:
    events: list[Event] = []
    # six refusals reach the host one or two at a time (resolves are CPU-bound: a few at once), so the
    # back-off grows per incident: from 0.5 s (never under the Retry-After of 2 s), capped at 3 s here
    url = server.url(f"storm/6/{media_set.progressive_mp4}")
    async for engine in _engine(tmp_path, events, host_backoff=(0.5, 3.0)):
        jobs = await _run_all(engine, [url] * 10)
        usage = await engine.usage()
    assert [j.status for j in jobs] == [Status.COMPLETED] * 10, [j.error for j in jobs]
    storm = [(t, status) for t, route, status in server.timeline if route == "storm"]
    refused = [t for t, status in storm if status == 429]
    assert len(refused) == 6
    for t in refused:
        # requests already on their way when the 429 went out may still arrive; none sent after it
        early = [a - t for a, _ in storm if t + 0.25 < a < t + server.storm_retry_after]
        assert not early, f"requests {early} s after a 429 with Retry-After: {server.storm_retry_after}"
    waiting = [
        e.message for e in events if e.message and e.message.startswith("waiting for host 127.0.0.1 until ")
    ]
    assert waiting
    assert usage.host_waits == sum(j.host_waits for j in jobs) >= len(waiting) > 0
    assert sum(j.download_retries for j in jobs) >= 1


async def test_a_worker_takes_its_share_of_the_limits_by_the_others_holding_leases(tmp_path: Path) -> None:
    from tornado_engine.store.sqlite import SQLiteStore

    path = tmp_path / "jobs.db"
    other = SQLiteStore(path)
    await other.open()
    try:
        await other.insert_jobs([Job(id="j1", url="https://example.com/a", owner="",
                                     request=JobRequest(url="https://example.com/a"))])  # fmt: skip
        assert len(await other.claim("another-worker", 1, 30)) == 1  # runs a job now, elsewhere
        limits = SourceSettings.build(host_connections=4, host_rate=10)
        store = f"sqlite:///{path}"
        async with Engine.open(data_dir=tmp_path / "engine", store=store, sources=limits) as engine:
            table = engine._runtime.sources.pacer._table
            for _ in range(100):
                if table._connections() == 2:
                    break
                await asyncio.sleep(0.02)
            assert (table._connections(), table._rate()) == (2, 5.0)
    finally:
        await other.close()
