"""``metadata URL`` and the media options of ``run``, as a user runs them: a subprocess, exit codes, JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tornado_engine.testing import MediaServer, MediaSet

pytestmark = pytest.mark.acceptance

PLUGINS = Path(__file__).parents[1] / "plugins"  # the test extractor, for the /ie/ URLs


def cli(*args: str, home: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(p for p in (str(PLUGINS), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "TORNADO_ENGINE_HOME": str(home), "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, "-m", "tornado_engine", *args],
        capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_metadata_prints_the_json(tmp_path: Path, media_server: MediaServer, media_set: MediaSet) -> None:
    proc = cli("metadata", media_server.url(media_set.portrait_master), "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["width"], out["height"], out["qualities"]) == (720, 1280, ["720p", "480p", "360p"])
    assert out["duration"] == media_set.duration and out["extractor"] == "generic"


@pytest.mark.parametrize(
    ("path", "code", "error_type"),
    [("ie/private", 3, "warning"), ("ie/drm", 4, "warning"), ("status/404/meta", 1, "error")],
)
def test_metadata_exit_codes(
    tmp_path: Path, media_server: MediaServer, path: str, code: int, error_type: str
) -> None:
    proc = cli("metadata", media_server.url(path), "--json", home=tmp_path)
    assert proc.returncode == code, proc.stderr
    assert proc.stdout == ""
    error = json.loads(proc.stderr.strip().splitlines()[-1])
    assert error["error_type"] == error_type and error["error"]


def test_metadata_bad_url_is_usage(tmp_path: Path) -> None:
    proc = cli("metadata", "ftp://example.com/x", home=tmp_path)
    assert proc.returncode == 2
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == {
        "error": "URL must start with http:// or https://"
    }
    assert not (tmp_path / "jobs.db").exists()  # refused before anything was opened


def test_run_with_media_options(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet, probe: Callable[[Path], dict[str, Any]]
) -> None:
    url = media_server.url(media_set.progressive_mp4)
    args = (
        "--audio-only",
        "--audio-format",
        "mp3",
        "--clip-start",
        "00:01",
        "--clip-end",
        "3",
        "--thumbnail",
    )
    proc = cli("run", url, *args, "--filename", "cut", "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    media = Path(record["s3_url"].removeprefix("file://"))
    assert media.name == "cut.mp3" and record["requested_quality"] == "audio"
    info = probe(media)
    assert [s["codec_name"] for s in info["streams"]] == ["mp3"]
    assert abs(float(info["format"]["duration"]) - 2.0) <= 0.2
    assert "thumbnail_url" not in record  # a bare file has no thumbnail: not an error


def test_run_refuses_impossible_media_options(tmp_path: Path) -> None:
    proc = cli("run", "http://127.0.0.1:9/x.mp4", "--clip-start", "10", "--clip-end", "5", home=tmp_path)
    assert proc.returncode == 2
    error = json.loads(proc.stderr.strip().splitlines()[-1])["error"]
    assert error == "--clip-end must be after --clip-start (got start 10 s, end 5 s)"


def test_metadata_of_a_plain_file_probes_its_head(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet
) -> None:
    proc = cli("metadata", media_server.url(media_set.progressive_mp4), "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["width"], out["height"], out["qualities"]) == (640, 360, ["360p"])
    assert out["duration"] == media_set.duration and out["extractor"] == "generic"
    assert out["filesize_approx"] == media_set.path(media_set.progressive_mp4).stat().st_size
