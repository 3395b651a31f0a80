"""What yt-dlp makes of a plain media file's URL, built in-process from one response head (pure: no I/O).

For a URL naming a media file that no site extractor claims, yt-dlp's generic extractor sends one GET,
reads the response head (``Content-Type``, ``Last-Modified``) and returns a single "direct" format, which
``process_video_result`` fills in (protocol, extensions, request headers, the format line) and the
resolver sanitizes. :func:`direct_info` builds that same sanitized dict from the same response head,
with yt-dlp's own helpers, in the order yt-dlp fills it: ~0.2 ms instead of yt-dlp's ~8 ms of CPU
(a ``YoutubeDL``, its request stack, the network guard's relay, format processing and sorting).

Anything this does not reproduce exactly returns None, and yt-dlp resolves the URL as before: a status
other than 200, a redirect, a cookie set by the source, a type that is not plain audio or video (a
playlist, ``application/octet-stream``...), an extension yt-dlp must detect from the body.
``tests/integration/test_direct_resolve.py`` compares both on the test server's media.
"""

from __future__ import annotations

import calendar
import email.utils
import os
import re
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

from ..options import MediaOptions
from ..sources.settings import JobSources
from ..ytdlp import format_selection
from .playlist import names_a_media_file
from .resolver import SELECTED_KEY

__all__ = ["GENERIC_KEY", "direct_info", "http_timestamp", "may_resolve_directly", "request_headers"]

GENERIC_KEY = "Generic"  # yt-dlp's generic extractor's key: the one that reads plain files
# with a single format, these pick it whether it is audio or video (bv/ba find nothing, b finds it;
# for audio, ba finds it): the selection is the one format, as yt-dlp's selector would say
_SINGLE_FORMAT_SPECS = frozenset({"bv,ba/b", "ba/b"})
# generic.py's direct-link test, less what it sends on to manifest parsers (mpegurl, f4m, ogg)
_MEDIA_TYPE = re.compile(r"(?P<type>audio|video)/(?P<format_id>[^;\s]+)")
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.\-]+(:\d{1,5})?/[A-Za-z0-9._~!$&'()*+,;=:@/%-]*(\?[^\s#]*)?")
_FORMAT_ID_UNSAFE = re.compile(r"[\s,/+\[\]()]")
_CODEC_EXTENSIONS = ("aac", "opus", "mp3", "flac", "vorbis")  # process_video_result's acodec from ext
# HTTP's preferred date (RFC 9110 IMF-fixdate): read directly; yt-dlp's unified_timestamp tries ~90
# formats with strptime (~0.7 ms) and gives the same number for it (tested); any other form goes there
_IMF_FIXDATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    r"\d{2}:\d{2}:\d{2} GMT"
)


def may_resolve_directly(url: str, options: MediaOptions | None, sources: JobSources | None) -> bool:
    """Whether :func:`direct_info` may stand in for yt-dlp's resolve of ``url`` (pure; the extractor
    check, which needs yt-dlp's registry, is the caller's).

    Only a plain ``http(s)`` URL naming a media file (no credentials, fragment or characters a client
    would re-encode), for a format choice that takes the one format, without what only yt-dlp's own
    requests carry (cookies, impersonation, extractor arguments) or a live recording."""
    if not _PLAIN_URL.fullmatch(url) or not names_a_media_file(url):
        return False
    if options is not None and options.live_recording:
        return False
    if format_selection(options)["format"] not in _SINGLE_FORMAT_SPECS:
        return False
    return sources is None or not (sources.cookies or sources.impersonate or sources.extractor_args)


def request_headers() -> dict[str, str]:
    """The headers yt-dlp sends by default (its ``std_headers``, one random User-Agent per process)."""
    from yt_dlp.utils.networking import std_headers

    return dict(std_headers)


def http_timestamp(value: str | None) -> int | None:
    """``Last-Modified`` as yt-dlp's ``unified_timestamp`` reads it (seconds since the epoch, UTC)."""
    if value is not None and _IMF_FIXDATE.fullmatch(value):
        parsed = email.utils.parsedate(value)
        if parsed is not None:
            return calendar.timegm(parsed)
    from yt_dlp.utils import unified_timestamp

    stamp: int | None = unified_timestamp(value)
    return stamp


