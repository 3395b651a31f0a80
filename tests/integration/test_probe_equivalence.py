"""The in-process probe (PyAV + the moov parser) against ffprobe, on every media kind the test kit makes.

For the engine's uses the two must agree: streams, codecs, codec tags, picture size, rotation, channels,
sample rate, language, dispositions, container, size, duration (within 0.1 s: the MP3 fixture is 4.049 s
for ffprobe 5.1 and 4.000 s for PyAV's FFmpeg 8.1), and what the engine derives from them (quality
labels, the container it already is, the mux plan). Video bit rates are not compared: nothing reads
them (FFmpeg 8.1 gives twice 5.1's for a fragmented MP4). Files whose audio bit rate the two estimate
differently must go to ffprobe when the caller needs it.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from tornado_engine.avprobe import ENV_PROBE, probe_file
from tornado_engine.ffmpeg import detect_container, plan_mux
from tornado_engine.pipeline.mux import labels
from tornado_engine.pipeline.muxer import probe
from tornado_engine.probe import MediaInfo
from tornado_engine.testing import MediaSet

pytestmark = pytest.mark.integration
pytest.importorskip("av", reason="the probe extra (PyAV) is part of the dev install")

# name -> how it is made from the kit: ("copy", kit file) | ("cat", kit files) | ("ffmpeg", args)
KINDS = ["progressive.mp4", "video.webm", "opus_h264.mkv", "audio.mp3", "audio.m4a", "dash_video.mp4",
         "dash_audio.m4a", "hls_video.mp4", "hls_audio.mp4", "portrait_ts.mp4", "portrait.mp4",
         "rotated90.mp4", "rotated270.mp4", "rotated180.mp4", "dash_muxed.mp4", "hls_muxed.mkv",
         "moov_last.mp4"]  # fmt: skip
DIFFERENT_AUDIO_BIT_RATE = {"dash_audio.m4a", "hls_audio.mp4"}  # fragmented MP4, MPEG-TS


def _cat(out: Path, parts: list[Path]) -> None:
    with out.open("wb") as f:
        for part in parts:
            f.write(part.read_bytes())


@pytest.fixture(scope="module")
def files(media_set: MediaSet, ffmpeg_bin: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The kit's files, and what the engine gets from its HLS/DASH sources (concatenated fragments, as
    yt-dlp's native downloaders write them) and writes from them (ffmpeg stream copies)."""
    d, kit = tmp_path_factory.mktemp("kinds"), media_set.root
    out = {name: d / name for name in KINDS}
    for name in ("progressive.mp4", "video.webm", "opus_h264.mkv", "audio.mp3"):
        shutil.copy(kit / name, out[name])
    _cat(out["dash_video.mp4"], [kit / "dash/init-stream0.m4s", *sorted(kit.glob("dash/chunk-stream0-*"))])
    _cat(out["dash_audio.m4a"], [kit / "dash/init-stream2.m4s", *sorted(kit.glob("dash/chunk-stream2-*"))])
    _cat(out["hls_video.mp4"], sorted(kit.glob("hls/360p_*.ts")))  # MPEG-TS named .mp4 (pitfall 9)
    _cat(out["hls_audio.mp4"], sorted(kit.glob("hls/audio_en_*.ts")))
    _cat(out["portrait_ts.mp4"], sorted(kit.glob("portrait/720p_*.ts")))
    progressive = str(out["progressive.mp4"])
    commands = [
        ["-i", progressive, "-map", "0:a", "-c", "copy", out["audio.m4a"]],
        ["-i", progressive, "-c", "copy", out["moov_last.mp4"]],  # no faststart: the index at the end
        ["-i", out["portrait_ts.mp4"], "-c", "copy", out["portrait.mp4"]],
        *([["-i", progressive, "-c", "copy", "-metadata:s:v:0", f"rotate={r}", out[f"rotated{r}.mp4"]]
           for r in (90, 270, 180)]),
        ["-i", out["dash_video.mp4"], "-i", out["dash_audio.m4a"], "-c", "copy", "-movflags", "+faststart",
         out["dash_muxed.mp4"]],
        ["-i", out["hls_video.mp4"], "-i", out["hls_audio.mp4"], "-map", "0:v", "-map", "1:a", "-c", "copy",
         out["hls_muxed.mkv"]],
    ]  # fmt: skip
    for args in commands:
        cmd = [ffmpeg_bin, "-nostdin", "-loglevel", "error", "-y", *map(str, args)]
        subprocess.run(cmd, check=True, timeout=60)
    return out


def _engine_view(info: MediaInfo) -> MediaInfo:
    """What the engine reads, durations aside (compared within a tolerance)."""
    streams = tuple(
        dataclasses.replace(s, duration=None, bit_rate=s.bit_rate if s.kind == "audio" else None)
        for s in info.streams
    )
    return dataclasses.replace(info, duration=None, streams=streams)


async def _ffprobe(path: Path, ffprobe_bin: str, monkeypatch: pytest.MonkeyPatch) -> MediaInfo:
    with monkeypatch.context() as patch:
        patch.setenv(ENV_PROBE, "ffprobe")
        return await probe(path, ffprobe_bin)


@pytest.mark.parametrize("name", KINDS)
async def test_in_process_probe_equals_ffprobe(
    name: str, files: dict[str, Path], ffprobe_bin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = files[name]
    reference = await _ffprobe(path, ffprobe_bin, monkeypatch)
    mine = probe_file(path, audio_bit_rate=False)
    assert mine is not None, "the in-process probe could not tell"
    if name in DIFFERENT_AUDIO_BIT_RATE:
        assert probe_file(path, audio_bit_rate=True) is None  # an audio-only job asks ffprobe
        pairs = zip(mine.streams, reference.streams, strict=True)
        streams = tuple(dataclasses.replace(s, bit_rate=r.bit_rate) for s, r in pairs)
        mine = dataclasses.replace(mine, streams=streams)
    else:
        assert probe_file(path, audio_bit_rate=True) == mine
    assert _engine_view(mine) == _engine_view(reference)
    assert mine.duration == pytest.approx(reference.duration, abs=0.1)
    for a, b in zip(mine.streams, reference.streams, strict=True):
        assert (a.duration is None) == (b.duration is None)
        assert a.duration == pytest.approx(b.duration, abs=0.1)
    for audio_only in (False, True):
        assert labels([mine], audio_only=audio_only) == labels([reference], audio_only=audio_only)
    assert detect_container(mine) == detect_container(reference)
    container = detect_container(reference) or "mp4"
    if container in ("mp4", "mkv", "webm"):
        assert plan_mux([mine], container=container) == plan_mux([reference], container=container)


async def test_the_engine_probe_uses_the_process_only_where_it_must(
    files: dict[str, Path], tmp_path: Path
) -> None:
    missing = tmp_path / "no-ffprobe"  # a path that cannot run: only the in-process probe can answer
    assert (await probe(files["progressive.mp4"], str(missing))).streams
    with pytest.raises(Exception, match="cannot run"):
        await probe(files["dash_audio.m4a"], str(missing))  # the audio bit rate: ffprobe's
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\0" * 4096)
    with pytest.raises(Exception, match="cannot run"):
        await probe(bad, str(missing))  # PyAV never gives a verdict of its own
