"""Media options, pure: request validation, what they mean for yt-dlp and ffmpeg, metadata projection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from yt_dlp.utils import DownloadError, ExtractorError

from tornado_engine.codecs import VIDEO_ENCODERS
from tornado_engine.errors import InvalidRequest, MuxError, ResolveError
from tornado_engine.ffmpeg import MediaInfo, StreamInfo, build_args, detect_container, plan_mux
from tornado_engine.metadata import MediaMetadata, project
from tornado_engine.models import Job, JobRequest
from tornado_engine.options import (
    QUALITY_PRESETS,
    MediaOptions,
    QualityPreset,
    audio_quality,
    encoder_settings,
    parse_clip_time,
    video_quality_label,
)
from tornado_engine.pipeline.resolver import wait_poll_seconds
from tornado_engine.pipeline.sidecar import SideFiles, side_keys
from tornado_engine.retry import outcome_for
from tornado_engine.states import Status
from tornado_engine.ytdlp import (
    base_params,
    check_resolved,
    classify,
    download_params,
    format_selection,
    map_error,
    option_params,
    side_params,
)

URL = "https://example.com/watch?v=abc"


def make(**kw: Any) -> JobRequest:
    return JobRequest(url=URL, **kw)


def refused(**kw: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        make(**kw)
    return info.value


# -- clip times ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0, 0.0),
        (90, 90.0),
        (1.5, 1.5),
        ("75", 75.0),
        ("2.25", 2.25),
        ("01:30", 90.0),
        ("1:02.5", 62.5),
        ("90:00", 5400.0),  # MM:SS takes any number of minutes
        ("00:01:02", 62.0),
        ("1:00:00.125", 3600.125),
        (" 00:00:03 ", 3.0),
    ],
)
def test_clip_time_forms(value: Any, seconds: float) -> None:
    assert parse_clip_time(value, "Clip start") == seconds


@pytest.mark.parametrize(
    "value", [-1, "-1", "1:60", "1:00:60", "00:61:00", "1:2:3:4", "abc", "", "1e3", True, [], float("nan")]
)
def test_clip_time_refused(value: Any) -> None:
    with pytest.raises(ValueError, match=r"Clip start must be HH:MM:SS, MM:SS or seconds"):
        parse_clip_time(value, "Clip start")


def test_clip_time_bounded() -> None:
    with pytest.raises(ValueError, match="too large"):
        parse_clip_time(10**9, "Clip end")


def test_clip_fields_normalize_and_round_trip() -> None:
    req = make(clip_start="00:01", clip_end="0:00:02.5")
    assert (req.clip_start, req.clip_end) == (1.0, 2.5)
    assert MediaOptions.from_request(req).clip == (1.0, 2.5)
    assert MediaOptions.from_request(make(clip_end=3)).clip == (0.0, 3.0)
    assert MediaOptions.from_request(make(clip_start=3)).clip == (3.0, None)
    assert MediaOptions.from_request(make()).clip is None


# -- field checks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"audio_format": "wav", "audio_only": True},
            "audio_format",
            "Audio format must be one of: m4a, mp3",
        ),
        ({"max_resolution": "900"}, "max_resolution", "Max resolution must be one of: best, 2160"),
        ({"max_resolution": True}, "max_resolution", "Max resolution must be one of"),
        ({"quality_preset": "ultra"}, "quality_preset", "Quality preset must be one of: highest, high"),
        ({"clip_start": "soon"}, "clip_start", "Clip start must be HH:MM:SS"),
        ({"clip_end": "1:2:3:4"}, "clip_end", "Clip end must be HH:MM:SS"),
        ({"max_duration": 0, "live_recording": True}, "max_duration", "Max duration must be a whole number"),
        ({"wait_for_video": 1.5, "live_recording": True}, "wait_for_video", "from 1 to 43200"),
        ({"audio_only": "yes"}, "audio_only", "audio_only must be true or false"),
        ({"download_subtitles": 1}, "download_subtitles", "must be true or false"),
        ({"download_subtitles": True, "subtitle_languages": "en"}, "subtitle_languages", "non-empty list"),
        ({"download_subtitles": True, "subtitle_languages": []}, "subtitle_languages", "non-empty list"),
        ({"download_subtitles": True, "subtitle_languages": ["en.*"]}, "subtitle_languages", "'en.*'"),
        ({"download_subtitles": True, "subtitle_languages": ["-en"]}, "subtitle_languages", "'-en'"),
        ({"download_subtitles": True, "subtitle_languages": ["all"]}, "subtitle_languages", "'all'"),
    ],
)
def test_option_fields_refused(fields: dict[str, Any], field: str, message: str) -> None:
    err = refused(**fields)
    assert err.field == field
    assert message in err.message


def test_option_values_normalized() -> None:
    assert make(max_resolution=720).max_resolution == "720"
    assert make(max_resolution="1080P").max_resolution == "1080"
    assert make(audio_only=True, audio_format="MP3").audio_format == "mp3"
    assert make(video_codec="h264", quality_preset="HIGH").quality_preset == "high"
    req = make(download_subtitles=True, subtitle_languages=["en", "pt-BR", "en"])
    assert req.subtitle_languages == ("en", "pt-BR")


# -- combinations ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"audio_format": "mp3"}, "audio_format", "Audio format applies only with audio_only"),
        ({"audio_only": True, "format": "mkv"}, "format", "with audio_only choose audio_format"),
        ({"audio_only": True, "video_codec": "h264"}, "video_codec", "Video codec does not apply"),
        ({"audio_only": True, "audio_codec": "opus"}, "audio_codec", "m4a holds aac audio"),
        ({"audio_only": True, "audio_format": "ogg", "audio_codec": "mp3"}, "audio_codec", "use audio_codec"),
        ({"audio_only": True, "max_resolution": "720"}, "max_resolution", "does not apply to audio_only"),
        ({"audio_only": True, "quality_preset": "low"}, "quality_preset", "not with audio_only"),
        ({"quality_preset": "low"}, "quality_preset", "copy does not re-encode"),
        ({"clip_start": 5, "clip_end": 5}, "clip_end", "must be after clip start (got start 5 s"),
        ({"clip_start": "1:00", "clip_end": 30}, "clip_end", "got start 60 s, end 30 s"),
        ({"subtitle_languages": ["en"]}, "subtitle_languages", "only with download_subtitles"),
        ({"live_from_start": True}, "live_from_start", "live_from_start applies only with live_recording"),
        ({"max_duration": 60}, "max_duration", "only with live_recording"),
        ({"wait_for_video": 60}, "wait_for_video", "only with live_recording"),
        ({"live_recording": True, "clip_end": 10}, "clip_end", "use max_duration"),
        ({"format": "webm", "video_codec": "h264"}, "video_codec", "webm cannot hold h264 video"),
        ({"format": "mov", "audio_codec": "opus"}, "audio_codec", "mov cannot hold opus audio"),
    ],
)  # fmt: skip
def test_combinations_refused(fields: dict[str, Any], field: str, message: str) -> None:
    err = refused(**fields)
    assert (err.field, message in err.message) == (field, True), err.message


@pytest.mark.parametrize(
    "fields",
    [
        {"audio_only": True},
        {"audio_only": True, "audio_format": "mp3", "audio_codec": "mp3", "clip_end": 5},
        {"audio_only": True, "audio_format": "opus", "audio_codec": "opus", "download_thumbnail": True},
        {"audio_only": True, "audio_format": "ogg", "download_subtitles": True},
        {"video_codec": "h265", "quality_preset": "lowest", "max_resolution": "480"},
        {"clip_start": "00:00:01", "clip_end": "00:00:02"},
        {"live_recording": True, "live_from_start": True, "max_duration": 30, "wait_for_video": 600},
        {"live_recording": True, "audio_only": True, "max_duration": 30},
        {"download_subtitles": True, "subtitle_languages": ["de", "fr"], "download_thumbnail": True},
    ],
)
def test_combinations_accepted_and_stored(fields: dict[str, Any]) -> None:
    req = make(**fields)
    job = Job(id="j", url=URL, request=req)
    again = Job.from_record(json.loads(json.dumps(job.to_record())))
    assert again.request == req  # what the store keeps validates again to the same request


# -- MediaOptions ----------------------------------------------------------------------------------------


def test_media_options_from_request() -> None:
    plain = MediaOptions.from_request(make())
    assert (plain.container, plain.extension, plain.requested_quality) == ("mp4", "mp4", "best")
    assert plain.subtitle_languages == () and not plain.thumbnail and plain.max_height is None
    audio = MediaOptions.from_request(make(audio_only=True))
    assert (audio.container, audio.requested_quality, audio.audio_only) == ("m4a", "audio", True)
    assert MediaOptions.from_request(make(audio_only=True, audio_format="ogg")).extension == "ogg"
    capped = MediaOptions.from_request(make(max_resolution="720", format="mkv"))
    assert (capped.max_height, capped.requested_quality, capped.container) == (720, "720p", "mkv")
    subs = MediaOptions.from_request(make(download_subtitles=True))
    assert subs.subtitle_languages == ("en",)  # the default language


def test_quality_labels() -> None:
    assert video_quality_label(720, 1280) == "720p"  # portrait: the short side
    assert video_quality_label(1920, 1080) == "1080p"
    assert video_quality_label(None, 360) is None
    assert audio_quality(128_000) == "128k" and audio_quality(None) == "audio"


# -- quality presets -------------------------------------------------------------------------------------


def test_presets_cover_every_encoder_and_order_quality() -> None:
    order = ["highest", "high", "medium", "low", "lowest"]
    assert list(QUALITY_PRESETS) == order == list(get_args(QualityPreset))
    for encoder in (enc.encoder for enc in VIDEO_ENCODERS.values()):
        crfs = [QUALITY_PRESETS[p][encoder][0] for p in order]
        assert crfs == sorted(crfs) and all(0 <= c <= 63 for c in crfs)  # lower CRF = higher quality
    assert encoder_settings("libx264", 23, "medium") == encoder_settings("libx264", 23, None)


@pytest.mark.parametrize("crf", [0, 18, 51])
def test_preset_overrides_crf(crf: int) -> None:
    assert encoder_settings("libx264", crf, None) == (crf, "veryfast")
    assert encoder_settings("libx264", crf, "highest") == (17, "slow")
    assert encoder_settings("libvpx-vp9", crf, "lowest") == (48, "realtime:8")


# -- ffmpeg plans ----------------------------------------------------------------------------------------

MP4 = "mov,mp4,m4a,3gp,3g2,mj2"


def src(vcodec: str | None = "h264", acodec: str = "aac", name: str = "in.mp4", fmt: str = MP4) -> MediaInfo:
    streams = [StreamInfo(0, "video", vcodec, width=640, height=360)] if vcodec else []
    streams.append(StreamInfo(len(streams), "audio", acodec, channels=2, bit_rate=128_000))
    return MediaInfo(Path("/job") / name, 4.0, tuple(streams), fmt, "isom")


@pytest.mark.parametrize(
    ("container", "acodec", "encoder", "codec", "muxer"),
    [
        ("m4a", "aac", "copy", "aac", "ipod"),
        ("m4a", "opus", "aac", "aac", "ipod"),
        ("mp3", "aac", "libmp3lame", "mp3", "mp3"),
        ("mp3", "mp3", "copy", "mp3", "mp3"),
        ("ogg", "opus", "libvorbis", "vorbis", "ogg"),
        ("ogg", "vorbis", "copy", "vorbis", "ogg"),
        ("opus", "opus", "copy", "opus", "opus"),
        ("opus", "aac", "libopus", "opus", "opus"),
    ],
)
def test_audio_containers_drop_video(
    container: Any, acodec: str, encoder: str, codec: str, muxer: str
) -> None:
    plan = plan_mux([src("h264", acodec)], container=container, audio_bitrate="128k")
    assert plan.video is None and plan.audio is not None
    assert (plan.audio.encoder, plan.audio.codec) == (encoder, codec)
    assert plan.needs_work  # the video has to go
    args = build_args(plan, "/job/out", "ffmpeg")
    assert args[args.index("-f") + 1] == muxer
    assert "-c:v" not in args and args.count("-map") == 1
    assert ("-b:a" in args) == (encoder != "copy")


def test_audio_container_needs_audio() -> None:
    video_only = MediaInfo(Path("/job/v.mp4"), 4.0, (StreamInfo(0, "video", "h264"),), MP4, "isom")
    with pytest.raises(MuxError, match="no audio stream") as info:
        plan_mux([video_only], container="mp3")
    assert info.value.kind == "invalid_media"


def test_audio_only_download_already_right_skips_ffmpeg() -> None:
    m4a = src(None, "aac", name="media.1.m4a")
    assert detect_container(m4a) == "m4a"
    assert not plan_mux([m4a], container="m4a").needs_work
    assert plan_mux([m4a], container="mp4").needs_work  # the extension follows the container


@pytest.mark.parametrize(
    ("fmt", "name", "want"),
    [("mp3", "a.mp3", "mp3"), ("ogg", "a.ogg", "ogg"), ("ogg", "a.opus", "opus"), (MP4, "a.m4a", "m4a")],
)
def test_detect_audio_containers(fmt: str, name: str, want: str) -> None:
    assert detect_container(src(None, "aac", name=name, fmt=fmt)) == want


def test_clip_plan_is_exact_and_timed() -> None:
    plan = plan_mux([src()], container="mp4", clip=(1.0, 2.5))
    assert plan.video is not None and plan.video.encoder == "libx264"  # copy cannot cut exactly
    assert plan.audio is not None and plan.audio.copied
    assert plan.duration == 1.5 and plan.needs_work
    assert any("frame-accurately" in n for n in plan.notes)
    args = build_args(plan, "/job/out.mp4", "ffmpeg")
    i = args.index("-i")
    assert args[i - 2 : i] == ["-ss", "1.000"] or args[i - 4 : i - 2] == ["-ss", "1.000"]
    assert args[args.index("-t") + 1] == "1.500"
    assert args.index("-t") > i  # an output option: the length of the result


def test_clip_plan_variants() -> None:
    to_end = plan_mux([src()], container="mkv", clip=(1.0, None))
    assert to_end.duration == 3.0
    assert "-t" not in build_args(to_end, "/o.mkv", "ffmpeg")
    head = plan_mux([src()], container="mp4", clip=(0.0, 10.0))  # past the end: the rest of it
    assert head.duration == 4.0
    assert "-ss" not in build_args(head, "/o.mp4", "ffmpeg")
    audio = plan_mux([src()], container="m4a", clip=(0.5, 1.0))
    assert audio.video is None and audio.duration == 0.5
    with pytest.raises(MuxError, match=r"starts at 4 s but the media is only 4.0 s long") as info:
        plan_mux([src()], container="mp4", clip=(4.0, None))
    assert info.value.kind == "clip_out_of_range"


@pytest.mark.parametrize(
    ("vcodec", "preset", "want"),
    [
        ("h264", "highest", {"crf:v": "17", "preset:v": "slow"}),
        ("h264", "lowest", {"crf:v": "35", "preset:v": "veryfast"}),
        ("h265", "high", {"crf:v": "24", "preset:v": "medium"}),
        ("vp9", "highest", {"crf:v": "20", "deadline:v": "good", "cpu-used:v": "2", "b:v": "0"}),
        ("vp9", None, {"crf:v": "40", "deadline:v": "realtime", "cpu-used:v": "8"}),
    ],
)
def test_quality_preset_in_the_plan(vcodec: Any, preset: str | None, want: dict[str, str]) -> None:
    plan = plan_mux([src()], container="mkv", video_codec=vcodec, crf=40, quality=preset)
    assert plan.video is not None
    assert dict(plan.video.options).items() >= want.items()


# -- yt-dlp parameters -----------------------------------------------------------------------------------


def opts(**kw: Any) -> MediaOptions:
    return MediaOptions.from_request(make(**kw))


def test_format_selection() -> None:
    assert format_selection() == {"format": "bv,ba/b"}
    assert format_selection(opts()) == {"format": "bv,ba/b"}
    # the cap ranks by the shorter side and falls back above it (recipe section 9)
    assert format_selection(opts(max_resolution="480")) == {"format": "bv,ba/b", "format_sort": ["res:480"]}
    assert format_selection(opts(), live=True) == {"format": "bv*+ba/b"}
    for fmt, codec in (("m4a", "aac"), ("mp3", "mp3"), ("ogg", "vorbis"), ("opus", "opus")):
        assert format_selection(opts(audio_only=True, audio_format=fmt)) == {
            "format": "ba/b",
            "format_sort": [f"acodec:{codec}"],
        }


def test_live_params() -> None:
    live = opts(live_recording=True, live_from_start=True, max_duration=30)
    assert option_params(live, live=True) == {
        "format": "bv*+ba/b",
        "live_from_start": True,
        "external_downloader_args": {"ffmpeg_o": ["-t", "30"]},
    }
    # not live after all: nothing to cap; without live_recording nothing live at all
    assert "external_downloader_args" not in option_params(live, live=False)
    assert option_params(opts(), live=True) == {"format": "bv*+ba/b"}


def test_download_params_carry_the_options() -> None:
    params = download_params(Path("/job"), None, lambda d: None, options=opts(max_resolution="720"))
    assert params["format_sort"] == ["res:720"] and params["format"] == "bv,ba/b"
    assert params["outtmpl"] == {"default": "media.%(format_id)s.%(ext)s"}


def test_side_params_share_the_network_settings_only() -> None:
    download = download_params(Path("/job"), None, lambda d: None, options=opts(max_resolution="720"))
    download["proxy"] = "http://127.0.0.1:9"
    side = side_params(download, opts(download_subtitles=True, download_thumbnail=True))
    assert side["proxy"] == "http://127.0.0.1:9" and side["paths"] == download["paths"]
    assert side["socket_timeout"] == download["socket_timeout"]
    assert "progress_hooks" not in side and "format_sort" not in side
    assert side["skip_download"] is True and side["outtmpl"] == {"default": "side.%(ext)s"}
    assert side["writesubtitles"] is True and side["subtitleslangs"] == ["en"]
    assert side["writethumbnail"] is True
    only_thumb = side_params(base_params(Path("/job"), None), opts(download_thumbnail=True))
    assert only_thumb["writesubtitles"] is False


def test_side_keys_share_the_media_stem() -> None:
    files = SideFiles((("en", Path("/j/side.en.vtt")), ("de", Path("/j/side.de.SRT"))), Path("/j/side.jpg"))
    assert side_keys("a/b/talk.mp4", files) == [
        ("subtitle", Path("/j/side.en.vtt"), "a/b/talk.en.vtt"),
        ("subtitle", Path("/j/side.de.SRT"), "a/b/talk.de.srt"),
        ("thumbnail", Path("/j/side.jpg"), "a/b/talk.jpg"),
    ]
    assert side_keys("x.y.m4a", SideFiles()) == []
    assert side_keys("x.y.m4a", SideFiles(thumbnail=Path("/j/side.webp"))) == [
        ("thumbnail", Path("/j/side.webp"), "x.y.webp")
    ]


# -- checks after resolving ------------------------------------------------------------------------------


def test_check_resolved() -> None:
    live_info = {"is_live": True, "live_status": "is_live"}
    with pytest.raises(ResolveError) as info:
        check_resolved(live_info, opts())
    assert info.value.kind == "live_stream" and outcome_for("live_stream").status is Status.SKIPPED
    check_resolved(live_info, opts(live_recording=True))
    check_resolved(live_info, None)
    with pytest.raises(ResolveError, match="starts at 10 s but the media is only 4 s long") as info:
        check_resolved({"duration": 4}, opts(clip_start=10))
    assert info.value.kind == "clip_out_of_range"
    check_resolved({"duration": None}, opts(clip_start=10))  # unknown yet: the muxer checks


def test_wait_poll_seconds() -> None:
    assert wait_poll_seconds(20, 15) == 2.0
    assert wait_poll_seconds(5, 5) == 1.0  # at least a second
    assert wait_poll_seconds(3600, 3000) == 60.0  # at most a minute
    assert wait_poll_seconds(3600, 0.5) == 0.5  # never past the deadline


def expected(msg: str) -> DownloadError:
    err = ExtractorError(msg, expected=True)
    return DownloadError(f"ERROR: [x] id: {msg}", err.exc_info if err.exc_info[0] else (type(err), err, None))


@pytest.mark.parametrize(
    ("msg", "kind", "status"),
    [
        ("This live event will begin in 3 hours.", "upcoming", Status.WARNING),
        ("Premieres in 2 days", "upcoming", Status.WARNING),
        (
            "--live-from-start is passed, but there are no formats that can be downloaded from the start. "
            "If you want to download from the current time, use --no-live-from-start",
            "no_live_from_start",
            Status.FAILED,
        ),
    ],
)
def test_live_errors_classified(msg: str, kind: str, status: Status) -> None:
    exc = expected(msg)
    assert classify(exc) == kind
    mapped = map_error(exc, resolving=True)
    assert mapped.kind == kind and outcome_for(kind).status is status
    assert "--" not in mapped.message and mapped.message == outcome_for(kind).message


# -- metadata projection ---------------------------------------------------------------------------------

RICH: dict[str, Any] = {
    "id": "abc",
    "title": "  A title  ",
    "duration": 12.5,
    "extractor": "enginetest",
    "extractor_key": "EngineTest",
    "uploader": "Someone",
    "description": "About it",
    "view_count": 10,
    "like_count": 2,
    "upload_date": "20240102",
    "thumbnail": "https://user:s3cr3t@cdn.example.com:8443/t.jpg?sig=s3cr3t#frag",
    "http_headers": {"Cookie": "s3cr3t", "Authorization": "Bearer s3cr3t"},
    "cookies": "session=s3cr3t",
    "url": "https://cdn.example.com/v.mp4?token=s3cr3t",
    "filepath": "/srv/private/s3cr3t.mp4",
    "_filename": "/srv/private/s3cr3t.mp4",
    "subtitles": {"en": [{"url": "https://x/s.vtt?sig=s3cr3t"}], "../../x": [], "de": []},
    "formats": [
        {"format_id": "a", "vcodec": "none", "acodec": "mp4a", "filesize": 100, "url": "https://x?t=s3cr3t"},
        {"format_id": "v1", "vcodec": "avc1", "acodec": "none", "width": 426, "height": 240, "filesize": 400},
        {
            "format_id": "v2",
            "vcodec": "avc1",
            "acodec": "none",
            "width": 720,
            "height": 1280,
            "filesize": 900,
        },
        {"format_id": "v3", "vcodec": "avc1", "acodec": "none", "width": 480, "height": 854},
    ],
}


def test_metadata_projection() -> None:
    formats = RICH["formats"]
    meta = project(RICH, [formats[2], formats[0]])
    assert meta.to_api() == {
        "title": "A title",
        "duration": 12.5,
        "width": 720,
        "height": 1280,
        "extractor": "enginetest",
        "uploader": "Someone",
        "thumbnail": "https://cdn.example.com:8443/t.jpg",
        "description": "About it",
        "view_count": 10,
        "like_count": 2,
        "upload_date": "20240102",
        "filesize_approx": 1000,
        "qualities": ["720p", "480p", "240p"],
        "subtitle_languages": ["de", "en"],
    }
    assert "s3cr3t" not in json.dumps(meta.to_api())


def test_metadata_projection_of_poor_or_odd_info() -> None:
    assert project({}).to_api() == {"qualities": [], "subtitle_languages": []}
    odd = {
        "title": 5,
        "duration": -3,
        "view_count": True,
        "like_count": 1.5,
        "upload_date": "2024-01-02",
        "thumbnail": "file:///etc/passwd",
        "subtitles": ["en"],
        "width": 640,
        "height": 360,
        "tbr": 1000,
    }
    assert project(odd).to_api() == {
        "width": 640,
        "height": 360,
        "qualities": ["360p"],
        "subtitle_languages": [],
    }
    # no sizes known: estimated from the bitrate of what would be fetched
    assert project({"duration": 8}, [{"tbr": 1000}]).filesize_approx == 1_000_000


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=30,
)


@given(extra=st.dictionaries(st.text(max_size=15), _JSON, max_size=12))
def test_metadata_projection_is_an_allowlist(extra: dict[str, Any]) -> None:
    secret = {"http_headers": {"Cookie": "s3cr3t"}, "cookies": "s3cr3t", "filepath": "/s3cr3t"}
    meta = project({**extra, **secret, "formats": [{"url": "https://x/s3cr3t", "http_headers": secret}]})
    dumped = meta.to_api()
    assert set(dumped) <= set(MediaMetadata.model_fields)
    assert "s3cr3t" not in json.dumps(dumped)
