"""A refused request on the command line names flags, not API fields (tornado_engine.cli_errors)."""

from __future__ import annotations

from typing import Any

import pytest

from tornado_engine.cli import main
from tornado_engine.cli_errors import REQUEST_FLAGS, flag_message
from tornado_engine.errors import InvalidRequest
from tornado_engine.models import JobRequest

URL = "http://127.0.0.1:9/x.mp4"


def _refusal(**fields: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        JobRequest(url=URL, **fields)
    return caught.value


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"audio_format": "mp3"}, "--audio-format needs --audio-only"),
        (
            {"audio_only": True, "format": "mkv"},
            "--format is a video container; with --audio-only choose --audio-format (m4a, mp3, ogg, opus)",
        ),
        ({"audio_only": True, "video_codec": "h264"}, "--video-codec does not apply to --audio-only"),
        (
            {"audio_only": True, "audio_format": "mp3", "audio_codec": "aac"},
            "--audio-format mp3 holds mp3 audio; use --audio-codec copy or mp3",
        ),
        ({"audio_only": True, "max_resolution": "720"}, "--max-resolution does not apply to --audio-only"),
        (
            {"quality_preset": "high"},
            "--quality-preset needs --video-codec (h264, h265 or vp9); copy does not re-encode",
        ),
        (
            {"clip_start": "10", "clip_end": "5"},
            "--clip-end must be after --clip-start (got start 10 s, end 5 s)",
        ),
        ({"subtitle_languages": ["en"]}, "--subtitle-language needs --subtitles"),
        ({"live_from_start": True}, "--live-from-start needs --live"),
        ({"max_duration": 5}, "--max-duration needs --live"),
        (
            {"live_recording": True, "clip_start": "1"},
            "--clip-start/--clip-end do not apply to --live; use --max-duration",
        ),
        (
            {"format": "webm", "video_codec": "h264"},
            "--video-codec: webm cannot hold h264 video; use copy or vp9, or --format mkv",
        ),
        ({"folder": "../x"}, "--folder must not contain '..'"),
        ({"video_quality": 99}, "--video-quality must be an integer CRF from 0 to 51 (got 99)"),
        ({"clip_start": "abc"}, "--clip-start must be HH:MM:SS, MM:SS or seconds (got 'abc')"),
        (
            {"download_subtitles": True, "subtitle_languages": ["all"]},
            "--subtitle-language: 'all' is not a language code such as 'en' or 'pt-BR'",
        ),
    ],
)
def test_request_refusals_name_flags(fields: dict[str, Any], said: str) -> None:
    refused = _refusal(**fields)
    assert flag_message(refused.message, refused.field) == said


def test_a_url_refusal_stays_as_it_was() -> None:
    with pytest.raises(InvalidRequest) as caught:
        JobRequest(url="ftp://example.com/x")
    assert flag_message(caught.value.message, caught.value.field) == "URL must start with http:// or https://"


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("storage URL scheme 'ftp' is not supported (use s3, gs, az, oss or file)", "storage"),
        ("a storage folder that cannot be written: /proc/nope", None),
        ("status must be one of: Pending, Processing", "status"),
    ],
)
def test_other_refusals_are_left_alone(message: str, field: str | None) -> None:
    assert flag_message(message, field) == message


def test_the_table_names_request_fields_and_flags_run_has(capsys: pytest.CaptureFixture[str]) -> None:
    assert set(REQUEST_FLAGS) <= set(JobRequest.model_fields)
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    usage = capsys.readouterr().out
    flags = [flag for flag, _ in REQUEST_FLAGS.values() if flag.startswith("--")]
    assert [flag for flag in flags if f"{flag} " not in usage and f"{flag}\n" not in usage] == []
