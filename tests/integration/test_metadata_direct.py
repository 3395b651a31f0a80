"""Metadata of a plain media file: its head (and an MP4's tail) read with bounded ranged requests through
the network guard, then ffprobe. Real yt-dlp, the guard, ffprobe and the media server on 127.0.0.1."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tornado_engine import Engine
from tornado_engine.headprobe import probe_head
from tornado_engine.netguard import NetGuard
from tornado_engine.safety import NetworkPolicy
from tornado_engine.testing import MediaServer, MediaSet

pytestmark = pytest.mark.integration

KIB = 1024


@pytest.fixture(scope="module")
def files(
    media_set: MediaSet, ffmpeg_bin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MediaServer]:
    """The generated set's faststart MP4 and WebM, and a copy of that MP4 with its index at the end."""
    root = tmp_path_factory.mktemp("direct")
    for name in (media_set.progressive_mp4, media_set.webm):
        (root / name).write_bytes(media_set.path(name).read_bytes())
    subprocess.run(
        [ffmpeg_bin, "-v", "error", "-i", str(root / media_set.progressive_mp4), "-c", "copy",
         str(root / "moov-last.mp4")],
        check=True,
    )  # fmt: skip
    with MediaServer(root) as server:
        yield server


@pytest.fixture
async def engine(tmp_path: Path) -> Any:
    async with Engine.open(data_dir=tmp_path / "engine", run_jobs=False) as eng:
        yield eng


@pytest.fixture
def guard() -> Iterator[NetGuard]:
    guard = NetGuard(NetworkPolicy.build(["127.0.0.0/8"]))
    guard.start()
    yield guard
    guard.stop()


@pytest.mark.parametrize("name", ["progressive.mp4", "video.webm", "moov-last.mp4"])
async def test_metadata_of_a_plain_file_has_duration_size_and_picture(
    engine: Engine, files: MediaServer, name: str
) -> None:
    meta = (await engine.extract_metadata(files.url(name))).to_api()
    size = (files.root / name).stat().st_size
    assert (meta["width"], meta["height"], meta["qualities"]) == (640, 360, ["360p"])
    assert meta["duration"] == pytest.approx(4.0, abs=0.05)
    assert meta["filesize_approx"] == size
    assert meta["extractor"] == "generic"


def _moov_at_end(path: Path) -> bool:
    data = path.read_bytes()
    return data.rfind(b"moov") > data.find(b"mdat")


async def test_an_index_at_the_end_is_read_from_the_tail_only(
    files: MediaServer, guard: NetGuard, ffprobe_bin: str
) -> None:
    path = files.root / "moov-last.mp4"
    assert _moov_at_end(path) and path.stat().st_size > 256 * KIB
    found = await probe_head(
        files.url("moov-last.mp4"), {}, ffprobe=ffprobe_bin, proxy=guard.url,
        head_bytes=64 * KIB, tail_bytes=64 * KIB,
    )  # fmt: skip
    assert found is not None and found.size == path.stat().st_size
    assert found.fetched <= 128 * KIB  # two bounded reads, never the whole file
    video = found.media.of_kind("video")[0]
    assert (video.width, video.height, found.media.duration) == (640, 360, pytest.approx(4.0, abs=0.05))


async def test_a_faststart_file_needs_its_head_only(
    files: MediaServer, guard: NetGuard, ffprobe_bin: str
) -> None:
    found = await probe_head(
        files.url("progressive.mp4"), {}, ffprobe=ffprobe_bin, proxy=guard.url, head_bytes=64 * KIB
    )
    assert found is not None and found.fetched == 64 * KIB
    assert [s.kind for s in found.media.streams] == ["video", "audio"]


async def test_the_reads_go_through_the_guards_policy(files: MediaServer, ffprobe_bin: str) -> None:
    strict = NetGuard(NetworkPolicy.build([]))  # loopback refused
    strict.start()
    try:
        found = await probe_head(files.url("progressive.mp4"), {}, ffprobe=ffprobe_bin, proxy=strict.url)
    finally:
        strict.stop()
    assert found is None and strict.blocked == 1
