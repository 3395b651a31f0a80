"""Reuse (issue 16 point 7) with real parts: yt-dlp resolves a page on 127.0.0.1 that embeds the media, so
a download shows as GETs of the media path on the server, and the resolve does not."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from jobkit import local_path, run_job
from storage_fixtures import BUCKET

from tornado_engine import Engine, JobCreated, JobRequest, Status
from tornado_engine.storage import S3Config
from tornado_engine.testing import MediaServer, MediaSet

pytestmark = pytest.mark.integration


def _media_gets(server: MediaServer, media: MediaSet) -> int:
    return sum(1 for path, _ in list(server.seen) if path.split("?")[0] == f"/{media.progressive_mp4}")


def _page(server: MediaServer, media: MediaSet, tag: str) -> str:
    return server.url(f"{media.page_html}?t={tag}")  # its own source for each test: its own identity


def _slow_page(server: MediaServer, media: MediaSet, tag: str) -> tuple[str, Callable[[], int]]:
    """A page whose media comes at 256 KiB/s (~1.6 s): the first job is still downloading when the
    others look. -> its URL, and the count of its media's GETs so far (the server is the session's)."""
    slow = f"/slow/{media.progressive_mp4}"
    page = media.root / "reuse-slow.html"
    page.write_text(f'<html><head><title>slow</title></head><body><video src="{slow}"></video></body></html>')
    return server.url(f"{page.name}?t={tag}"), lambda: sum(
        1 for path, _ in list(server.seen) if path.split("?")[0] == slow
    )


async def test_second_identical_job_takes_the_first_ones_file(
    engine: Engine, media_server: MediaServer, media_set: MediaSet
) -> None:
    url = _page(media_server, media_set, "second")
    first = await run_job(engine, url=url, filename="first", reuse=True)
    assert first.status is Status.COMPLETED, first.to_api()
    assert first.reused_from is None and "reused_from" not in first.to_api()
    before = _media_gets(media_server, media_set)
    second = await run_job(engine, url=url, filename="second", reuse=True)
    assert second.status is Status.COMPLETED, second.to_api()
    assert _media_gets(media_server, media_set) == before  # no download
    assert second.reused_from == first.id and second.to_api()["reused_from"] == first.id
    assert second.download_strategy == "reuse"
    assert (second.title, second.file_size) == (first.title, first.file_size)
    assert second.native_video_codec == first.native_video_codec == "h264"
    copied, original = local_path(second.s3_url), local_path(first.s3_url)
    assert copied != original and copied.read_bytes() == original.read_bytes()
    same_name = await run_job(engine, url=url, filename="first", reuse=True)  # the same key: no copy
    assert same_name.reused_from in (first.id, second.id)
    assert same_name.storage_key == first.storage_key
    assert _media_gets(media_server, media_set) == before


async def test_what_downloads_again(engine: Engine, media_server: MediaServer, media_set: MediaSet) -> None:
    url = _page(media_server, media_set, "again")
    first = await run_job(engine, url=url, filename="one", reuse=True)
    assert first.status is Status.COMPLETED, first.to_api()
    cases = {
        "other options": {"reuse": True, "max_resolution": "360"},
        "reuse=False": {"reuse": False},
        "no reuse asked (engine default off)": {},
    }
    for name, fields in cases.items():
        before = _media_gets(media_server, media_set)
        job = await run_job(engine, url=url, filename="two", **fields)  # type: ignore[arg-type]
        assert job.status is Status.COMPLETED and job.reused_from is None, name
        assert _media_gets(media_server, media_set) > before, name
    await engine.delete_file(first.id)
    for job in await engine.list_jobs(limit=10):  # every earlier file gone: nothing left to take
        if job.file_deleted_at is None:
            await engine.delete_file(job.id)
    before = _media_gets(media_server, media_set)
    job = await run_job(engine, url=url, filename="three", reuse=True)
    assert job.status is Status.COMPLETED and job.reused_from is None
    assert _media_gets(media_server, media_set) > before


async def test_a_file_removed_behind_the_engines_back_is_downloaded_again(
    engine: Engine, media_server: MediaServer, media_set: MediaSet
) -> None:
    url = _page(media_server, media_set, "gone")
    first = await run_job(engine, url=url, filename="gone", reuse=True)
    local_path(first.s3_url).unlink()
    before = _media_gets(media_server, media_set)
    job = await run_job(engine, url=url, filename="gone", reuse=True)
    assert job.status is Status.COMPLETED and job.reused_from is None
    assert _media_gets(media_server, media_set) > before
    assert local_path(job.s3_url).stat().st_size == job.file_size


async def test_window_expired_downloads(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet
) -> None:
    url = _page(media_server, media_set, "window")
    async with Engine.open(data_dir=tmp_path / "e", poll_interval=0.1, reuse=True, reuse_window=0.5) as eng:
        first = await run_job(eng, url=url)
        assert first.status is Status.COMPLETED
        await asyncio.sleep(0.6)
        before = _media_gets(media_server, media_set)
        job = await run_job(eng, url=url)  # the engine's default: reuse, but the file is too old
        assert job.status is Status.COMPLETED and job.reused_from is None
        assert _media_gets(media_server, media_set) > before


async def test_concurrent_identical_jobs_make_one_download(
    engine: Engine, media_server: MediaServer, media_set: MediaSet
) -> None:
    url, downloads = _slow_page(media_server, media_set, "coalesce")
    before = downloads()
    waited: set[str] = set()

    async def watch() -> None:
        async for event in engine.events():
            if event.message and "same file" in event.message:
                waited.add(event.job_id)

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0)
    created = [await engine.create_job(JobRequest(url=url, filename=f"c{n}", reuse=True)) for n in range(5)]
    ids = [c.job_id for c in created if isinstance(c, JobCreated)]
    jobs = await asyncio.gather(*(engine.wait(job_id, timeout=60) for job_id in ids))
    watcher.cancel()
    assert waited, "no job waited for the one downloading"  # coalesced in flight, not only from the store
    assert [j.status for j in jobs] == [Status.COMPLETED] * 5, [j.to_api() for j in jobs]
    assert downloads() - before == 1
    leaders = [j for j in jobs if j.reused_from is None]
    assert len(leaders) == 1 and {j.reused_from for j in jobs} - {None} <= {j.id for j in jobs}
    assert len({local_path(j.s3_url).read_bytes() for j in jobs}) == 1


async def test_s3_reuse_is_a_copy_on_the_service(
    tmp_path: Path, s3_endpoint: str, media_server: MediaServer, media_set: MediaSet
) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="eu-west-1")  # fmt: skip
    folder = f"reuse-{uuid.uuid4().hex[:8]}"
    storage = S3Config(endpoint_url=s3_endpoint, access_key_id="testing", secret_access_key="testing",
                       bucket=BUCKET, region="eu-west-1", base_folder=folder)  # fmt: skip
    url = _page(media_server, media_set, "s3")
    async with Engine.open(data_dir=tmp_path / "e", poll_interval=0.1, storage=storage, reuse=True) as eng:
        first = await run_job(eng, url=url, filename="first")
        assert first.status is Status.COMPLETED, first.to_api()
        before = _media_gets(media_server, media_set)
        second = await run_job(eng, url=url, filename="second")
        assert second.status is Status.COMPLETED, second.to_api()
    assert second.reused_from == first.id and _media_gets(media_server, media_set) == before
    assert second.storage_key and second.storage_key != first.storage_key
    bodies = [client.get_object(Bucket=BUCKET, Key=j.storage_key)["Body"].read() for j in (first, second)]
    assert bodies[0] == bodies[1] and len(bodies[1]) == second.file_size


async def test_identical_jobs_of_two_engines_sharing_a_store_make_one_download(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet
) -> None:
    """Two engines, one store and one storage (as two worker processes): each runs the job it submitted."""
    store, storage = f"sqlite:///{tmp_path / 'jobs.db'}", str(tmp_path / "media")
    url, downloads = _slow_page(media_server, media_set, "two-engines")
    before = downloads()
    waited: set[str] = set()

    async def watch(eng: Engine) -> None:
        async for event in eng.events():
            if event.message and "same file" in event.message:
                waited.add(event.job_id)

    options = {"store": store, "storage": storage, "poll_interval": 0.1, "concurrency": 1, "reuse": True}
    async with (
        Engine.open(data_dir=tmp_path / "a", own_jobs_only=True, **options) as one,
        Engine.open(data_dir=tmp_path / "b", own_jobs_only=True, **options) as two,
    ):
        watchers = [asyncio.create_task(watch(eng)) for eng in (one, two)]
        await asyncio.sleep(0)
        ids = []
        for n, eng in enumerate((one, two)):
            created = await eng.create_job(JobRequest(url=url, filename=f"e{n}"))
            assert isinstance(created, JobCreated)
            ids.append(created.job_id)
        jobs = await asyncio.gather(
            *(eng.wait(i, timeout=60) for eng, i in zip((one, two), ids, strict=True))
        )
        for task in watchers:
            task.cancel()
    assert [j.status for j in jobs] == [Status.COMPLETED] * 2, [j.to_api() for j in jobs]
    assert downloads() - before == 1
    leader, follower = sorted(jobs, key=lambda j: j.reused_from is not None)
    assert (leader.reused_from, follower.reused_from) == (None, leader.id)
    assert waited == {follower.id}  # it waited for the other engine's download, then took its file
