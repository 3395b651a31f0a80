"""Pure tests of ffmpeg planning: compatibility table, fallbacks, argv safety. No I/O."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tornado_engine.errors import InvalidRequest, MuxError
from tornado_engine.ffmpeg import (
    MediaInfo,
    MuxPlan,
    StreamInfo,
    build_args,
    detect_container,
    parse_probe,
    plan_mux,
    verify_output,
)

MP4 = "mov,mp4,m4a,3gp,3g2,mj2"
MKV = "matroska,webm"


def video(codec: str = "h264", index: int = 0, **kw: Any) -> StreamInfo:
    return StreamInfo(index, "video", codec, width=kw.pop("width", 320), height=kw.pop("height", 180), **kw)


def audio(codec: str = "aac", index: int = 1, **kw: Any) -> StreamInfo:
    return StreamInfo(index, "audio", codec, channels=2, sample_rate=48000, **kw)


def media(name: str, *streams: StreamInfo, fmt: str = MP4, brand: str | None = "isom") -> MediaInfo:
    return MediaInfo(Path("/job") / name, 2.0, tuple(streams), fmt, brand)


def av(vcodec: str, acodec: str, name: str = "in.mkv", fmt: str = MKV) -> MediaInfo:
    return media(name, video(vcodec), audio(acodec), fmt=fmt, brand=None)


def plan(*inputs: MediaInfo, **kw: Any) -> MuxPlan:
    kw.setdefault("container", "mp4")
    return plan_mux(list(inputs), **kw)


def opts(p: MuxPlan, kind: str) -> dict[str, str]:
    stream = p.video if kind == "video" else p.audio
    assert stream is not None
    return dict(stream.options)


# -- copy is kept when the container takes the codec --------------------------------------------------

COPY_OK = (
    [("mp4", v, a) for v in ("h264", "hevc", "vp9", "av1") for a in ("aac", "mp3", "opus")]
    + [("mov", v, a) for v in ("h264", "hevc") for a in ("aac", "mp3")]
    + [("webm", v, a) for v in ("vp8", "vp9", "av1") for a in ("opus", "vorbis")]
    + [
        ("mkv", v, a)
        for v in ("h264", "hevc", "vp9", "av1", "mpeg4")
        for a in ("aac", "opus", "vorbis", "flac")
    ]
)


@pytest.mark.parametrize(("container", "vcodec", "acodec"), COPY_OK)
def test_copy_kept_when_container_accepts(container: str, vcodec: str, acodec: str) -> None:
    p = plan(av(vcodec, acodec), container=container)
    assert p.video is not None and p.audio is not None
    assert (p.video.encoder, p.video.codec) == ("copy", vcodec)
    assert (p.audio.encoder, p.audio.codec) == ("copy", acodec)
    assert p.copied == ("video", "audio") and p.transcoded == ()
    assert "crf:v" not in opts(p, "video") and "b:a" not in opts(p, "audio")  # CRF only when encoding


COPY_FALLBACK = [
    # container, source video, source audio, (video encoder, codec), (audio encoder, codec)
    ("mov", "h264", "opus", ("copy", "h264"), ("aac", "aac")),
    ("mov", "vp9", "aac", ("libx264", "h264"), ("copy", "aac")),
    ("mov", "av1", "vorbis", ("libx264", "h264"), ("aac", "aac")),
    ("mp4", "h264", "vorbis", ("copy", "h264"), ("aac", "aac")),  # accepted but not playable
    ("mp4", "mpeg2video", "flac", ("libx264", "h264"), ("aac", "aac")),
    ("webm", "h264", "aac", ("libvpx-vp9", "vp9"), ("libopus", "opus")),
    ("webm", "hevc", "opus", ("libvpx-vp9", "vp9"), ("copy", "opus")),
    ("webm", "vp9", "mp3", ("copy", "vp9"), ("libopus", "opus")),
]


@pytest.mark.parametrize(("container", "vcodec", "acodec", "want_v", "want_a"), COPY_FALLBACK)
def test_copy_falls_back_when_container_refuses(
    container: str, vcodec: str, acodec: str, want_v: tuple[str, str], want_a: tuple[str, str]
) -> None:
    p = plan(av(vcodec, acodec), container=container, audio_bitrate="128k", crf=30)
    assert p.video is not None and p.audio is not None
    assert (p.video.encoder, p.video.codec) == want_v
    assert (p.audio.encoder, p.audio.codec) == want_a
    assert p.needs_work
    if want_v[0] != "copy":
        assert opts(p, "video")["crf:v"] == "30"
        assert any(vcodec in note and "video" in note for note in p.notes)
    else:
        assert "crf:v" not in opts(p, "video")
    if want_a[0] != "copy":
        assert opts(p, "audio")["b:a"] == "128k"
        assert any(acodec in note and "audio" in note for note in p.notes)


def test_requested_codecs_map_to_encoders() -> None:
    src = av("h264", "aac", "in.mp4", MP4)
    p = plan(src, container="mkv", video_codec="h264", audio_codec="mp3", crf=20)
    assert p.video is not None and p.audio is not None
    assert p.video.encoder == "libx264" and p.audio.encoder == "libmp3lame"
    assert opts(p, "video") == {"crf:v": "20", "preset:v": "veryfast", "pix_fmt:v": "yuv420p"}
    assert opts(p, "audio") == {"b:a": "192k"}

    p = plan(src, container="webm", video_codec="vp9", audio_codec="opus")
    assert p.video is not None and p.audio is not None
    assert (p.video.encoder, p.audio.encoder) == ("libvpx-vp9", "libopus")
    assert opts(p, "video") == {
        "crf:v": "23",
        "pix_fmt:v": "yuv420p",
        "b:v": "0",
        "cpu-used:v": "8",
        "row-mt:v": "1",
        "deadline:v": "realtime",
    }


@pytest.mark.parametrize("container", ["mp4", "mov"])
def test_h265_in_mp4_and_mov_gets_hvc1(container: str) -> None:
    p = plan(av("h264", "aac"), container=container, video_codec="h265")
    assert p.video is not None and p.video.encoder == "libx265" and p.video.codec == "hevc"
    assert opts(p, "video")["tag:v"] == "hvc1"
    # a copied hevc stream is re-tagged too
    p = plan(av("hevc", "aac"), container=container)
    assert p.video is not None and p.video.copied and opts(p, "video") == {"tag:v": "hvc1"}


def test_h265_in_mkv_has_no_tag() -> None:
    p = plan(av("h264", "aac"), container="mkv", video_codec="h265")
    assert "tag:v" not in opts(p, "video")


def test_plan_mux_checks_combination_and_options() -> None:
    with pytest.raises(InvalidRequest):
        plan(av("h264", "aac"), container="webm", video_codec="h264")
    with pytest.raises(InvalidRequest):
        plan(av("h264", "aac"), audio_bitrate="1k -f null")
    with pytest.raises(InvalidRequest):
        plan(av("h264", "aac"), crf=99)


# -- stream selection ------------------------------------------------------------------------------------


def test_audio_only_input() -> None:
    p = plan(media("ep.mp3", audio("mp3", 0), fmt="mp3", brand=None), container="mp4")
    assert p.video is None and p.audio is not None and p.audio.copied
    assert any("audio only" in n for n in p.notes)
    p = plan(media("ep.mp3", audio("mp3", 0), fmt="mp3", brand=None), container="webm")
    assert p.audio is not None and p.audio.encoder == "libopus"


def test_video_only_input() -> None:
    p = plan(media("v.mp4", video("h264", 0)), container="mkv", audio_codec="aac")
    assert p.audio is None and p.video is not None and p.video.copied
    assert any("video only" in n for n in p.notes)


def test_cover_art_is_not_video() -> None:
    art = StreamInfo(1, "video", "mjpeg", width=600, height=600, attached_pic=True)
    p = plan(media("song.mp3", audio("mp3", 0), art, fmt="mp3", brand=None), container="mp4")
    assert p.video is None and p.audio is not None
    assert any("cover art" in n for n in p.notes)


def test_no_streams_is_invalid_media() -> None:
    with pytest.raises(MuxError) as info:
        plan(media("x.mp4", StreamInfo(0, "subtitle", "mov_text")))
    assert info.value.kind == "invalid_media"


def test_two_inputs_dash_video_and_audio() -> None:
    v = media("media.0.mp4", video("h264", 0), brand="dash")
    a = media("media.2.m4a", audio("aac", 0), brand="dash")
    p = plan(v, a, container="mp4")
    assert p.inputs == (v.path, a.path)
    assert p.video is not None and (p.video.input_index, p.video.stream_index) == (0, 0)
    assert p.audio is not None and (p.audio.input_index, p.audio.stream_index) == (1, 0)
    assert p.needs_work  # two inputs always need ffmpeg
    args = build_args(p, "/job/out.mp4", "ffmpeg")
    assert args[args.index("-map") : args.index("-map") + 4] == ["-map", "0:0", "-map", "1:0"]
    # audio listed first still maps right
    p = plan(a, v, container="mp4")
    assert p.video is not None and p.video.input_index == 1
    args = build_args(p, "/job/out.mp4", "ffmpeg")
    assert "1:0" in args and "0:0" in args


def test_best_video_and_default_audio_are_chosen() -> None:
    small = media("a.mkv", video("h264", 0, width=426, height=240), audio("aac", 1), fmt=MKV)
    big = media("b.mkv", video("vp9", 0, width=1280, height=720), audio("opus", 1, default=True), fmt=MKV)
    p = plan(small, big, container="mkv")
    assert p.video is not None and p.video.codec == "vp9"
    assert p.audio is not None and p.audio.codec == "opus"
    assert p.inputs == (big.path,)  # the unused input is dropped
    assert p.video.input_index == 0 and p.audio.input_index == 0


def test_unused_input_dropped_and_extra_streams_unmapped() -> None:
    src = media("in.mkv", video("h264", 0), audio("aac", 1), audio("aac", 2), fmt=MKV, brand=None)
    p = plan(src, container="mkv")
    args = build_args(p, "/job/out.mkv", "ffmpeg")
    assert args.count("-map") == 2 and "0:2" not in args
    assert p.needs_work  # dropping a stream is work


# -- needs_work ----------------------------------------------------------------------------------------


def test_needs_work_false_only_when_nothing_changes() -> None:
    assert not plan(av("h264", "aac", "in.mp4", MP4), container="mp4").needs_work
    assert plan(av("h264", "aac", "in.mp4", MP4), container="mkv").needs_work
    assert plan(av("h264", "aac", "in.mp4", MP4), container="mp4", video_codec="h264").needs_work
    assert not plan(av("vp9", "opus", "in.webm"), container="webm").needs_work
    assert plan(av("vp9", "opus", "in.mkv"), container="webm").needs_work
    assert not plan(av("vp9", "opus", "in.mkv"), container="mkv").needs_work
    assert plan(av("h264", "aac", "in.mp4", "mpegts"), container="mp4").needs_work  # TS named .mp4
    mov = media("in.mov", video("h264", 0), audio("aac", 1), brand="qt")
    assert not plan(mov, container="mov").needs_work and plan(mov, container="mp4").needs_work
    hev1 = media("in.mp4", video("hevc", 0, codec_tag="hev1"), audio("aac", 1))
    hvc1 = media("in.mp4", video("hevc", 0, codec_tag="hvc1"), audio("aac", 1))
    assert plan(hev1, container="mp4").needs_work and not plan(hvc1, container="mp4").needs_work


# -- argv ------------------------------------------------------------------------------------------------


def test_build_args_is_safe_and_complete() -> None:
    p = plan(av("h264", "opus", "in.mkv"), container="mp4", video_codec="h265", crf=28)
    args = build_args(p, Path("/job/out.mp4"), "/usr/bin/ffmpeg")
    assert args[0] == "/usr/bin/ffmpeg"
    for flag in ("-nostdin", "-nostats", "-y"):
        assert flag in args
    assert args[args.index("-loglevel") + 1] == "error"
    assert args[args.index("-progress") + 1] == "pipe:1"
    i = args.index("-i")
    assert args[i - 2 : i + 2] == ["-protocol_whitelist", "file,pipe", "-i", "file:/job/in.mkv"]
    assert args[-1] == "file:/job/out.mp4"
    assert args[args.index("-f") + 1] == "mp4"
    assert args[args.index("-movflags") + 1] == "+faststart"
    assert args[args.index("-c:v") + 1] == "libx265" and args[args.index("-crf:v") + 1] == "28"
    assert args[args.index("-tag:v") + 1] == "hvc1"
    assert args[args.index("-c:a") + 1] == "copy"


def test_every_input_gets_the_whitelist() -> None:
    v = media("v.mp4", video("h264", 0))
    a = media("a.m4a", audio("aac", 0))
    args = build_args(plan(v, a), "/job/o.mp4", "ffmpeg")
    inputs = [n for n, arg in enumerate(args) if arg == "-i"]
    assert len(inputs) == 2
    for n in inputs:
        assert args[n - 2 : n] == ["-protocol_whitelist", "file,pipe"]
        assert args[n + 1].startswith("file:/")


def test_dash_named_paths_stay_paths() -> None:
    src = MediaInfo(Path("-i.mp4"), 2.0, (video("h264", 0), audio("aac", 1)), MP4, "isom")
    args = build_args(plan(src, container="mkv"), "-y.mkv", "ffmpeg")
    ins = args[args.index("-i") + 1]
    assert ins.startswith("file:/") and ins.endswith("/-i.mp4")
    assert args[-1].startswith("file:/") and args[-1].endswith("/-y.mkv")
    assert "-i.mp4" not in args and "-y.mkv" not in args
    assert args[args.index("-f") + 1] == "matroska"
    assert "-movflags" not in args


def test_webm_and_mov_muxer_names() -> None:
    assert "webm" in build_args(plan(av("vp9", "opus"), container="webm"), "/o", "ffmpeg")
    mov = build_args(plan(av("h264", "aac"), container="mov"), "/o", "ffmpeg")
    assert mov[mov.index("-f") + 1] == "mov" and "+faststart" in mov


# -- probe parsing and verification --------------------------------------------------------------------

PROBE: dict[str, Any] = {
    "streams": [
        {
            "index": 0,
            "codec_name": "hevc",
            "codec_type": "video",
            "codec_tag_string": "hvc1",
            "width": 640,
            "height": 360,
            "duration": "2.000000",
            "bit_rate": "500000",
            "disposition": {"default": 1, "attached_pic": 0},
            "tags": {"language": "und"},
        },
        {
            "index": 1,
            "codec_name": "opus",
            "codec_type": "audio",
            "channels": 2,
            "sample_rate": "48000",
            "tags": {"DURATION": "00:00:02.010000000"},
        },
        {"index": 2, "codec_name": "ass", "codec_type": "subtitle"},
        {"index": 3, "codec_type": "data"},
    ],
    "format": {
        "filename": "file:/job/out.mkv",
        "format_name": "matroska,webm",
        "duration": "2.010000",
        "size": "12345",
        "tags": {"MAJOR_BRAND": "isom"},
    },
}


def test_parse_probe() -> None:
    info = parse_probe(PROBE)
    assert info.path == Path("/job/out.mkv") and info.duration == pytest.approx(2.01)
    assert [s.kind for s in info.streams] == ["video", "audio", "subtitle", "other"]
    v, a = info.streams[0], info.streams[1]
    assert (v.codec, v.width, v.height, v.codec_tag, v.default, v.bit_rate) == (
        "hevc",
        640,
        360,
        "hvc1",
        True,
        500000,
    )
    assert (a.codec, a.channels, a.sample_rate, a.duration) == ("opus", 2, 48000, pytest.approx(2.01))
    assert info.streams[3].codec == "unknown"
    assert info.size == 12345 and detect_container(info) == "mkv"


def test_parse_probe_duration_fallback_and_garbage() -> None:
    data = {"streams": PROBE["streams"][:2], "format": {"format_name": "matroska,webm", "duration": "N/A"}}
    assert parse_probe(data, "/job/x.webm").duration == pytest.approx(2.01)
    assert detect_container(parse_probe(data, "/job/x.webm")) == "webm"
    assert parse_probe({}, "/x").streams == ()
    with pytest.raises(MuxError):
        parse_probe({"format": "nope"})


def test_verify_output() -> None:
    src = media("in.mp4", video("h264", 0), audio("opus", 1))
    p = plan(src, container="mp4", video_codec="h265")
    good = media("out.mp4", video("hevc", 0, codec_tag="hvc1"), audio("opus", 1))
    verify_output(p, good)
    verify_output(p, good, duration=2.4)
    bad = [
        (media("o.mp4", video("hevc", 0, codec_tag="hev1"), audio("opus", 1)), "hvc1"),
        (media("o.mp4", video("h264", 0), audio("opus", 1)), "expected hevc"),
        (media("o.mp4", video("hevc", 0, codec_tag="hvc1")), "expected 1 audio"),
    ]
    for out, reason in bad:
        with pytest.raises(MuxError) as info:
            verify_output(p, out)
        assert info.value.kind == "verify_failed" and reason in info.value.message
    with pytest.raises(MuxError, match="duration"):
        verify_output(p, good, duration=3.0)
    audio_only = plan(media("a.m4a", audio("aac", 0)), container="mp4")
    with pytest.raises(MuxError, match="unexpected video"):
        verify_output(audio_only, media("o.mp4", video("h264", 0), audio("aac", 1)))
