"""The container/codec vocabulary: the tables agree with each other, and impossible pairs are refused."""

from __future__ import annotations

import pytest

from tornado_engine.codecs import (
    AUDIO_CHOICES,
    AUDIO_CONTAINERS,
    AUDIO_ENCODERS,
    AUDIO_FALLBACK,
    AUDIO_FORMATS,
    CONTAINERS,
    MUXERS,
    VIDEO_CHOICES,
    VIDEO_CONTAINERS,
    VIDEO_ENCODERS,
    VIDEO_FALLBACK,
    check_combination,
    holds_audio,
    holds_video,
    video_tag,
)
from tornado_engine.errors import InvalidRequest


@pytest.mark.parametrize(
    ("container", "vcodec", "acodec", "field"),
    [
        ("webm", "h264", "copy", "video_codec"),
        ("webm", "h265", "opus", "video_codec"),
        ("webm", "copy", "aac", "audio_codec"),
        ("webm", "vp9", "mp3", "audio_codec"),
        ("mov", "vp9", "copy", "video_codec"),
        ("mov", "copy", "opus", "audio_codec"),
        ("avi", "copy", "copy", "format"),
        ("mp4", "-vf", "copy", "video_codec"),
        ("mp4", "copy", "vorbis ", "audio_codec"),
    ],
)
def test_check_combination_refuses(container: str, vcodec: str, acodec: str, field: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        check_combination(container, vcodec, acodec)
    assert info.value.field == field


@pytest.mark.parametrize("container", ["mp4", "mkv"])
@pytest.mark.parametrize("vcodec", VIDEO_CHOICES)
@pytest.mark.parametrize("acodec", AUDIO_CHOICES)
def test_check_combination_accepts(container: str, vcodec: str, acodec: str) -> None:
    check_combination(container, vcodec, acodec)


def test_refusals_name_what_fits() -> None:
    with pytest.raises(
        InvalidRequest, match=r"^webm cannot hold h264 video; use copy or vp9, or choose mkv$"
    ):
        check_combination("webm", "h264", "copy")
    with pytest.raises(InvalidRequest, match=r"^mov cannot hold opus audio; use copy or aac or mp3, or"):
        check_combination("mov", "copy", "opus")
    with pytest.raises(
        InvalidRequest, match=r"^Format must be one of: mp4, mkv, webm, mov, m4a, mp3, ogg, opus"
    ):
        check_combination("avi", "copy", "copy")


def test_every_container_has_a_muxer_and_fallbacks_it_holds() -> None:
    assert set(MUXERS) == set(CONTAINERS) == set(AUDIO_FALLBACK)
    assert set(VIDEO_FALLBACK) == set(VIDEO_CONTAINERS)
    for container, choice in VIDEO_FALLBACK.items():
        assert holds_video(container, VIDEO_ENCODERS[choice].codec)
    for container, codec in AUDIO_FALLBACK.items():
        assert holds_audio(container, AUDIO_ENCODERS[codec].codec)


def test_every_request_choice_has_an_encoder() -> None:
    assert set(VIDEO_CHOICES) - {"copy"} == set(VIDEO_ENCODERS)
    assert set(AUDIO_CHOICES) - {"copy"} <= set(AUDIO_ENCODERS)


def test_audio_containers_hold_no_video_and_one_audio_codec() -> None:
    for container in AUDIO_CONTAINERS:
        assert not any(holds_video(container, enc.codec) for enc in VIDEO_ENCODERS.values())
        held = [enc.codec for enc in AUDIO_ENCODERS.values() if holds_audio(container, enc.codec)]
        assert held == [AUDIO_FORMATS[container].codec]


def test_audio_formats() -> None:
    assert AUDIO_FORMATS["m4a"].encoder == "aac" and AUDIO_FORMATS["m4a"].request_codec == "aac"
    assert AUDIO_FORMATS["ogg"].encoder == "libvorbis" and AUDIO_FORMATS["ogg"].request_codec is None
    assert (AUDIO_FORMATS["opus"].codec, AUDIO_FORMATS["opus"].encoder) == ("opus", "libopus")
    assert tuple(AUDIO_FORMATS) == AUDIO_CONTAINERS


def test_unknown_codecs_are_never_held() -> None:
    assert holds_video("mkv", "hevc") and not holds_video("mkv", "unknown")
    assert not holds_audio("mkv", "unknown")


@pytest.mark.parametrize(
    ("container", "codec", "tag"),
    [("mp4", "hevc", "hvc1"), ("mov", "hevc", "hvc1"), ("mkv", "hevc", None), ("mp4", "h264", None)],
)
def test_video_tag(container: str, codec: str, tag: str | None) -> None:
    assert video_tag(container, codec) == tag
