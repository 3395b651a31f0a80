"""Session-wide fixtures: ffmpeg/ffprobe, generated media, and a local media server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# yt-dlp loads plugins once, at the process's first YoutubeDL(), from every sys.path entry holding
# yt_dlp_plugins/: this registers the test extractor (tests/plugins/yt_dlp_plugins/extractor/engine_test.py).
sys.path.insert(0, str(Path(__file__).parent / "plugins"))

# Every test server listens on loopback, which the engine's network policy (SSRF guard) refuses by
# default; tests allow it the way an operator would. The CLI subprocesses inherit it.
os.environ.setdefault("TORNADO_ALLOW_NETWORKS", "127.0.0.0/8,::1/128")

from tornado_engine.testing import MediaServer, MediaSet, generate_media, write_pages


def _require(name: str) -> str:
    path = shutil.which(name)
    if path is None:  # fail, never skip: CI must not go green without ffmpeg
        pytest.fail(f"{name} not found on PATH; install ffmpeg (e.g. apt-get install ffmpeg)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def ffmpeg_bin() -> str:
    return _require("ffmpeg")


@pytest.fixture(scope="session")
def ffprobe_bin() -> str:
    return _require("ffprobe")


@pytest.fixture(scope="session")
def media_set(ffmpeg_bin: str, tmp_path_factory: pytest.TempPathFactory) -> MediaSet:
    return generate_media(tmp_path_factory.mktemp("media"), ffmpeg=ffmpeg_bin)


@pytest.fixture(scope="session")
def media_root(media_set: MediaSet) -> Path:
    return media_set.root


@pytest.fixture(scope="session")
def media_server(media_root: Path) -> Iterator[MediaServer]:
    with MediaServer(media_root) as srv:
        write_pages(media_root, srv.base_url)
        yield srv


@pytest.fixture(scope="session")
def probe(ffprobe_bin: str) -> Callable[[str | Path], dict[str, Any]]:
    def _probe(path: str | Path) -> dict[str, Any]:
        out = subprocess.run(
            [ffprobe_bin, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        result: dict[str, Any] = json.loads(out.stdout)
        return result

    return _probe
