"""The whole pipeline on the embedded default: real yt-dlp, real ffmpeg, media served on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jobkit import local_path, run_job

from tornado_engine import Engine, InvalidRequest, JobRequest, Status, Step
from tornado_engine.testing import MediaServer, MediaSet

pytestmark = pytest.mark.integration

Probe = Callable[[str | Path], dict[str, Any]]


def _streams(info: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["codec_type"]: s for s in info["streams"] if s["codec_type"] in ("video", "audio")}


def _check(
    job: Any, probe: Probe, container: str, vcodec: str, acodec: str, duration: float
) -> dict[str, Any]:
    assert job.status is Status.COMPLETED, job.to_api()
    assert job.step is Step.FINISHED
    path = local_path(job.s3_url)
    assert path.suffix == f".{container}"
    info = probe(path)
    streams = _streams(info)
    assert set(streams) == {"video", "audio"}, info["streams"]
    assert streams["video"]["codec_name"] == vcodec
    assert streams["audio"]["codec_name"] == acodec
    assert abs(float(info["format"]["duration"]) - duration) <= 0.2
    assert job.file_size == path.stat().st_size
    return info


async def test_progressive_copy_to_mp4(
    engine: Engine, media_server: MediaServer, media_set: MediaSet, probe: Probe, tmp_path: Path
) -> None:
    job = await run_job(
        engine, url=media_server.url(media_set.progressive_mp4), filename="clip", folder="a/b"
    )
    _check(job, probe, "mp4", "h264", "aac", media_set.duration)
    assert job.s3_url.endswith("/media/a/b/clip.mp4")
    api = job.to_api()
    for name in (
        "title",
        "download_duration_ms",
        "mux_duration_ms",
        "upload_duration_ms",
        "file_size",
        "download_retries",
        "upload_retries",
        "queue_wait_ms",
        "requested_quality",
        "actual_quality",
        "finished_at",
        "created_at",
        "io_pool_wait_ms",
        "upload_pool_wait_ms",
    ):
        assert name in api, name
    assert api["requested_quality"] == "best" and api["actual_quality"] == "360p"
    assert "error" not in api and "error_type" not in api
    # the source already is an h264/aac mp4: no ffmpeg run, so no wait for the CPU pool
    assert "cpu_pool_wait_ms" not in api
    # temporary files are gone after the job
    assert not any((tmp_path / "engine" / "tmp" / "engine-0").iterdir())


async def test_dash_separate_streams_to_mkv_h264(
    engine: Engine, media_server: MediaServer, media_set: MediaSet, probe: Probe
) -> None:
    job = await run_job(
        engine, url=media_server.url(media_set.dash_mpd), format="mkv", video_codec="h264", filename="dash"
    )
    info = _check(job, probe, "mkv", "h264", "aac", media_set.duration)
    assert _streams(info)["video"]["height"] == 360  # the best of the two video representations
    assert job.cpu_pool_wait_ms is not None


async def test_hls_with_audio_rendition(
    engine: Engine, media_server: MediaServer, media_set: MediaSet, probe: Probe
) -> None:
    job = await run_job(engine, url=media_server.url(media_set.hls_master), filename="hls")
    _check(job, probe, "mp4", "h264", "aac", media_set.duration)


@pytest.mark.parametrize(
    ("container", "vcodec", "acodec", "want_v", "want_a"),
    [
        ("webm", "copy", "copy", "vp9", "opus"),
        ("mkv", "copy", "copy", "vp9", "opus"),
        ("mp4", "h264", "aac", "h264", "aac"),
        ("mov", "h264", "mp3", "h264", "mp3"),
        ("mkv", "h265", "opus", "hevc", "opus"),
    ],
)
async def test_webm_source_to_each_container_and_codec(
    engine: Engine, media_server: MediaServer, media_set: MediaSet, probe: Probe,
    container: str, vcodec: str, acodec: str, want_v: str, want_a: str,
) -> None:  # fmt: skip
    job = await run_job(
        engine,
        url=media_server.url(media_set.webm),
        format=container,
        video_codec=vcodec,
        audio_codec=acodec,
        filename=f"w-{container}-{vcodec}-{acodec}",
    )
    _check(job, probe, container, want_v, want_a, media_set.duration)


async def test_audio_copy_falls_back_to_aac_for_mov(
    engine: Engine, media_server: MediaServer, media_set: MediaSet, probe: Probe
) -> None:
    job = await run_job(
        engine, url=media_server.url(media_set.opus_h264_mkv), format="mov", filename="fallback"
    )
    _check(job, probe, "mov", "h264", "aac", media_set.duration)
    assert job.native_audio_codec == "opus"


async def test_crf_changes_output_size(
    engine: Engine, media_server: MediaServer, media_set: MediaSet, probe: Probe
) -> None:
    url = media_server.url(media_set.progressive_mp4)
    hi, lo = await asyncio.gather(
        run_job(engine, url=url, video_codec="h264", video_quality=18, filename="crf18"),
        run_job(engine, url=url, video_codec="h264", video_quality=40, filename="crf40"),
    )
    _check(hi, probe, "mp4", "h264", "aac", media_set.duration)
    _check(lo, probe, "mp4", "h264", "aac", media_set.duration)
    assert hi.file_size > lo.file_size * 1.5


async def test_events_report_one_rising_percent(
    engine: Engine, media_server: MediaServer, media_set: MediaSet
) -> None:
    created = await engine.create_job(JobRequest(url=media_server.url(media_set.dash_mpd), filename="ev"))
    events = [ev async for ev in engine.events(created.job_id)]
    assert events[-1].status is Status.COMPLETED and events[-1].percent == 100.0
    percents = [ev.percent for ev in events]
    assert percents == sorted(percents), percents
    steps = [ev.step for ev in events]
    assert Step.DOWNLOADING in steps and Step.MUXING in steps and Step.UPLOADING in steps


async def test_http_404_fails_with_clear_error(engine: Engine, media_server: MediaServer) -> None:
    job = await run_job(engine, url=media_server.url("status/404/missing.mp4"))
    assert job.status is Status.FAILED
    assert job.error_type == "error"
    assert "404" in job.error and "yt-dlp" not in job.error.lower()
    assert job.download_retries == 0  # permanent: no retry


async def test_invalid_request_stores_nothing(engine: Engine) -> None:
    with pytest.raises(InvalidRequest, match=r"Folder name too long \(max 200 characters\)"):
        await engine.create_job({"url": "http://127.0.0.1:1/x.mp4", "folder": "f" * 201})
    assert await engine.list_jobs() == []


async def test_list_jobs_newest_first_and_status_filter(engine: Engine, media_server: MediaServer) -> None:
    ids = [(await engine.create_job({"url": media_server.url(f"status/404/{i}")})).job_id for i in range(3)]
    for job_id in ids:
        await engine.wait(job_id, timeout=60)
    listed = await engine.list_jobs(limit=10)
    assert [j.id for j in listed] == ids[::-1]
    assert len(await engine.list_jobs(status="Failed")) == 3
    assert await engine.list_jobs(status="Completed") == []
    with pytest.raises(InvalidRequest):
        await engine.list_jobs(limit=101)


async def test_job_left_processing_is_picked_up_after_restart(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet, probe: Probe
) -> None:
    """A job claimed by a process that died is re-queued at the next start and completes."""
    data = tmp_path / "engine"
    async with Engine.open(data_dir=data, run_jobs=False) as engine:
        created = await engine.create_job(JobRequest(url=media_server.url(media_set.progressive_mp4)))
        # what a crashed worker leaves: the job claimed, Processing, owned by a process that is gone
        claims = await engine.store.claim("dead-host:999999:x", 1, lease_seconds=0.5)
        assert [c.job.id for c in claims] == [created.job_id]
        assert (await engine.get_job(created.job_id)).status is Status.PROCESSING
    await asyncio.sleep(0.6)  # the lease expires
    async with Engine.open(data_dir=data, poll_interval=0.1) as engine:
        job = await engine.wait(created.job_id, timeout=60)
    _check(job, probe, "mp4", "h264", "aac", media_set.duration)
    assert job.attempts == 2  # the dead worker's claim counted its attempt
