"""Live streams and scheduled ones, through whole engine jobs.

A live HLS stream is an ffmpeg process this module starts (``-re``: real time, a sliding 5-segment
playlist) and ends; a scheduled stream is the test extractor's ``/ie/upcoming-<epoch ms>`` case.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jobkit import local_path as local
from jobkit import run_job

from tornado_engine import Engine, Status
from tornado_engine.testing import MediaServer

pytestmark = pytest.mark.integration

Probe = Callable[[str | Path], dict[str, Any]]


class LiveStream:
    def __init__(self, proc: subprocess.Popen[bytes], url: str) -> None:
        self.proc = proc
        self.url = url

    @property
    def running(self) -> bool:
        return self.proc.poll() is None


@pytest.fixture  # a fresh stream per test: one that ended would look like a finished VOD
def live(ffmpeg_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStream]:
    root = tmp_path_factory.mktemp("live")
    (root / "live").mkdir()
    gop = ["-g", "50", "-keyint_min", "50", "-sc_threshold", "0"]  # 2 s segments
    cmd = [
        ffmpeg_bin, "-nostdin", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", "testsrc2=size=426x240:rate=25",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", "600",  # ends by itself even if teardown never runs (120 s was too short on a busy CI)
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", *gop, "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-f", "hls", "-hls_time", "2", "-hls_list_size", "5",
        "-hls_flags", "delete_segments+temp_file", "-hls_segment_filename", "live/seg_%05d.ts",
        "live/live.m3u8",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=root, stdin=subprocess.DEVNULL)
    try:
        playlist = root / "live" / "live.m3u8"
        deadline = time.monotonic() + 20
        # two segments (4 s) listed: a recording can start at once
        while not (playlist.is_file() and playlist.read_text().count("#EXTINF") >= 2):
            assert proc.poll() is None, "the live ffmpeg exited"
            assert time.monotonic() < deadline, "no live playlist after 20 s"
            time.sleep(0.2)
        with MediaServer(root) as srv:
            yield LiveStream(proc, srv.url("live/live.m3u8"))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_live_recording_stops_at_max_duration(engine: Engine, live: LiveStream, probe: Probe) -> None:
    started = time.monotonic()
    job = await run_job(engine, url=live.url, live_recording=True, max_duration=4, filename="rec")
    took = time.monotonic() - started
    assert job.status is Status.COMPLETED, job.to_api()
    info = probe(local(job.s3_url))
    assert sorted(s["codec_name"] for s in info["streams"]) == ["aac", "h264"]
    assert abs(float(info["format"]["duration"]) - 4.0) <= 0.3, info["format"]["duration"]
    assert live.running  # the stream goes on: the cap ended the recording
    assert took < 30
    assert job.actual_quality == "240p"


async def test_live_stream_without_live_recording_is_skipped(engine: Engine, live: LiveStream) -> None:
    assert live.running, "the live source ended before the test"
    job = await run_job(engine, url=live.url)
    assert (job.status, job.error_type) == (Status.SKIPPED, "warning")
    assert job.error == "This is a live stream; set live_recording to record it"
    assert job.download_retries == 0


async def test_live_from_start_without_such_formats_fails_clearly(engine: Engine, live: LiveStream) -> None:
    job = await run_job(engine, url=live.url, live_recording=True, live_from_start=True, max_duration=2)
    assert (job.status, job.error_type) == (Status.FAILED, "error")
    assert job.error and "from the start" in job.error
    assert "yt-dlp" not in job.error and "--" not in job.error
    assert job.download_retries == 0


def upcoming_url(media_server: MediaServer, seconds: float) -> str:
    return media_server.url(f"ie/upcoming-{int((time.time() + seconds) * 1000)}/progressive.mp4")


async def test_wait_for_video_waits_for_a_scheduled_stream(
    engine: Engine, media_server: MediaServer, probe: Probe
) -> None:
    url = upcoming_url(media_server, 2.5)
    started = time.monotonic()
    job = await run_job(engine, url=url, live_recording=True, wait_for_video=20, filename="sched")
    assert job.status is Status.COMPLETED, job.to_api()
    assert time.monotonic() - started >= 2.0
    info = probe(local(job.s3_url))
    assert sorted(s["codec_name"] for s in info["streams"]) == ["aac", "h264"]


async def test_scheduled_stream_without_waiting_is_a_warning(
    engine: Engine, media_server: MediaServer
) -> None:
    job = await run_job(engine, url=upcoming_url(media_server, 3600))
    assert (job.status, job.error_type) == (Status.WARNING, "warning")
    assert job.error and job.error.startswith("This live stream has not started yet")


async def test_wait_for_video_gives_up_after_the_wait(engine: Engine, media_server: MediaServer) -> None:
    started = time.monotonic()
    job = await run_job(engine, url=upcoming_url(media_server, 3600), live_recording=True, wait_for_video=2)
    assert (job.status, job.error_type) == (Status.WARNING, "warning")
    assert job.error == "The scheduled stream did not start within 2 s"
    assert 2.0 <= time.monotonic() - started < 15
