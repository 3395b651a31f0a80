"""Which unprocessed extractor results the playlist probe settles without processing them (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from tornado_engine.pipeline.playlist import _single_video


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
