"""Reuse's pure parts: which request fields make the output, the keys, who wants reuse, side-file keys,
and the per-process map of downloads in flight."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tornado_engine.coalesce import InFlight
from tornado_engine.errors import InvalidRequest
from tornado_engine.models import Job, JobRequest
from tornado_engine.pipeline.reuse import side_copies
from tornado_engine.reuse import OTHER_FIELDS, OUTPUT_FIELDS, ReusePolicy, output_key, source_key, wants_reuse
from tornado_engine.states import Status

URL = "http://127.0.0.1:9/watch"

# for each field that makes the output, another valid value than the default (with what it needs)
CHANGED: dict[str, dict[str, Any]] = {
    "format": {"format": "mkv"},
    "video_codec": {"video_codec": "h264"},
    "audio_codec": {"audio_codec": "aac"},
    "audio_bitrate": {"audio_bitrate": "128k", "audio_codec": "aac"},
    "video_quality": {"video_quality": 30, "video_codec": "h264"},
    "audio_only": {"audio_only": True},
    "audio_format": {"audio_only": True, "audio_format": "mp3"},
    "max_resolution": {"max_resolution": "720"},
    "quality_preset": {"quality_preset": "low", "video_codec": "h264"},
    "clip_start": {"clip_start": 5},
    "clip_end": {"clip_end": 5},
    "download_subtitles": {"download_subtitles": True},
    "subtitle_languages": {"download_subtitles": True, "subtitle_languages": ["de"]},
    "download_thumbnail": {"download_thumbnail": True},
    "live_recording": {"live_recording": True},
    "live_from_start": {"live_recording": True, "live_from_start": True},
    "max_duration": {"live_recording": True, "max_duration": 60},
}
OTHER: dict[str, dict[str, Any]] = {
    "url": {"url": "http://127.0.0.1:9/other"},
    "filename": {"filename": "clip"},
    "folder": {"folder": "a/b"},
    "webhook_url": {"webhook_url": "http://127.0.0.1:9/hook"},
    "paused": {"paused": True},
    "enable_progress_webhook": {"enable_progress_webhook": True},
    "impersonate": {"impersonate": "chrome"},
    "limit_rate": {"limit_rate": "2M"},
    "reuse": {"reuse": True},
}


def test_every_request_field_is_either_output_or_not() -> None:
    assert not OUTPUT_FIELDS & OTHER_FIELDS
    assert set(JobRequest.model_fields) == OUTPUT_FIELDS | OTHER_FIELDS


def test_each_output_field_changes_the_output_key() -> None:
    assert set(CHANGED) == OUTPUT_FIELDS
    base = output_key(JobRequest(url=URL))
    keys = {name: output_key(JobRequest(url=URL, **fields)) for name, fields in CHANGED.items()}
    assert base not in keys.values()
    assert len(set(keys.values())) == len(keys)


def test_other_fields_leave_the_output_key() -> None:
    base = output_key(JobRequest(url=URL))
    for name, fields in OTHER.items():
        assert output_key(JobRequest(**{"url": URL, **fields})) == base, name
    assert len(base) == 32 and output_key(JobRequest(url=URL)) == base  # stable


def test_source_key_names_the_media_or_digests_the_page() -> None:
    youtube = {"extractor_key": "Youtube", "extractor": "youtube", "id": "dQw4w9WgXcQ"}
    assert source_key(youtube, "https://youtu.be/dQw4w9WgXcQ") == "youtube:dQw4w9WgXcQ"
    assert source_key(youtube, "https://www.youtube.com/watch?v=dQw4w9WgXcQ") == "youtube:dQw4w9WgXcQ"
    page = {"extractor_key": "HTML5MediaEmbed", "extractor": "html5", "id": "page-1"}
    one = source_key({**page, "webpage_url": "HTTP://Example.COM:80/a/page.html?x=1#top"}, URL)
    assert one == source_key({**page, "webpage_url": "http://user:pw@example.com/a/page.html?x=1"}, URL)
    assert one.startswith("url:") and "example" not in one
    assert one != source_key({**page, "webpage_url": "http://example.com/a/page.html?x=2"}, URL)
    assert one != source_key({**page, "webpage_url": "http://example.com:8080/a/page.html?x=1"}, URL)
    generic = {"extractor_key": "Generic", "id": "video"}  # the file's name: two sites' "video" differ
    assert source_key(generic, "http://a.test/video.mp4") != source_key(generic, "http://b.test/video.mp4")
    assert source_key({}, "http://a.test/v.mp4") == source_key({}, "http://A.test/v.mp4")


def test_who_wants_reuse() -> None:
    off, on = ReusePolicy(), ReusePolicy(default=True)
    assert not wants_reuse(JobRequest(url=URL), off) and wants_reuse(JobRequest(url=URL), on)
    assert wants_reuse(JobRequest(url=URL, reuse=True), off)
    assert not wants_reuse(JobRequest(url=URL, reuse=False), on)
    assert not wants_reuse(JobRequest(url=URL, reuse=True, live_recording=True), on)  # never a recording
    assert on.window_seconds == 7 * 24 * 3600
    with pytest.raises(ValueError, match="reuse_window"):
        ReusePolicy(window_seconds=0)


def test_reuse_field_and_record() -> None:
    with pytest.raises(InvalidRequest, match="reuse must be true or false") as caught:
        JobRequest(url=URL, reuse="yes")
    assert caught.value.field == "reuse"
    assert "reuse" not in JobRequest(url=URL).model_dump(exclude_none=True)  # old records read the same
    job = Job(id="j2", url=URL, request=JobRequest(url=URL, reuse=True), reused_from="j1")
    assert "reused_from" not in job.to_api()  # while it runs: TornadoAPI's base fields only
    job.status = Status.COMPLETED
    assert job.to_api()["reused_from"] == "j1"
    again = Job.from_record(job.to_record())
    assert (again.reused_from, again.request.reuse) == ("j1", True)


def test_side_copies_follow_the_new_name() -> None:
    sides = ["videos/a/clip.en.vtt", "videos/a/clip.jpg", "videos/other/x.vtt"]
    assert side_copies("videos/a/clip.mp4", "b/new.mkv", sides) == [
        ("subtitle", "videos/a/clip.en.vtt", "b/new.en.vtt"),
        ("thumbnail", "videos/a/clip.jpg", "b/new.jpg"),
    ]


async def test_in_flight_one_leader_per_file() -> None:
    flight = InFlight()
    same = ("owner", "youtube:x", "k")
    assert flight.lead_or_follow(same, "a") is None  # leads
    assert flight.lead_or_follow(same, "a") is None  # a retry of the leader still leads
    wait = flight.lead_or_follow(same, "b")
    assert wait is not None and not wait.done()
    assert flight.lead_or_follow(("other", "youtube:x", "k"), "c") is None  # another tenant's file
    flight.release("b")  # a follower ending changes nothing
    assert not wait.done()
    flight.release("a")
    await asyncio.wait_for(wait, 1)
    assert flight.lead_or_follow(same, "b") is None and len(flight) == 2


def test_cli_reuse_flag_on_run_and_submit() -> None:
    from tornado_engine.cli import _parser, _request_from

    for command in ("run", "submit"):
        asked = _request_from(_parser().parse_args([command, URL, "--reuse"]))
        assert asked.reuse is True, command
        assert _request_from(_parser().parse_args([command, URL])).reuse is None  # the engine's default
