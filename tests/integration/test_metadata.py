"""Engine.extract_metadata (TornadoAPI's POST /metadata) with real yt-dlp against 127.0.0.1."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tornado_engine import Engine, InvalidRequest, ResolveError, RetryPolicy
from tornado_engine.metadata import MediaMetadata
from tornado_engine.retry import outcome_for
from tornado_engine.states import Status
from tornado_engine.testing import MediaServer, MediaSet

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(tmp_path: Path) -> Any:
    policy = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.05)
    async with Engine.open(data_dir=tmp_path / "engine", run_jobs=False, retry=policy) as eng:
        yield eng


async def test_metadata_of_a_rich_page_is_an_allowlist(engine: Engine, media_server: MediaServer) -> None:
    meta = await engine.extract_metadata(media_server.url("ie/ok"))
    assert isinstance(meta, MediaMetadata)
    api = meta.to_api()
    assert api == {
        "title": "Engine test ok",
        "duration": 4.0,
        "width": 640,
        "height": 360,
        "extractor": "enginetest",
        "uploader": "Engine Tester",
        "thumbnail": media_server.url("thumb.jpg"),  # the signed query string is gone
        "description": "A generated test pattern.",
        "view_count": 1234,
        "like_count": 56,
        "upload_date": "20240102",
        "filesize_approx": 250000,
        "qualities": ["360p", "240p"],
        "subtitle_languages": [],
    }
    # the extractor's headers, cookies and signed format URLs never get through
    assert "s3cr3t" not in json.dumps(api)
    assert await engine.list_jobs() == []  # nothing is stored


async def test_metadata_of_portrait_hls(
    engine: Engine, media_server: MediaServer, media_set: MediaSet
) -> None:
    meta = await engine.extract_metadata(media_server.url(media_set.portrait_master))
    assert (meta.width, meta.height) == (720, 1280)
    # yt-dlp reads it with a second request for the manifest (fatal=False): one the network guard
    # must answer even on a kept-alive client connection
    assert meta.duration == media_set.duration
    assert meta.qualities == ["720p", "480p", "360p"]  # by the shorter side
    assert meta.extractor == "generic" and meta.filesize_approx and meta.filesize_approx > 0


async def test_metadata_lists_subtitles_and_thumbnail(
    engine: Engine, media_server: MediaServer, media_set: MediaSet
) -> None:
    dash = await engine.extract_metadata(media_server.url(media_set.dash_mpd))
    assert dash.subtitle_languages == ["en"] and dash.qualities == ["360p", "240p"]
    page = await engine.extract_metadata(media_server.url(media_set.page_html))
    assert page.thumbnail == media_server.url(media_set.thumb_jpg)
    assert page.title and page.title.startswith("Tornado test video")


@pytest.mark.parametrize(
    ("path", "kind", "status", "attempts"),
    [
        ("ie/private", "private", Status.WARNING, 1),
        ("ie/drm", "drm", Status.SKIPPED, 1),
        ("status/404/{token}", "not_found", Status.FAILED, 1),
        ("status/500/{token}", "server_error", Status.FAILED, 3),  # retried twice
    ],
)
async def test_metadata_failures_are_classified(
    engine: Engine, media_server: MediaServer, path: str, kind: str, status: Status, attempts: int
) -> None:
    path = path.format(token=uuid.uuid4().hex[:12])
    with pytest.raises(ResolveError) as info:
        await engine.extract_metadata(media_server.url(path))
    assert info.value.kind == kind and outcome_for(kind).status is status
    assert "yt-dlp" not in info.value.message.lower()
    if path.startswith("status/"):
        assert media_server.hits["/" + path] == attempts


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "not a url", ""])
async def test_metadata_refuses_bad_urls(engine: Engine, url: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        await engine.extract_metadata(url)
    assert info.value.field == "url"
