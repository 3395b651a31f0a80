"""The in-process resolve of a plain media file gives what yt-dlp's resolve gives: the same info (every
key, in order, but the clock's ``epoch``) for the test server's media, and the same finished job.
Real yt-dlp, the network guard and the media server on 127.0.0.1."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from jobkit import local_path, run_job

from tornado_engine import Engine
from tornado_engine.netguard import NetGuard
from tornado_engine.options import MediaOptions
from tornado_engine.pipeline.directfetch import ENV_RESOLVE, resolve_direct_sync
from tornado_engine.pipeline.resolver import resolve_sync
from tornado_engine.safety import NetworkPolicy
from tornado_engine.sources.settings import JobSources
from tornado_engine.testing import MediaServer, MediaSet

pytestmark = pytest.mark.integration

LOOPBACK = NetworkPolicy.build(["127.0.0.0/8"])
# path on the server -> the generated file it is a copy of: every kind of type and extension the
# generic extractor meets (audio/mp4 as .m4a gets yt-dlp's "fmp4" id), an escaped name, a query
COPIES = {
    "progressive.mp4": "progressive.mp4",
    "video.webm": "video.webm",
    "opus_h264.mkv": "opus_h264.mkv",
    "audio.mp3": "audio.mp3",
    "sound.m4a": "progressive.mp4",
    "UPPER.MP4": "progressive.mp4",
    "a+b c.mp4": "progressive.mp4",
}
PATHS = [*[p for p in COPIES if " " not in p], "a%2Bb%20c.mp4", "progressive.mp4?v=1.2&x=y"]


@pytest.fixture(scope="module")
def files(media_set: MediaSet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServer]:
    root = tmp_path_factory.mktemp("direct_resolve")
    for name, original in COPIES.items():
        shutil.copyfile(media_set.path(original), root / name)
    with MediaServer(root) as server:
        yield server


def _without_clock(info: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in info.items() if k != "epoch"]


def _lasting(api: Mapping[str, Any]) -> dict[str, Any]:
    """A job's API fields but its id, folder, file address and clock readings."""
    varying = {"id", "job_id", "folder", "s3_url", "download_url", "file_path", "storage_key"}
    return {
        k: v for k, v in api.items()
        if k not in varying and not k.endswith(("_at", "_ms", "_mbps", "_seconds"))
    }  # fmt: skip


def _direct(url: str, proxy: str | None = None) -> dict[str, Any] | None:
    return resolve_direct_sync(
        url, policy=None if proxy else LOOPBACK, proxy=proxy, cancel=threading.Event(),
        socket_timeout=10, sources=JobSources(),
    )  # fmt: skip


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("options", [None, MediaOptions(audio_only=True, container="mp3"),
                                     MediaOptions(container="mp4", max_height=240)])  # fmt: skip
def test_the_same_info_as_ytdlp(files: MediaServer, path: str, options: MediaOptions | None) -> None:
    url = f"{files.base_url}/{path}"
    ours = _direct(url)
    assert ours is not None, path
    theirs = resolve_sync(url, None, 10, options)
    assert _without_clock(ours) == _without_clock(theirs)
    assert list(ours["formats"][0].items()) == list(theirs["formats"][0].items())


def test_through_the_guard_tunnel_the_same_info(files: MediaServer) -> None:
    guard = NetGuard(LOOPBACK)
    proxy = guard.start()
    try:
        url = files.url("progressive.mp4")
        before = files.connections
        ours = _direct(url, proxy=proxy)
        assert ours is not None and files.connections == before + 1
        assert _without_clock(ours) == _without_clock(resolve_sync(url, None, 10))
    finally:
        guard.stop()


def test_what_only_ytdlp_can_say_is_left_to_it(files: MediaServer) -> None:
    blocked = NetworkPolicy.build([])  # loopback refused: yt-dlp meets the guard and words the refusal
    assert resolve_direct_sync(
        files.url("progressive.mp4"), policy=blocked, proxy=None, cancel=threading.Event(),
        socket_timeout=10, sources=JobSources(),
    ) is None  # fmt: skip
    assert _direct(files.url("missing.mp4")) is None  # a 404
    assert _direct(f"{files.base_url}/redirect/{files.base_url[7:]}/progressive.mp4") is None


async def test_a_job_ends_the_same_either_way(
    files: MediaServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Engine.open(data_dir=tmp_path / "engine", concurrency=1) as engine:
        direct = await run_job(engine, url=files.url("progressive.mp4"), folder="direct")
        monkeypatch.setenv(ENV_RESOLVE, "ytdlp")
        ytdlp = await run_job(engine, url=files.url("progressive.mp4"), folder="ytdlp")
    a, b = direct.to_api(), ytdlp.to_api()
    assert a["status"] == "Completed", a
    assert _lasting(a) == _lasting(b)
    assert local_path(a["s3_url"]).read_bytes() == local_path(b["s3_url"]).read_bytes()
    assert {"title", "release_date", "file_size", "actual_quality", "native_video_codec"} <= set(_lasting(a))
