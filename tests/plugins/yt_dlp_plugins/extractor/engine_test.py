"""A yt-dlp extractor for the tests: each URL path raises one content error, or returns one local file.

Registered through yt-dlp's plugin mechanism: ``tests/conftest.py`` puts ``tests/plugins`` on ``sys.path``
before the first ``YoutubeDL()``. Plugin extractors are tried before the built-in ones, so
``http://127.0.0.1:<port>/ie/<case>[/<file>]`` reaches this class; every other URL goes to yt-dlp's own.

Cases: ``private``, ``members``, ``login``, ``geo``, ``removed``, ``drm`` (the extractor says so),
``drmformats`` (every format is DRM-flagged), ``bot``, ``bug`` (an extractor crash), ``upcoming-<epoch ms>``
(a scheduled stream until then), ``flaky-<n>-<token>`` (HTTP 503 from the site for the first n
extractions of that URL, then a normal video), ``ok`` (a normal video with rich metadata). ``<file>`` is the
fixture served as the video (default ``progressive.mp4``).
"""

from __future__ import annotations

import time
from typing import Any

from yt_dlp.extractor.common import InfoExtractor
from yt_dlp.utils import ExtractorError

_calls: dict[str, int] = {}  # extractions per case, for "flaky" (plugins load once per process)


class EngineTestIE(InfoExtractor):
    IE_NAME = "enginetest"
    _VALID_URL = r"(?P<base>https?://127\.0\.0\.1:\d+)/ie/(?P<id>[\w-]+)(?:/(?P<file>[\w./-]+))?"
    _GEO_BYPASS = False  # otherwise a geo error runs the extraction twice with a fake IP

    def _real_extract(self, url: str) -> dict[str, Any]:
        m = self._match_valid_url(url)
        case, base = m["id"], m["base"]
        media = f"{base}/{m['file'] or 'progressive.mp4'}"
        if case == "private":
            raise ExtractorError(
                "Private video. Sign in if you've been granted access to this video", expected=True
            )
        if case == "members":
            raise ExtractorError(
                "Join this channel to get access to members-only content like this video, "
                "and other exclusive perks.",
                expected=True,
            )
        if case == "login":
            self.raise_login_required()
        if case == "geo":
            self.raise_geo_restricted(countries=["US"])
        if case == "removed":
            raise ExtractorError(
                "Video unavailable. This video has been removed by the uploader", expected=True
            )
        if case == "drm":
            self.report_drm(case)
        if case == "bot":
            raise ExtractorError(
                "Sign in to confirm you\u2019re not a bot. Use --cookies for the authentication.",
                expected=True,
            )
        if case.startswith("flaky-"):
            _calls[case] = _calls.get(case, 0) + 1
            if _calls[case] <= int(case.split("-")[1]):
                self._download_webpage(f"{base}/status/503/{case}", case)  # a real HTTP 503
        if case == "bug":
            return {"id": case}["missing"]  # type: ignore[no-any-return]
        info: dict[str, Any] = {
            "id": case,
            "title": f"Engine test {case}",
            "formats": [{"format_id": "mp4", "url": media, "ext": "mp4"}],
        }
        if case == "drmformats":
            info["formats"][0]["has_drm"] = True
        if case.startswith("upcoming-"):
            release = int(case.split("-", 1)[1]) / 1000
            if time.time() < release:
                # what YouTube's extractor does for a scheduled stream: no formats, an "expected" reason
                self.raise_no_formats(
                    f"This live event will begin in {release - time.time():.0f} seconds.", expected=True
                )
                return {
                    **info,
                    "formats": [],
                    "live_status": "is_upcoming",
                    "release_timestamp": int(release),
                }
            return {**info, "live_status": "was_live"}
        if case == "ok":
            info.update(
                {
                    "uploader": "Engine Tester",
                    "description": "A generated test pattern.",
                    "view_count": 1234,
                    "like_count": 56,
                    "upload_date": "20240102",
                    "duration": 4,
                    "thumbnail": f"{base}/thumb.jpg?sig=s3cr3t&expires=1",
                    "http_headers": {"Cookie": "session=s3cr3t", "Authorization": "Bearer s3cr3t"},
                    "formats": [
                        {
                            "format_id": "mp4",
                            "url": f"{media}?token=s3cr3t",
                            "ext": "mp4",
                            "width": 640,
                            "height": 360,
                            "vcodec": "avc1.64001e",
                            "acodec": "mp4a.40.2",
                            "filesize": 250000,
                            "http_headers": {"Cookie": "session=s3cr3t"},
                        },
                        {
                            "format_id": "small",
                            "url": f"{media}?token=s3cr3t",
                            "ext": "mp4",
                            "width": 426,
                            "height": 240,
                            "vcodec": "avc1.64001e",
                            "acodec": "mp4a.40.2",
                            "filesize_approx": 120000,
                        },
                    ],
                }
            )
        return info