def direct_info(url: str, status: int, headers: Mapping[str, str]) -> dict[str, Any] | None:
    """The resolver's info for ``url`` from the head of a plain GET of it (``headers`` with lower-case
    names), exactly as yt-dlp's resolve gives it; None where only yt-dlp can say."""
    if status != 200 or "set-cookie" in headers or "location" in headers:
        return None
    match = _MEDIA_TYPE.match(headers.get("content-type", "").lower())
    if match is None or match["format_id"].endswith("mpegurl") or match["format_id"] == "f4m":
        return None
    from yt_dlp.extractor.common import InfoExtractor
    from yt_dlp.utils import determine_ext, url_basename

    ext = determine_ext(url, default_ext=None)
    video_id = InfoExtractor._generic_id(url)
    title = urllib.parse.unquote(os.path.splitext(url_basename(url))[0])
    if not ext or ext in ("m3u8", "f4m") or not video_id or not title:
        return None
    raw: dict[str, Any] = {
        "id": video_id,
        "title": title,
        "timestamp": http_timestamp(headers.get("last-modified")),
        "direct": True,
        "formats": [
            {
                "format_id": match["format_id"],
                "url": url,
                "ext": ext,
                "vcodec": "none" if match["type"] == "audio" else None,
            }
        ],
        "subtitles": {},
        "http_headers": None,
    }
    return _processed(raw, url)


def _processed(info: dict[str, Any], url: str) -> dict[str, Any]:
    """What ``extract_info`` adds to the extractor's result, then ``sanitize_info``, for one format."""
    from yt_dlp import YoutubeDL
    from yt_dlp.utils import get_domain, strftime_or_none, url_basename

    info.update(
        webpage_url=url,
        original_url=url,
        webpage_url_basename=url_basename(url),
        webpage_url_domain=get_domain(url),
        extractor="generic",
        extractor_key=GENERIC_KEY,
        playlist=None,
        playlist_index=None,
        display_id=info["id"],
        fulltitle=info["title"],
    )
    if info["timestamp"] is not None:
        info["upload_date"] = strftime_or_none(info["timestamp"])
    info["formats"] = [fmt := _format(info["formats"][0])]
    info["epoch"] = int(time.time())
    info.update(fmt)  # yt-dlp's "best format" fields on the info, for backwards compatibility
    clean: dict[str, Any] = YoutubeDL.sanitize_info(info, remove_private_keys=True)
    clean[SELECTED_KEY] = [fmt["format_id"]]
    return clean


def _format(fmt: dict[str, Any]) -> dict[str, Any]:
    """``process_video_result``'s fill-in of one format (no size, bitrate or picture size known)."""
    from yt_dlp import YoutubeDL
    from yt_dlp.utils import sanitize_url
    from yt_dlp.utils._utils import FormatSorter
    from yt_dlp.utils.networking import HTTPHeaderDict, clean_headers

    fmt["url"] = sanitize_url(fmt["url"])
    FormatSorter._fill_sorting_fields(fmt)
    if fmt["ext"] in _CODEC_EXTENSIONS and fmt.get("acodec") is None:
        fmt["acodec"] = fmt["ext"]
    if fmt.get("resolution") is None:
        fmt["resolution"] = YoutubeDL.format_resolution(fmt, default=None)
    if fmt.get("dynamic_range") is None and fmt.get("vcodec") != "none":
        fmt["dynamic_range"] = "SDR"
    headers = HTTPHeaderDict(request_headers())
    clean_headers(headers)
    fmt["http_headers"] = headers
    format_id = _FORMAT_ID_UNSAFE.sub("_", fmt["format_id"])
    common = set().union(*YoutubeDL._format_selection_exts.values())
    if format_id != fmt["ext"] and format_id in common:
        format_id = f"f{format_id}"  # yt-dlp keeps a format id from reading as an extension
    fmt["format_id"] = format_id
    fmt["format"] = f"{format_id} - {YoutubeDL.format_resolution(fmt)}"
    return fmt
