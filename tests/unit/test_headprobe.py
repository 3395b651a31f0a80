"""Which resolved URLs get a head probe, and how its findings fill in the metadata (pure, no I/O)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tornado_engine.headprobe import HeadProbe, direct_file, enrich
from tornado_engine.metadata import project
from tornado_engine.probe import MediaInfo, StreamInfo

URL = "http://127.0.0.1:8000/clip.mp4"


def generic(**fmt: Any) -> dict[str, Any]:
    """What yt-dlp's generic extractor gives for a plain file: one format, nothing about the picture."""
    headers = {"User-Agent": "UA", "X-Bad": 3}
    only = {"format_id": "mp4", "url": URL, "ext": "mp4", "http_headers": headers, **fmt}
    return {"title": "clip", "extractor": "generic", "direct": True, "url": URL, "formats": [only]}


def probed(*streams: StreamInfo, size: int | None = 1000, duration: float | None = 12.5) -> HeadProbe:
    return HeadProbe(MediaInfo(Path("/tmp/head"), duration, streams, "mov,mp4"), size, 4096)


def test_only_a_direct_file_without_a_picture_is_probed() -> None:
    assert direct_file(generic()) == (URL, {"User-Agent": "UA"})
    assert direct_file(generic(height=720)) is None  # yt-dlp already knows
    assert direct_file({**generic(), "direct": False}) is None  # a page's formats
    assert direct_file(generic(url="ftp://127.0.0.1/x.mp4")) is None
    two = generic()
    two["formats"] = two["formats"] * 2
    assert direct_file(two) is None


def test_the_probe_fills_in_duration_size_picture_and_qualities() -> None:
    video = StreamInfo(0, "video", "h264", width=1280, height=720)
    cover = StreamInfo(2, "video", "mjpeg", width=3000, height=3000, attached_pic=True)
    info = enrich(generic(), probed(video, StreamInfo(1, "audio", "aac"), cover))
    meta = project(info).to_api()
    assert (meta["width"], meta["height"], meta["duration"]) == (1280, 720, 12.5)
    assert (meta["filesize_approx"], meta["qualities"], meta["title"]) == (1000, ["720p"], "clip")
    assert info["formats"][0]["vcodec"] == "h264" and info["formats"][0]["acodec"] == "aac"


def test_an_audio_file_has_a_duration_and_no_qualities() -> None:
    meta = project(enrich(generic(), probed(StreamInfo(0, "audio", "mp3"), size=None))).to_api()
    assert meta["duration"] == 12.5 and meta["qualities"] == []
    assert "width" not in meta and "filesize_approx" not in meta


def test_a_duration_yt_dlp_knew_is_kept() -> None:
    info = enrich({**generic(), "duration": 9.0}, probed(StreamInfo(0, "audio", "mp3")))
    assert info["duration"] == 9.0
