"""Job lifecycle and batches on real media: cancel in every stage, retry, delete_file, bulk, playlists,
paused batches, usage, quotas, tenants and idempotency."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from jobkit import local_path

from tornado_engine import (
    Engine,
    InvalidRequest,
    InvalidState,
    JobCreated,
    JobRequest,
    NotFound,
    QuotaExceeded,
    Status,
    Step,
)
from tornado_engine.results import BatchCreated, Quota
from tornado_engine.testing import MediaServer, MediaSet

pytestmark = pytest.mark.integration


def _media_files(tmp_path: Path) -> list[Path]:
    root = tmp_path / "engine" / "media"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _temp_files(tmp_path: Path) -> list[Path]:
    root = tmp_path / "engine" / "tmp" / "engine-0"  # the engine's own slot
    return [p for p in root.rglob("*")] if root.exists() else []


async def _cancel_when(engine: Engine, job_id: str, ready: Any) -> tuple[Any, float]:
    """Cancel as soon as an event satisfies ``ready``; return the final job and seconds to stop."""
    async for event in engine.events(job_id):
        if ready(event):
            asked = time.monotonic()
            await engine.cancel_job(job_id)
            job = await engine.wait(job_id, timeout=30)
            return job, time.monotonic() - asked
    raise AssertionError("the job ended before the cancel point")


async def test_cancel_pending_twice_and_finished(tmp_path: Path, media_server: MediaServer) -> None:
    async with Engine.open(data_dir=tmp_path / "e", run_jobs=False, expand_playlists=False) as engine:
        created = await engine.create_job({"url": media_server.url("progressive.mp4")})
        job = await engine.cancel_job(created.job_id)
        assert job.status is Status.CANCELLED and job.finished_at
        again = await engine.cancel_job(created.job_id)  # harmless
        assert again.status is Status.CANCELLED
        assert (await engine.store.claim("w", 10, 30)) == []  # never runs
        with pytest.raises(NotFound):
            await engine.cancel_job("no-such-job")


async def test_cancel_finished_job_is_an_error(
    engine: Engine, media_server: MediaServer, media_set: MediaSet
) -> None:
    created = await engine.create_job(JobRequest(url=media_server.url(media_set.progressive_mp4)))
    await engine.wait(created.job_id, timeout=60)
    with pytest.raises(InvalidState, match="already finished"):
        await engine.cancel_job(created.job_id)


async def test_cancel_during_download(engine: Engine, media_server: MediaServer, tmp_path: Path) -> None:
    created = await engine.create_job(JobRequest(url=media_server.url("slow/progressive.mp4")))
    job, seconds = await _cancel_when(
        engine, created.job_id, lambda ev: ev.step is Step.DOWNLOADING and (ev.bytes_done or 0) > 0
    )
    assert job.status is Status.CANCELLED and job.step is Step.DOWNLOADING
    assert seconds < 2.0
    assert _temp_files(tmp_path) == [] and _media_files(tmp_path) == []
    assert job.to_api()["status"] == "Cancelled"


async def test_a_cancel_also_removes_what_a_dead_engine_left_of_the_job(
    media_server: MediaServer, tmp_path: Path
) -> None:
    data = tmp_path / "engine"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    async with Engine.open(data_dir=data, run_jobs=False, expand_playlists=False) as engine:
        created = await engine.create_job(JobRequest(url=media_server.url("slow/progressive.mp4")))
        [claim] = await engine.store.claim(f"{socket.gethostname()}:{dead}:x", 1, 30)
        claim.job.attempts = 1  # that engine's attempt, in its slot; then it died
        await engine.store.save(claim.job, claim.token)
    left = data / "tmp" / "engine-7" / created.job_id
    left.mkdir(parents=True)
    (left / "part.mp4").write_bytes(b"x" * 1000)
    async with Engine.open(data_dir=data, concurrency=4, poll_interval=0.1) as engine:  # re-queues it
        job, _ = await _cancel_when(engine, created.job_id, lambda ev: ev.step is Step.DOWNLOADING)
    assert job.status is Status.CANCELLED and job.attempts == 2, job.error
    assert not left.exists() and _temp_files(tmp_path) == []


async def test_cancel_during_mux_kills_ffmpeg(
    engine: Engine, media_server: MediaServer, media_set: MediaSet, tmp_path: Path
) -> None:
    request = JobRequest(url=media_server.url(media_set.webm), format="mkv", video_codec="h265")
    created = await engine.create_job(request)
    job, seconds = await _cancel_when(engine, created.job_id, lambda ev: ev.step is Step.MUXING)
    assert job.status is Status.CANCELLED and job.step is Step.MUXING
    assert seconds < 2.0
    assert _temp_files(tmp_path) == [] and _media_files(tmp_path) == []


async def test_cancel_during_upload_leaves_no_object(
    engine: Engine, media_server: MediaServer, media_set: MediaSet, tmp_path: Path
) -> None:
    created = await engine.create_job(JobRequest(url=media_server.url(media_set.progressive_mp4)))
    job, _ = await _cancel_when(engine, created.job_id, lambda ev: ev.step is Step.UPLOADING)
    assert job.status is Status.CANCELLED
    assert job.s3_url is None
    assert _temp_files(tmp_path) == [] and _media_files(tmp_path) == []


async def test_retry_only_failed_and_old_job_unchanged(
    engine: Engine, media_server: MediaServer, media_set: MediaSet
) -> None:
    failed = await engine.create_job({"url": media_server.url("status/404/x.mp4")})
    old = await engine.wait(failed.job_id, timeout=60)
    assert old.status is Status.FAILED
    again = await engine.retry_job(failed.job_id)
    assert again.job_id != failed.job_id
    new = await engine.wait(again.job_id, timeout=60)
    assert new.request == old.request and new.status is Status.FAILED
    assert (await engine.get_job(failed.job_id)).to_api() == old.to_api()
    ok = await engine.create_job({"url": media_server.url(media_set.progressive_mp4)})
    await engine.wait(ok.job_id, timeout=60)
    with pytest.raises(InvalidState, match="Only Failed"):
        await engine.retry_job(ok.job_id)


async def test_delete_file(engine: Engine, media_server: MediaServer, media_set: MediaSet) -> None:
    created = await engine.create_job({"url": media_server.url(media_set.progressive_mp4), "filename": "del"})
    job = await engine.wait(created.job_id, timeout=60)
    path = local_path(job.s3_url)
    assert path.is_file()
    usage_before = await engine.usage()
    assert usage_before.storage_usage_bytes == job.file_size
    gone = await engine.delete_file(created.job_id)
    assert not path.exists()
    assert gone.file_deleted_at and "s3_url" not in gone.to_api()
    assert (await engine.get_job(created.job_id)).file_deleted_at == gone.file_deleted_at
    assert (await engine.usage()).storage_usage_bytes == 0
    assert (await engine.delete_file(created.job_id)).file_deleted_at == gone.file_deleted_at  # harmless


async def test_bulk_keeps_good_entries(
    engine: Engine, media_server: MediaServer, media_set: MediaSet
) -> None:
    url = media_server.url(media_set.progressive_mp4)
    result = await engine.create_bulk(
        [{"url": url, "filename": "one"}, {"url": url, "filename": "two"}, {"url": url, "filename": "a/b"}],
        folder="bulk",
    )
    assert result.total_jobs == 2 and len(result.job_ids) == 2
    assert [(e.index, e.error) for e in result.errors] == [(2, "Filename must not contain '/' or '\\'")]
    jobs = [await engine.wait(job_id, timeout=60) for job_id in result.job_ids]
    assert sorted(Path(j.s3_url).name for j in jobs) == ["one.mp4", "two.mp4"]
    batch = await engine.get_batch(result.batch_id or "")
    assert batch.status == "completed" and batch.completed_episodes == 2
    with pytest.raises(InvalidRequest, match="max 100"):
        await engine.create_bulk([url] * 101)


async def test_rss_feed_becomes_a_batch_that_completes(
    engine: Engine, media_server: MediaServer, media_set: MediaSet, probe: Any
) -> None:
    created = await engine.submit({"url": media_server.url(media_set.feed_xml), "format": "mkv"})
    assert isinstance(created, BatchCreated)  # TornadoAPI's POST /jobs: a playlist URL makes a batch
    assert created.total_episodes == 3 and len(created.episode_jobs) == 3
    assert [e.title for e in created.episodes] == ["Episode 1", "Episode 2", "Episode 3"]
    jobs = [await engine.wait(job_id, timeout=90) for job_id in created.episode_jobs]
    assert all(j.status is Status.COMPLETED for j in jobs), [j.to_api() for j in jobs]
    batch = await engine.get_batch(created.batch_id)
    dumped = batch.model_dump(mode="json", exclude_none=True)
    assert dumped["status"] == "completed"
    assert dumped["total_episodes"] == 3 and dumped["completed_episodes"] == 3
    assert dumped["failed_episodes"] == 0
    assert dumped["show_url"] == media_server.url(media_set.feed_xml)
    assert batch.folder  # the sanitized show name
    for job in jobs:
        path = local_path(job.s3_url)
        assert path.parent.name == batch.folder
        streams = probe(path)["streams"]
        assert [s["codec_type"] for s in streams] == ["audio"]


async def test_create_job_and_create_playlist_refuse_the_other_kind_of_url(
    engine: Engine, media_server: MediaServer, media_set: MediaSet
) -> None:
    with pytest.raises(InvalidRequest, match=r"playlist of 3 entries: create_playlist\(\)") as refused:
        await engine.create_job({"url": media_server.url(media_set.feed_xml)})
    assert refused.value.field == "url"
    with pytest.raises(InvalidRequest, match=r"not a playlist.*create_job\(\)"):
        await engine.create_playlist({"url": media_server.url(media_set.progressive_mp4)})
    assert await engine.list_jobs() == []  # neither stored anything
    single = await engine.submit({"url": media_server.url(media_set.progressive_mp4)})
    assert isinstance(single, JobCreated)


async def test_paused_batch_renamed_then_started(
    engine: Engine, media_server: MediaServer, media_set: MediaSet
) -> None:
    created = await engine.create_playlist({"url": media_server.url(media_set.feed_xml), "paused": True})
    assert created.paused
    await asyncio.sleep(0.5)
    status = await engine.get_batch(created.batch_id)
    assert status.paused and status.status == "processing" and status.completed_episodes == 0
    for job_id in created.episode_jobs:
        assert (await engine.get_job(job_id)).status is Status.PENDING
    first, second, _ = created.episode_jobs
    result = await engine.rename_batch_jobs(
        created.batch_id,
        [{"job_id": first, "filename": "intro"}, {"job_id": second, "filename": "../x"}, {"job_id": "nope"}],
    )
    assert result.updated == 1 and len(result.errors) == 2
    started = await engine.start_batch(created.batch_id)
    assert not started.paused
    job = await engine.wait(first, timeout=90)
    assert Path(job.s3_url).name == "intro.mp4"
    with pytest.raises(InvalidState, match="paused"):
        await engine.rename_batch_jobs(created.batch_id, [{"job_id": first, "filename": "late"}])


async def test_usage_quotas_and_tenants(
    engine: Engine, media_server: MediaServer, media_set: MediaSet
) -> None:
    alice, bob = engine.tenant("alice"), engine.tenant("bob")
    url = media_server.url(media_set.progressive_mp4)
    mine = await alice.create_job({"url": url, "filename": "alice"})
    job = await alice.wait(mine.job_id, timeout=60)
    for call in (bob.get_job, bob.cancel_job, bob.retry_job, bob.delete_file):
        with pytest.raises(NotFound):
            await call(mine.job_id)
    assert await bob.list_jobs() == [] and len(await alice.list_jobs()) == 1
    usage = (await alice.usage()).model_dump()
    assert usage["usage_count"] == 1 and usage["jobs_by_status"] == {"Completed": 1}
    assert usage["storage_usage_bytes"] == job.file_size and usage["storage_reserved_bytes"] == 0
    assert usage["storage_by_backend"] == {"file": job.file_size}
    assert (await bob.usage()).usage_count == 0

    await bob.set_quota(Quota(max_duration_seconds=1))
    hls = media_server.url(media_set.hls_master)  # HLS says its duration before any download
    refused = await bob.wait((await bob.create_job({"url": hls})).job_id, timeout=60)
    assert refused.status is Status.FAILED and "at most 1 s" in (refused.error or "")
    # refused by the resolver, before any download
    assert refused.download_duration_ms is None and refused.upload_duration_ms is None, refused.to_api()
    # a plain file says its duration only once downloaded: refused then, before mux and upload
    late = await bob.wait((await bob.create_job({"url": url})).job_id, timeout=60)
    assert late.status is Status.FAILED and "at most 1 s" in (late.error or "")
    assert late.upload_duration_ms is None and late.s3_url is None

    await alice.set_quota(Quota(storage_bytes=1000))
    with pytest.raises(QuotaExceeded, match="Storage quota exceeded"):
        await alice.create_job({"url": url})
    limits = (await alice.usage()).model_dump(exclude_none=True)
    assert limits["storage_remaining_gb"] == 0


async def test_idempotency_key_returns_the_same_job(engine: Engine, media_server: MediaServer) -> None:
    request = {"url": media_server.url("status/404/idem.mp4")}
    first = await engine.create_job(request, idempotency_key="order-42")
    second = await engine.create_job(request, idempotency_key="order-42")
    other = await engine.create_job(request, idempotency_key="order-43")
    assert first == second and other != first
    assert len(await engine.list_jobs()) == 2
