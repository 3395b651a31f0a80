"""``max_resolution`` caps a re-encoded video: the scale filter in ffmpeg's arguments (pure, no I/O)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tornado_engine.errors import MuxError
from tornado_engine.ffmpeg import (
    MediaInfo,
    MuxPlan,
    StreamInfo,
    build_args,
    plan_mux,
    scale_filter,
    verify_output,
)
from tornado_engine.pipeline.mux import labels

MP4 = "mov,mp4,m4a,3gp,3g2,mj2"
CAP_FILTER = "scale='if(gt(iw,ih),-2,720)':'if(gt(iw,ih),720,-2)'"


def source(width: int, height: int, vcodec: str = "h264") -> MediaInfo:
    streams = (
        StreamInfo(0, "video", vcodec, width=width, height=height),
        StreamInfo(1, "audio", "aac", channels=2, sample_rate=48000),
    )
    return MediaInfo(Path("/job/media.mp4"), 4.0, streams, MP4, "isom")


def scaled(width: int, height: int, cap: int | None = 720, **kw: object) -> MuxPlan:
    return plan_mux([source(width, height)], container="mp4", max_height=cap, **kw)  # type: ignore[arg-type]


def test_the_filter_caps_the_shorter_side_with_even_sides() -> None:
    assert scale_filter(720) == CAP_FILTER  # landscape: -2:720; portrait: 720:-2; -2 keeps it even


@pytest.mark.parametrize(
    "why",
    [{"video_codec": "h264"}, {"video_codec": "vp9", "quality": "low"}, {"clip": (1.0, 2.0)}],
    ids=["codec", "preset", "clip"],
)
@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (1080, 1920)], ids=["landscape", "portrait"])
def test_a_reencoded_video_above_the_cap_is_scaled_down(
    width: int, height: int, why: dict[str, object]
) -> None:
    p = scaled(width, height, **why)
    assert p.video is not None and not p.video.copied
    assert (p.video.scaled_to, dict(p.video.options)["filter:v"]) == (720, CAP_FILTER)
    assert "video: scaled down to 720p (max_resolution)" in p.notes
    args = build_args(p, "/job/out.mp4", "ffmpeg")
    assert args[args.index("-filter:v") + 1] == CAP_FILTER


@pytest.mark.parametrize(
    ("width", "height", "cap", "why"),
    [
        (1920, 1080, 720, {}),  # a copy keeps what yt-dlp picked (the next best above the cap)
        (1280, 720, 720, {"video_codec": "h264"}),  # at the cap
        (640, 360, 720, {"video_codec": "h264"}),  # below it: never upscaled
        (1920, 1080, None, {"video_codec": "h264"}),  # best: no cap
    ],
)  # fmt: skip
def test_no_scaling_for_a_copy_or_a_video_within_the_cap(
    width: int, height: int, cap: int | None, why: dict[str, object]
) -> None:
    p = scaled(width, height, cap, **why)
    assert p.video is not None and p.video.scaled_to is None
    assert "filter:v" not in dict(p.video.options)
    assert "-filter:v" not in build_args(p, "/job/out.mp4", "ffmpeg")


def test_a_copy_that_must_be_transcoded_for_the_container_is_scaled_too() -> None:
    p = plan_mux([source(1920, 1080, "hevc")], container="webm", max_height=720)
    assert p.video is not None and p.video.encoder == "libvpx-vp9" and p.video.scaled_to == 720


def test_the_output_check_wants_the_capped_short_side() -> None:
    p = scaled(1080, 1920, video_codec="h264")
    ok = MediaInfo(Path("/job/out.mp4"), 4.0, source(720, 1280).streams, MP4)
    verify_output(p, ok)
    with pytest.raises(MuxError, match="expected a 720p short side"):
        verify_output(p, MediaInfo(Path("/job/out.mp4"), 4.0, source(1080, 1920).streams, MP4))


def test_a_scaled_job_reports_the_cap_as_its_quality() -> None:
    inputs = [source(1080, 1920)]
    assert labels(inputs, audio_only=False).quality == "1080p"
    assert labels(inputs, audio_only=False, scaled_to=720).quality == "720p"
