"""Media options through whole engine jobs: real yt-dlp and ffmpeg, outputs checked with ffprobe.

audio_only (+ audio_format), max_resolution on the short side, quality_preset, clip_start/clip_end,
download_subtitles, download_thumbnail. Live recording and wait_for_video: test_live.py.
"""

from __future__ import annotations

import asyncio
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jobkit import local_path as local
from jobkit import run_job

from tornado_engine import Engine, Status
from tornado_engine.models import Job
from tornado_engine.testing import MediaServer, MediaSet

pytestmark = pytest.mark.integration

Probe = Callable[[str | Path], dict[str, Any]]


def completed(job: Job) -> Path:
    assert job.status is Status.COMPLETED, job.to_api()
    path = local(job.s3_url)
    assert path.is_file() and job.file_size == path.stat().st_size
    return path


def streams(info: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [s for s in info["streams"] if s["codec_type"] == kind]


def duration(info: dict[str, Any]) -> float:
    return float(info["format"]["duration"])


def audio_md5(ffmpeg_bin: str, path: Path) -> str:
    """The audio packets' checksum: equal for a stream copy, different after any re-encode."""
    out = subprocess.run(
        [ffmpeg_bin, "-v", "error", "-i", str(path), "-map", "0:a", "-c", "copy", "-f", "md5", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip()


# -- audio only ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "audio_format", "codec"),
    [
        ("progressive_mp4", None, "aac"),  # default m4a: AAC copied, not re-encoded
        ("hls_master", "mp3", "mp3"),  # separate AAC rendition -> mp3
        ("webm", "ogg", "vorbis"),  # opus -> vorbis
        ("webm", "opus", "opus"),  # opus copied
    ],
)
async def test_audio_only_formats(
    engine: Engine, media_server: MediaServer, media_set: MediaSet, probe: Probe, ffmpeg_bin: str,
    source: str, audio_format: str | None, codec: str,
) -> None:  # fmt: skip
    fields: dict[str, Any] = {"url": media_server.url(getattr(media_set, source)), "audio_only": True}
    if audio_format:
        fields["audio_format"] = audio_format
    job = await run_job(engine, filename=f"a-{source}-{audio_format}", **fields)
    path = completed(job)
    assert path.suffix == f".{audio_format or 'm4a'}"
    info = probe(path)
    assert [s["codec_name"] for s in info["streams"]] == [codec]  # one stream, audio, no video
    assert abs(duration(info) - media_set.duration) <= 0.2
    api = job.to_api()
    assert api["requested_quality"] == "audio"
    assert api["actual_quality"].endswith("k") or api["actual_quality"] == "audio"
    if source == "progressive_mp4":
        assert audio_md5(ffmpeg_bin, path) == audio_md5(ffmpeg_bin, media_set.path(media_set.progressive_mp4))
        assert job.native_video_codec == "h264" and job.native_audio_codec == "aac"


async def test_audio_only_clip(
    engine: Engine, media_server: MediaServer, media_set: MediaSet, probe: Probe
) -> None:
    job = await run_job(
        engine,
        url=media_server.url(media_set.audio_mp3),
        audio_only=True,
        audio_format="mp3",
        clip_start="00:01",
        clip_end=2.5,
        filename="a-clip",
    )
    info = probe(completed(job))
    assert [s["codec_name"] for s in info["streams"]] == ["mp3"]
    assert abs(duration(info) - 1.5) <= 0.2, duration(info)


# -- resolution cap on the shorter side -------------------------------------------------------------


@pytest.mark.parametrize(
    ("cap", "size", "label"),
    [("best", (720, 1280), "720p"), ("480", (480, 854), "480p"), (360, (360, 640), "360p")],
)
async def test_max_resolution_on_the_short_side_of_portrait_video(
    engine: Engine, media_server: MediaServer, media_set: MediaSet, probe: Probe,
    cap: str | int, size: tuple[int, int], label: str,
) -> None:  # fmt: skip
    job = await run_job(
        engine, url=media_server.url(media_set.portrait_master), max_resolution=cap, filename=f"p-{cap}"
    )
    info = probe(completed(job))
    (video,) = streams(info, "video")
    assert (video["width"], video["height"]) == size  # width is the short side of portrait video
    assert len(streams(info, "audio")) == 1
    api = job.to_api()
    assert api["requested_quality"] == ("best" if cap == "best" else f"{cap}p")
    assert api["actual_quality"] == label


async def test_max_resolution_picks_the_largest_at_or_below_the_cap(
    engine: Engine, media_server: MediaServer, media_set: MediaSet, probe: Probe
) -> None:
    # the landscape ladder is 640x360 + 426x240: a 1080 cap takes the best there is, 360p
    job = await run_job(engine, url=media_server.url(media_set.hls_master), max_resolution="1080p")
    (video,) = streams(probe(completed(job)), "video")
    assert (video["width"], video["height"]) == (640, 360)
    assert (job.requested_quality, job.actual_quality) == ("1080p", "360p")


# -- quality preset ----------------------------------------------------------------------------------


async def test_quality_preset_overrides_crf(
    engine: Engine, media_server: MediaServer, media_set: MediaSet, probe: Probe
) -> None:
    url = media_server.url(media_set.progressive_mp4)
    best, worst = await asyncio.gather(
        run_job(
            engine, url=url, video_codec="h264", quality_preset="highest", video_quality=51, filename="q1"
        ),
        run_job(engine, url=url, video_codec="h264", quality_preset="lowest", video_quality=0, filename="q2"),
    )
    for job in (best, worst):
        info = probe(completed(job))
        assert [s["codec_name"] for s in info["streams"]] == ["h264", "aac"]
        assert abs(duration(info) - media_set.duration) <= 0.2
    # the presets win over the CRFs given (51 would be the smallest file, 0 the largest)
    assert best.file_size is not None and worst.file_size is not None
    assert best.file_size > 2 * worst.file_size


# -- clips -------------------------------------------------------------------------------------------


async def test_clip_is_frame_accurate(
    engine: Engine, media_server: MediaServer, media_set: MediaSet, probe: Probe
) -> None:
    job = await run_job(
        engine, url=media_server.url(media_set.progressive_mp4), clip_start="0:00:01.0", clip_end="00:02.5"
    )
    info = probe(completed(job))
    assert [s["codec_name"] for s in info["streams"]] == ["h264", "aac"]
    assert abs(duration(info) - 1.5) <= 0.2, duration(info)
    (video,) = streams(info, "video")
    assert abs(float(video["duration"]) - 1.5) <= 0.2


async def test_clip_end_only_of_separate_streams(
    engine: Engine, media_server: MediaServer, media_set: MediaSet, probe: Probe
) -> None:
    job = await run_job(engine, url=media_server.url(media_set.dash_mpd), clip_end=2, format="mkv")
    info = probe(completed(job))
    assert sorted(s["codec_type"] for s in info["streams"]) == ["audio", "video"]
    assert abs(duration(info) - 2.0) <= 0.2, duration(info)


async def test_clip_past_the_end_fails_clearly(
    engine: Engine, media_server: MediaServer, media_set: MediaSet
) -> None:
    job = await run_job(engine, url=media_server.url(media_set.progressive_mp4), clip_start=60)
    assert (job.status, job.error_type) == (Status.FAILED, "error")
    assert job.error and "60 s" in job.error and "4.0 s long" in job.error
    assert job.download_retries == 0


# -- subtitles and thumbnail -------------------------------------------------------------------------


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url) as resp:  # a file:// URL for local storage
        data: bytes = resp.read()
        return data


async def test_subtitles_stored_beside_the_media(
    engine: Engine, media_server: MediaServer, media_set: MediaSet, probe: Probe
) -> None:
    job = await run_job(
        engine, url=media_server.url(media_set.dash_mpd), download_subtitles=True, folder="s", filename="talk"
    )
    media = completed(job)
    assert media.name == "talk.mp4"
    api = job.to_api()
    assert api["subtitle_url"] == job.subtitle_url
    subtitle = local(job.subtitle_url)
    assert subtitle.parent == media.parent and subtitle.name == "talk.en.vtt"
    assert fetch(api["subtitle_url"]).startswith(b"WEBVTT")
    assert fetch(api["subtitle_url"]) == media_set.path(media_set.dash_vtt).read_bytes()
    assert "thumbnail_url" not in api
    assert [s["codec_type"] for s in probe(media)["streams"]] == ["video", "audio"]  # not embedded


async def test_missing_subtitle_language_is_not_an_error(
    engine: Engine, media_server: MediaServer, media_set: MediaSet
) -> None:
    job = await run_job(
        engine,
        url=media_server.url(media_set.dash_mpd),
        download_subtitles=True,
        subtitle_languages=["fr", "de"],
        filename="nofr",
    )
    completed(job)
    assert job.subtitle_url is None and "subtitle_url" not in job.to_api()


async def test_thumbnail_stored_beside_audio_only_output(
    engine: Engine, media_server: MediaServer, media_set: MediaSet, probe: Probe
) -> None:
    job = await run_job(
        engine,
        url=media_server.url(media_set.page_html),
        audio_only=True,
        download_thumbnail=True,
        download_subtitles=True,  # the page has none: no subtitle_url, no failure
        filename="page",
    )
    media = completed(job)
    assert media.name == "page.m4a"
    api = job.to_api()
    thumb = local(api["thumbnail_url"])
    assert thumb.parent == media.parent and thumb.name == "page.jpg"
    assert fetch(api["thumbnail_url"]) == media_set.path(media_set.thumb_jpg).read_bytes()
    (picture,) = probe(thumb)["streams"]
    assert (picture["codec_name"], picture["width"], picture["height"]) == ("mjpeg", 320, 180)
    assert "subtitle_url" not in api
