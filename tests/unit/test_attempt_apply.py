"""attempt.apply: the one place where what the stages found reaches the Job (pure)."""

from __future__ import annotations

from pathlib import Path

from tornado_engine import JobRequest
from tornado_engine.attempt import apply
from tornado_engine.models import Job
from tornado_engine.pipeline.context import (
    Fetched,
    Labels,
    Muxed,
    Resolved,
    Stored,
    Strategy,
    Uploaded,
    Waited,
)  # fmt: skip
from tornado_engine.scheduler import Pool
from tornado_engine.storage import StoredObject


def _job() -> Job:
    return Job(id="j1", url="http://x/y", request=JobRequest(url="http://x/y", folder="shows"))


def test_resolved_fills_the_description_fields_and_reserves_the_expected_size() -> None:
    job = _job()
    info = {"title": "T", "description": "D", "release_date": "20240101", "filesize": 500}
    apply(job, Resolved(info))
    assert (job.title, job.description, job.release_date, job.folder) == ("T", "D", "20240101", "shows")
    assert job.reserved_bytes == 500


def test_timings_and_speeds() -> None:
    job = _job()
    apply(job, Fetched((Path("a"),), ("f",), 2_000_000, 2.0))
    apply(job, Muxed(Path("o"), 0.25))
    apply(job, Muxed(Path("o")))  # resumed: no time of its own
    apply(job, Stored(StoredObject(key="k", url="u", size=3_000_000), 1.5))
    assert (job.download_duration_ms, job.download_speed_mbps) == (2000, 1.0)
    assert job.mux_duration_ms == 250
    assert (job.upload_duration_ms, job.upload_speed_mbps) == (1500, 2.0)


def test_labels_of_an_earlier_attempt_stand() -> None:
    job = _job()
    apply(job, Labels(video_codec="h264", audio_codec="aac", quality="360p"))
    apply(job, Labels(video_codec="vp9", audio_codec="opus", quality="720p"))
    assert (job.native_video_codec, job.native_audio_codec, job.actual_quality) == ("h264", "aac", "360p")
    audio = _job()
    apply(audio, Labels(video_codec=None, audio_codec="mp3", quality="128k", quality_from="audio"))
    assert (audio.native_video_codec, audio.actual_quality) == (None, "128k")


def test_stored_objects_the_strategy_and_pool_waits() -> None:
    job = _job()
    apply(job, Strategy("fastpath"))
    apply(job, Uploaded("media", StoredObject(key="m.mp4", url="u/m.mp4", size=1), "file:///s"))
    for lang in ("en", "de"):
        apply(
            job, Uploaded("subtitle", StoredObject(key=f"m.{lang}.vtt", url=f"u/{lang}", size=1), "file:///s")
        )
    apply(job, Uploaded("thumbnail", StoredObject(key="m.jpg", url="u/jpg", size=1), "file:///s"))
    waits: list[tuple[Pool, int]] = [("io", 5), ("io", 7), ("cpu", 3), ("upload", 2)]
    for pool, ms in waits:
        apply(job, Waited(pool, ms))
    assert job.download_strategy == "fastpath" and job.storage_url == "file:///s"
    assert job.side_keys == ["m.en.vtt", "m.de.vtt", "m.jpg"]
    assert (job.subtitle_url, job.thumbnail_url) == ("u/en", "u/jpg")  # the first language found
    assert (job.io_pool_wait_ms, job.cpu_pool_wait_ms, job.upload_pool_wait_ms) == (12, 3, 2)
