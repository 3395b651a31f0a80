"""The same job, end to end (real yt-dlp download, ffmpeg, upload), against every storage backend's
server on 127.0.0.1; the job's signed URL is fetched over HTTP and compared with the stored object."""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from storage_fixtures import BackendUnderTest

from tornado_engine import Engine, JobRequest, Status
from tornado_engine.testing import MediaServer, MediaSet

pytestmark = pytest.mark.integration


def _fetch(url: str) -> bytes:
    if url.startswith("file://"):  # local storage gives a file:// URI, read like any client would
        return Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).read_bytes()
    with urllib.request.urlopen(url, timeout=30) as response:
        return bytes(response.read())


async def test_job_lands_in_every_backend(
    backend: BackendUnderTest,
    media_server: MediaServer,
    media_set: MediaSet,
    probe: Callable[[str | Path], dict[str, Any]],
    tmp_path: Path,
) -> None:
    async with Engine.open(data_dir=tmp_path / "engine", storage=backend.config, poll_interval=0.1) as engine:
        created = await engine.create_job(
            JobRequest(url=media_server.url(media_set.progressive_mp4), filename="clip", folder="e2e")
        )
        job = await engine.wait(created.job_id, timeout=120)

    assert job.status is Status.COMPLETED, job.to_api()
    assert job.storage_key == "videos/e2e/clip.mp4"
    body = _fetch(job.s3_url)
    assert body == backend.read(job.storage_key)
    assert job.file_size == len(body)
    local = tmp_path / "fetched.mp4"
    local.write_bytes(body)
    streams = {s["codec_type"] for s in probe(local)["streams"]}
    assert {"video", "audio"} <= streams
