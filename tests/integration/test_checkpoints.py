"""Checkpoints: a rescued attempt resumes at the stage that was not finished, with the earlier files.

Real yt-dlp and ffmpeg; the media server counts requests, so "not downloaded again" is measured."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jobkit import local_path

from tornado_engine import Engine, JobRequest, Status, Step
from tornado_engine.checkpoint import DOWNLOADED, MUXED, Checkpoint, FileMark, this_host
from tornado_engine.testing import MediaServer, MediaSet

pytestmark = pytest.mark.integration

Probe = Callable[[str | Path], dict[str, Any]]


async def _wait_step(engine: Engine, job_id: str, step: Step, timeout: float = 60) -> None:
    for _ in range(int(timeout / 0.05)):
        if (await engine.get_job(job_id)).step is step:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {step}")


async def test_shutdown_during_mux_resumes_without_downloading_again(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet, probe: Probe
) -> None:
    data = tmp_path / "engine"
    request = JobRequest(
        url=media_server.url(media_set.webm),
        format="mkv",
        video_codec="h265",
        quality_preset="medium",
        filename="resumed",
    )  # fmt: skip  (seconds of ffmpeg)
    async with Engine.open(data_dir=data, poll_interval=0.1) as engine:
        job_id = (await engine.create_job(request)).job_id
        await _wait_step(engine, job_id, Step.MUXING)
        first = await engine.get_job(job_id)
    # the engine closed mid-mux: the job went back to Pending with its download checkpointed, on disk
    parked = (await _reopen_store(data)).pop()
    assert (parked.status, parked.step) == (Status.PENDING, Step.MUXING)
    checkpoint = Checkpoint.from_data(parked.checkpoint)
    assert checkpoint is not None and checkpoint.stage == DOWNLOADED
    folder = data / "tmp" / "engine-0" / job_id
    assert checkpoint.folder == str(folder) and all((folder / m.name).is_file() for m in checkpoint.media)
    requests_before = sum(media_server.hits.values())

    async with Engine.open(data_dir=data, poll_interval=0.1) as engine:
        job = await engine.wait(job_id, timeout=120)
    assert job.status is Status.COMPLETED, job.to_api()
    assert sum(media_server.hits.values()) == requests_before  # neither resolved nor downloaded again
    assert job.attempts == 2 and job.download_retries == 0
    assert job.download_duration_ms == first.download_duration_ms  # the first attempt's download
    assert job.checkpoint is None  # a finished job keeps no local paths
    path = local_path(job.s3_url)
    assert path.name == "resumed.mkv"
    codecs = {s["codec_type"]: s["codec_name"] for s in probe(path)["streams"]}
    assert codecs == {"video": "hevc", "audio": "opus"}
    assert list((data / "tmp" / "engine-0").iterdir()) == []


async def _reopen_store(data: Path) -> list[Any]:
    async with Engine.open(data_dir=data, run_jobs=False) as engine:
        return await engine.store.list_jobs(None, 10, 0)


async def _park(data: Path, url: str, stage: str, files: dict[str, Path], title: str) -> tuple[str, Path]:
    """What a worker that died after a stage leaves: the job re-queued with a checkpoint, its files."""
    async with Engine.open(data_dir=data, run_jobs=False) as engine:
        job_id = (await engine.create_job(JobRequest(url=url))).job_id
        [claim] = await engine.store.claim("gone-host:1:x", 1, lease_seconds=30)
        job = claim.job
        folder = data / "tmp" / "engine-0" / job_id
        folder.mkdir(parents=True)
        for name, source in files.items():
            shutil.copyfile(source, folder / name)
        marks = {name: FileMark(name, (folder / name).stat().st_size) for name in files}
        job.title = title
        job.step = Step.UPLOADING if stage == MUXED else Step.MUXING
        job.checkpoint = Checkpoint(
            stage=stage, host=this_host(), folder=str(folder), media=(marks["media.mp4"],),
            format_ids=("0",), download_bytes=marks["media.mp4"].size, duration=float(4),
            output=marks.get("output.mp4") if stage == MUXED else None,
        ).to_data()  # fmt: skip
        await engine.store.release(job, claim.token)
    return job_id, folder


async def test_muxed_checkpoint_resumes_at_the_upload(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet, probe: Probe
) -> None:
    data = tmp_path / "engine"
    source = media_set.path(media_set.progressive_mp4)
    url = media_server.url(media_set.progressive_mp4)
    job_id, _ = await _park(data, url, MUXED, {"media.mp4": source, "output.mp4": source}, "Resumed clip")
    fetched_before = media_server.hits[f"/{media_set.progressive_mp4}"]  # create_job's playlist probe
    async with Engine.open(data_dir=data, poll_interval=0.1) as engine:
        job = await engine.wait(job_id, timeout=60)
    assert job.status is Status.COMPLETED, job.to_api()
    assert media_server.hits[f"/{media_set.progressive_mp4}"] == fetched_before  # not fetched again
    path = local_path(job.s3_url)
    assert path.name == "Resumed clip.mp4"  # the key from the saved title, as the first attempt's
    assert path.read_bytes() == source.read_bytes()
    assert list((data / "tmp" / "engine-0").iterdir()) == []


async def test_checkpoint_with_a_damaged_file_starts_over(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet, probe: Probe
) -> None:
    data = tmp_path / "engine"
    source = media_set.path(media_set.progressive_mp4)
    url = media_server.url(media_set.progressive_mp4)
    job_id, folder = await _park(data, url, DOWNLOADED, {"media.mp4": source}, "Damaged")
    with (folder / "media.mp4").open("r+b") as damaged:
        damaged.truncate(1000)  # cut short after the checkpoint: not what the stage finished
    fetched_before = media_server.hits[f"/{media_set.progressive_mp4}"]
    async with Engine.open(data_dir=data, poll_interval=0.1) as engine:
        job = await engine.wait(job_id, timeout=60)
    assert job.status is Status.COMPLETED, job.to_api()
    assert media_server.hits[f"/{media_set.progressive_mp4}"] > fetched_before  # downloaded again
    info = probe(local_path(job.s3_url))
    assert abs(float(info["format"]["duration"]) - media_set.duration) <= 0.2


async def test_start_removes_job_folders_nobody_can_use(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet
) -> None:
    data = tmp_path / "engine"
    source = media_set.path(media_set.progressive_mp4)
    url = media_server.url(media_set.progressive_mp4)
    resumable, kept = await _park(data, url, DOWNLOADED, {"media.mp4": source}, "Kept")
    stray = data / "tmp" / "engine-0" / "not-a-job"
    stray.mkdir(parents=True)
    (stray / "part").write_bytes(b"x")
    async with Engine.open(data_dir=data, run_jobs=False) as engine:
        done = (await engine.create_job(JobRequest(url=url))).job_id
    (data / "tmp" / "engine-0" / done).mkdir()  # a folder whose job is about to end
    async with Engine.open(data_dir=data, poll_interval=0.1, concurrency=1) as engine:
        assert engine._swept == (2, 1)  # the stray and the not-yet-started job's; the resumable one kept
        assert not stray.exists()
        for job_id in (resumable, done):
            assert (await engine.wait(job_id, timeout=60)).status is Status.COMPLETED
    assert not kept.exists()
