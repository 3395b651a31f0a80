"""``max_resolution`` caps a re-encoded video: sources with one format above the cap (landscape, portrait)
are scaled down to the cap on their shorter side, never up; a copy keeps the format as downloaded. Real
yt-dlp and ffmpeg, outputs checked with ffprobe."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jobkit import local_path, run_job

from tornado_engine import Engine, Status
from tornado_engine.testing import MediaServer

pytestmark = pytest.mark.integration

Probe = Callable[[str | Path], dict[str, Any]]
SIZES = {"land.mp4": "640x480", "tall.mp4": "480x640"}  # one format each, short side 480


@pytest.fixture(scope="module")
def tall_server(ffmpeg_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MediaServer]:
    root = tmp_path_factory.mktemp("cap")
    for name, size in SIZES.items():
        subprocess.run(
            [ffmpeg_bin, "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=10", "-t", "1",
             "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(root / name)],
            check=True,
        )  # fmt: skip
    # a phone-style file: stored landscape with a 90 degree rotation tag, shown (and scaled) as portrait
    subprocess.run(
        [ffmpeg_bin, "-v", "error", "-i", str(root / "land.mp4"), "-c", "copy", "-metadata:s:v", "rotate=90",
         str(root / "turned.mp4")],
        check=True,
    )  # fmt: skip
    with MediaServer(root) as server:
        yield server


def _size(probe: Probe, job: Any) -> tuple[int, int]:
    assert job.status is Status.COMPLETED, job.to_api()
    video = next(s for s in probe(local_path(job.s3_url))["streams"] if s["codec_type"] == "video")
    return int(video["width"]), int(video["height"])


@pytest.mark.parametrize(
    ("name", "fields", "expected"),
    [
        ("land.mp4", {"video_codec": "h264"}, (480, 360)),  # landscape: scale=-2:360
        ("tall.mp4", {"quality_preset": "lowest", "video_codec": "h264"}, (360, 480)),  # portrait: 360:-2
        ("turned.mp4", {"video_codec": "h264"}, (360, 480)),  # scaled after the rotation is applied
        ("land.mp4", {"clip_start": "0", "clip_end": "0.5"}, (480, 360)),  # a clip re-encodes
        ("land.mp4", {}, (640, 480)),  # a copy keeps the next best format, as downloaded
    ],
    ids=["codec", "portrait-preset", "rotated", "clip", "copy"],
)
async def test_a_reencoded_video_is_capped_on_its_shorter_side(
    engine: Engine, tall_server: MediaServer, probe: Probe, name: str, fields: dict[str, Any],
    expected: tuple[int, int],
) -> None:  # fmt: skip
    job = await run_job(engine, url=tall_server.url(name), max_resolution="360", **fields)
    assert _size(probe, job) == expected
    assert job.actual_quality == f"{min(expected)}p"


async def test_never_upscaled(engine: Engine, tall_server: MediaServer, probe: Probe) -> None:
    job = await run_job(engine, url=tall_server.url("land.mp4"), max_resolution="720", video_codec="h264")
    assert _size(probe, job) == (640, 480)
