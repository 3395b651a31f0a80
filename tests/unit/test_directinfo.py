"""The in-process resolve's pure parts: which URLs it may take, which answers it leaves to yt-dlp, and
its reading of ``Last-Modified`` against yt-dlp's own (no network, no event loop)."""

from __future__ import annotations

import email.utils

import pytest
from yt_dlp.utils import unified_timestamp

from tornado_engine.options import MediaOptions
from tornado_engine.pipeline.directinfo import direct_info, http_timestamp, may_resolve_directly
from tornado_engine.sources.cookies import CookieSet
from tornado_engine.sources.settings import JobSources

URL = "http://127.0.0.1:8000/clips/clip.mp4"
MP4 = {"content-type": "video/mp4", "last-modified": "Sat, 05 Dec 2026 10:26:16 GMT"}


def test_http_dates_read_as_ytdlp_reads_them() -> None:
    # a spread of instants across 1970-2100, leap days and the ends of months and years included
    stamps = [0, 951782400, 951868799, 1709164800, 1796466376, 4102444799, *range(10**8, 4 * 10**9, 97654321)]
    for stamp in stamps:
        value = email.utils.formatdate(stamp, usegmt=True)
        assert http_timestamp(value) == unified_timestamp(value) == stamp, value
    wrong_weekday = "Mon, 05 Dec 2026 10:26:16 GMT"  # both ignore the day's name
    assert http_timestamp(wrong_weekday) == unified_timestamp(wrong_weekday)
    for other in (
        "Saturday, 05-Dec-26 10:26:16 GMT",
        "Sat Dec  5 10:26:16 2026",
        "2026-12-05T10:26:16Z",
        "x",
    ):
        assert http_timestamp(other) == unified_timestamp(other), other  # yt-dlp's reading, as before
    assert http_timestamp(None) is None


@pytest.mark.parametrize(
    "url",
    [
        URL,
        "https://cdn.example.com/a/b.webm?sig=abc%2F&t=1",
        "http://example.com:8080/x.MP3",
        "http://h/a%20b.m4a",
    ],
)
def test_plain_media_urls_may_be_resolved_here(url: str) -> None:
    assert may_resolve_directly(url, None, JobSources())
    assert may_resolve_directly(url, MediaOptions(container="mp3", audio_only=True), None)


@pytest.mark.parametrize(
    "url",
    [
        "http://h/list.m3u8", "http://h/manifest.mpd", "http://h/page", "http://h/a.mp4#t=1",
        "http://user:pw@h/a.mp4", "http://h/a b.mp4", "http://h/caf\u00e9.mp4", "ftp://h/a.mp4",
        "http://h/a.mp4#__youtubedl_smuggle=x",
    ],
)  # fmt: skip
def test_other_urls_are_left_to_ytdlp(url: str) -> None:
    assert not may_resolve_directly(url, None, JobSources())


def test_what_only_ytdlp_requests_carry_is_left_to_it() -> None:
    live = MediaOptions(container="mp4", live_recording=True)
    assert not may_resolve_directly(URL, live, None)
    cookies = CookieSet("secret", domains=("127.0.0.1",))
    for sources in (
        JobSources(cookies=cookies),
        JobSources(impersonate="chrome"),
        JobSources(extractor_args={"generic": {"impersonate": ["chrome"]}}),
    ):
        assert not may_resolve_directly(URL, None, sources)


def test_answers_only_ytdlp_can_read_give_none() -> None:
    assert direct_info(URL, 200, MP4) is not None
    for status in (206, 301, 404, 429, 500):
        assert direct_info(URL, status, MP4) is None
    assert direct_info(URL, 200, {**MP4, "set-cookie": "a=b"}) is None  # yt-dlp's jar would keep it
    for kind in ("application/octet-stream", "text/html", "audio/x-mpegurl", "application/ogg", ""):
        assert direct_info(URL, 200, {**MP4, "content-type": kind}) is None, kind


def test_the_info_of_a_plain_file() -> None:
    info = direct_info(URL, 200, {"content-type": "audio/mpeg"})
    assert info is not None
    assert (info["id"], info["title"], info["extractor_key"]) == ("clip", "clip", "Generic")
    assert "timestamp" not in info and "upload_date" not in info  # no Last-Modified: none, as yt-dlp
    assert info["formats"][0]["vcodec"] == "none" and info["tornado_selected_format_ids"] == ["mpeg"]
