"""Which unprocessed extractor results the playlist probe settles without processing them (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from tornado_engine.pipeline.playlist import _single_video, names_a_media_file


@pytest.mark.parametrize(
    ("info", "single"),
    [
        ({"id": "clip", "url": "http://127.0.0.1/clip.mp4"}, True),  # no _type: a video
        ({"_type": "video", "formats": []}, True),
        (None, True),  # an extractor that returned nothing: not a playlist
        ({"_type": "playlist", "entries": []}, False),
        ({"_type": "multi_video", "entries": []}, False),
        ({"_type": "url", "url": "https://example.com/list"}, False),  # may lead to a playlist: follow
        ({"_type": "url_transparent", "url": "https://example.com/x"}, False),
        ({"_type": "compat_list", "entries": []}, False),
    ],
)
def test_only_a_single_video_skips_processing(info: Any, single: bool) -> None:
    assert _single_video(info) is single


@pytest.mark.parametrize(
    ("url", "direct"),
    [
        ("https://cdn.example.com/v/clip.mp4", True),
        ("https://cdn.example.com/v/clip.WEBM?token=x#t=3", True),
        ("https://example.com/a/episode.mp3", True),
        ("https://example.com/live/master.m3u8", False),  # a manifest: the probe judges it (bounds too)
        ("https://example.com/dash/stream.mpd", False),
        ("https://example.com/feed.xml", False),
        ("https://example.com/watch?v=clip.mp4", False),  # the name is in the query, not the path
        ("https://example.com/.mp4", False),
        ("https://example.com/channel/videos", False),
    ],
)
def test_a_url_naming_a_media_file_needs_no_playlist_probe(url: str, direct: bool) -> None:
    assert names_a_media_file(url) is direct
