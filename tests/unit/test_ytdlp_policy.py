"""yt-dlp failures -> kinds -> job outcomes, messages, and the yt-dlp parameter allowlist (pure, no I/O).

The exceptions are built the way yt-dlp 2026.10.26 builds them (``recipes/media.md`` section 5): an error
reported by ``YoutubeDL.report_error`` is a ``DownloadError('ERROR: ...', exc_info)`` whose ``exc_info`` is
the cause's own ``exc_info`` when it has one, else the cause itself; download-phase errors carry
``(None, None, None)`` and only text.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from yt_dlp.extractor.common import InfoExtractor
from yt_dlp.networking.common import Response
from yt_dlp.networking.exceptions import HTTPError, IncompleteRead, TransportError
from yt_dlp.utils import DownloadError, ExtractorError, GeoRestrictedError, UnsupportedError

from tornado_engine import errors
from tornado_engine.retry import outcome_for
from tornado_engine.states import Status
from tornado_engine.ytdlp import (
    DETAILED_KINDS,
    MEDIA_STEM,
    SilentLogger,
    base_params,
    classify,
    clean_message,
    download_params,
    format_selection,
    map_error,
)

# --------------------------------------------------------------------------- building real exceptions


def http_error(status: int, url: str = "http://127.0.0.1:8765/page?token=s3cr3t") -> HTTPError:
    return HTTPError(Response(io.BytesIO(b""), url, {"Content-Type": "text/html"}, status=status))


def reported(inner: BaseException, message: str | None = None) -> DownloadError:
    """What ``YoutubeDL.report_error`` raises for ``inner`` (see ``YoutubeDL.trouble``)."""
    own = getattr(inner, "exc_info", None)
    exc_info = own if own and own[0] else (type(inner), inner, None)
    return DownloadError(f"ERROR: {message if message is not None else inner}", exc_info)


def text_only(message: str) -> DownloadError:
    """A download-phase error: text, no cause."""
    return DownloadError(f"ERROR: {message}", (None, None, None))


def from_extractor(err: ExtractorError, video_id: str, ie: str = "enginetest") -> ExtractorError:
    # InfoExtractor.extract() fills these in before re-raising
    err.video_id = video_id
    err.ie = ie
    return err


class EngineTestIE(InfoExtractor):
    IE_NAME = "enginetest"
    _VALID_URL = r"https?://127\.0\.0\.1:\d+/ie/(?P<id>[\w-]+)"
    _GEO_BYPASS = False


def login_error() -> DownloadError:
    try:
        EngineTestIE().raise_login_required()
    except ExtractorError as exc:
        return reported(from_extractor(exc, "login"))
    raise AssertionError("raise_login_required did not raise")


def geo_error() -> DownloadError:
    try:
        EngineTestIE().raise_geo_restricted(countries=["US"])
    except GeoRestrictedError as exc:
        err = from_extractor(exc, "geo")
        # YoutubeDL._handle_extraction_exceptions adds the country list and a VPN hint
        msg = f"{err.msg}\nThis video is available in United States.\n"
        msg += "You might want to use a VPN or a proxy server (with --proxy) to workaround."
        return reported(err, msg)
    raise AssertionError("raise_geo_restricted did not raise")


def drm_error() -> DownloadError:
    try:
        EngineTestIE().report_drm("drm")
    except ExtractorError as exc:
        return reported(from_extractor(exc, "drm"))
    raise AssertionError("report_drm did not raise")


def extractor_bug() -> DownloadError:
    try:
        try:
            {}["missing"]
        except KeyError as key_error:
            raise ExtractorError("An extractor error has occurred.", cause=key_error) from key_error
    except ExtractorError as exc:
        assert isinstance(exc.exc_info[1], KeyError)
        return reported(from_extractor(exc, "keyerror"))
    raise AssertionError("unreachable")


def expected(msg: str, video_id: str) -> DownloadError:
    return reported(from_extractor(ExtractorError(msg, expected=True), video_id))


def page_error(status: int) -> DownloadError:
    inner = http_error(status)
    return reported(inner, f"[generic] x: Unable to download webpage: {inner} (caused by {inner!r})")


def media_http_error(status: int) -> DownloadError:
    inner = http_error(status, "http://127.0.0.1:8765/media/v.mp4?sig=s3cr3t")
    return reported(inner, f"unable to download video data: {inner}")


@dataclass(frozen=True)
class Case:
    exc: BaseException
    kind: str
    status: Status
    error_type: str
    transient: bool


def failed(exc: BaseException, kind: str, transient: bool) -> Case:
    return Case(exc, kind, Status.FAILED, "error", transient)


def warning(exc: BaseException, kind: str) -> Case:
    return Case(exc, kind, Status.WARNING, "warning", False)


UNSUPPORTED = "http://127.0.0.1:8765/novideo.html?utm_source=s3cr3t"

# every row of recipes/media.md section 5, plus the timeouts of section 4 and a few more real texts
CASES: dict[str, Case] = {
    # resolve phase: DownloadError wrapping a cause
    "page-404": failed(page_error(404), "not_found", False),
    "page-410": failed(page_error(410), "not_found", False),
    "page-500": failed(page_error(500), "server_error", True),
    "page-503": failed(page_error(503), "server_error", True),
    "page-429": failed(page_error(429), "rate_limited", True),
    "page-403": failed(page_error(403), "http_error", False),
    "page-401": warning(page_error(401), "login_required"),
    "page-refused": failed(
        reported(
            TransportError("[Errno 111] Connection refused"),
            "[generic] x: Unable to download webpage: [Errno 111] Connection refused "
            "(caused by TransportError('[Errno 111] Connection refused'))",
        ),
        "network",
        True,
    ),
    "page-timeout": failed(
        reported(TransportError("timed out"), "[generic] x: Unable to download webpage: timed out"),
        "timeout",
        True,
    ),
    "manifest-reset-bare": failed(TransportError("[Errno 104] Connection reset by peer"), "network", True),
    "manifest-short": failed(
        reported(
            IncompleteRead(0, 1000),
            "[generic] master: Error reading response: 0 bytes read, 1000 more expected "
            "(caused by <IncompleteRead: 0 bytes read, 1000 more expected>)",
        ),
        "network",
        True,
    ),
    "no-media": failed(reported(UnsupportedError(UNSUPPORTED)), "unsupported_url", False),
    "media-404": failed(media_http_error(404), "not_found", False),
    "media-429": failed(media_http_error(429), "rate_limited", True),
    # download phase: text only
    "media-500": failed(
        text_only("\r[download] Got error: HTTP Error 500: Internal Server Error. Giving up after 2 retries"),
        "server_error",
        True,
    ),
    "media-503": failed(
        text_only("\r[download] Got error: HTTP Error 503: Service Unavailable. Giving up after 2 retries"),
        "server_error",
        True,
    ),
    "media-refused": failed(
        text_only("\r[download] Got error: [Errno 111] Connection refused"), "network", True
    ),
    "media-reset": failed(
        text_only("\r[download] Got error: [Errno 104] Connection reset by peer. Giving up after 2 retries"),
        "network",
        True,
    ),
    "media-cut": failed(
        text_only("\r[download] Got error: Downloaded 999291 bytes, expected 1000291 bytes"),
        "truncated",
        True,
    ),
    "media-stalled": failed(text_only("\r[download] Got error: timed out"), "timeout", True),
    "fragment-404": failed(
        text_only("\r[download] Got error: HTTP Error 404: Not Found"), "not_found", False
    ),
    # content issues
    "private": warning(
        expected("Private video. Sign in if you've been granted access to this video", "private"), "private"
    ),
    "members": warning(
        expected(
            "Join this channel to get access to members-only content like this video, "
            "and other exclusive perks.",
            "members",
        ),
        "members_only",
    ),
    "login": warning(login_error(), "login_required"),
    "geo": warning(geo_error(), "geo_restricted"),
    "unavailable": warning(expected("Video unavailable. This video has been removed", "gone"), "unavailable"),
    "drm": Case(drm_error(), "drm", Status.SKIPPED, "warning", False),
    # technical, permanent
    "bot-check": failed(
        expected("Sign in to confirm you\u2019re not a bot. Use --cookies-from-browser or --cookies", "bot"),
        "bot_check",
        False,
    ),
    "no-formats": failed(
        expected(
            "Requested format is not available. Use --list-formats for a list of available formats", "fmt"
        ),
        "no_formats",
        False,
    ),
    "extractor-bug": failed(extractor_bug(), "extractor_bug", False),
    "no-extractor": failed(text_only(f"No suitable extractor found for URL {UNSUPPORTED}"), "unknown", False),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_classification_table(case: Case) -> None:
    kind = classify(case.exc)
    assert kind == case.kind
    outcome = outcome_for(kind)
    assert outcome.status is case.status
    assert outcome.error_type == case.error_type
    assert outcome.transient is case.transient


def test_table_builders_look_like_yt_dlp() -> None:
    """Guard the fixtures themselves against drifting from the recipe's texts."""
    assert str(CASES["page-404"].exc).startswith(
        "ERROR: [generic] x: Unable to download webpage: HTTP Error 404"
    )
    assert CASES["page-404"].exc.exc_info[1].status == 404  # type: ignore[attr-defined]
    login = CASES["login"].exc
    assert "only available for registered users" in str(login)
    assert "--cookies" in str(login)
    geo = CASES["geo"].exc
    assert isinstance(geo.exc_info[1], GeoRestrictedError)  # type: ignore[attr-defined]
    assert geo.exc_info[1].countries == ["US"]  # type: ignore[attr-defined]
    assert str(CASES["drm"].exc) == "ERROR: [enginetest] drm: This video is DRM protected"
    bug = str(CASES["extractor-bug"].exc)
    assert "An extractor error has occurred. (caused by KeyError('missing')); please report" in bug
    assert CASES["media-cut"].exc.exc_info == (None, None, None)  # type: ignore[attr-defined]
    assert "\r[download]" in str(CASES["media-503"].exc)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "http_error"),
        (401, "login_required"),
        (403, "http_error"),
        (404, "not_found"),
        (410, "not_found"),
        (429, "rate_limited"),
        (500, "server_error"),
        (502, "server_error"),
        (504, "server_error"),
    ],
)
def test_http_status_kinds(status: int, kind: str) -> None:
    assert classify(http_error(status)) == kind  # bare
    assert classify(reported(http_error(status))) == kind  # wrapped
    assert classify(text_only(f"\r[download] Got error: HTTP Error {status}: x")) == kind  # text only


def test_unexpected_extractor_error_is_not_a_content_issue() -> None:
    # expected=False: a private-looking text from a crashing extractor is still not "private"
    exc = reported(ExtractorError("private helper failed"))
    assert classify(exc) == "unknown"


def test_download_error_without_exc_info() -> None:
    assert classify(DownloadError("ERROR: \r[download] Got error: timed out")) == "timeout"


# --------------------------------------------------------------------------- clean_message

FORBIDDEN_NAMES = ("yt-dlp", "youtube-dl", "youtubedl", "yt_dlp")


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_clean_message_of_every_case(case: Case) -> None:
    msg = clean_message(case.exc)
    assert msg.strip(), f"empty message for {str(case.exc)!r}"
    assert not msg.startswith(("ERROR", "\r", " "))
    assert not re.match(r"\[[\w:-]+\]", msg)  # no "[download]" / "[generic]" / "[enginetest]"
    assert "\r" not in msg and "\n" not in msg
    low = msg.lower()
    assert not any(name in low for name in FORBIDDEN_NAMES)
    assert "s3cr3t" not in msg
    assert "please report" not in low
    assert "--cookies" not in msg
    assert len(msg) <= 300


@pytest.mark.parametrize(
    ("case", "must_contain"),
    [
        ("page-404", "HTTP Error 404: Not Found"),
        ("media-503", "HTTP Error 503: Service Unavailable"),
        ("media-cut", "Downloaded 999291 bytes, expected 1000291 bytes"),
        ("media-refused", "Connection refused"),
        ("fragment-404", "HTTP Error 404"),
        ("private", "Private video"),
        ("login", "only available for registered users"),
        ("geo", "geo restriction"),
        ("drm", "DRM protected"),
        ("extractor-bug", "An extractor error has occurred"),
        ("no-media", "Unsupported URL: http://127.0.0.1:8765/novideo.html"),
    ],
)
def test_clean_message_keeps_the_substance(case: str, must_contain: str) -> None:
    assert must_contain in clean_message(CASES[case].exc)


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("ERROR: [generic] Unsupported URL", "Unsupported URL"),
        ("ERROR: [youtube] abc: Video unavailable", "abc: Video unavailable"),
        ("ERROR: [download] Got error: timed out", "Got error: timed out"),
        ("[generic:embed] x", "x"),
        (
            "Unable to fetch https://cdn.example.com/v.mp4?X-Amz-Signature=abc&Expires=1 now",
            "Unable to fetch https://cdn.example.com/v.mp4 now",
        ),
        (
            "see http://a.example/x?q=1 and https://b.example/y?z=2",
            "see http://a.example/x and https://b.example/y",
        ),
        ("yt-dlp failed", "downloader failed"),
        ("YT-DLP failed", "downloader failed"),
        ("youtube-dl and youtubedl failed", "downloader and downloader failed"),
        ("first line\nsecond line", "first line"),
        (
            "x: oops; please report this issue on https://github.com/yt-dlp/yt-dlp/issues?q= , thanks",
            "x: oops",
        ),
        ("Needs login. Use --cookies-from-browser or --cookies for the authentication.", "Needs login."),
    ],
)
def test_clean_message_rules(raw: str, cleaned: str) -> None:
    assert clean_message(Exception(raw)) == cleaned


def test_clean_message_of_empty_exception_names_its_type() -> None:
    assert clean_message(KeyError()) == "KeyError"
    assert clean_message(Exception("   ")) == "Exception"
    assert clean_message(TransportError()) == "TransportError"


def test_clean_message_is_short() -> None:
    assert len(clean_message(Exception("x" * 5000))) == 300


_PARTS = [
    "yt-dlp",
    "YT-DLP",
    "youtube-dl",
    "Youtube-DL",
    "yt-",
    "dlp",
    "ERROR: ",
    "[generic] ",
    "https://a.example/p?token=s3cr3t",
    " ",
    "\n",
    "\r",
    "x",
    ": ",
]


@given(st.lists(st.sampled_from(_PARTS), max_size=25).map("".join))
def test_clean_message_never_names_the_tool(text: str) -> None:
    msg = clean_message(Exception(text))
    low = msg.lower()
    assert "yt-dlp" not in low and "youtube-dl" not in low
    assert "s3cr3t" not in msg
    assert "\n" not in msg and "\r" not in msg
    assert len(msg) <= 300


# --------------------------------------------------------------------------- map_error


@pytest.mark.parametrize("name", ["page-404", "private", "geo", "drm", "media-cut", "manifest-reset-bare"])
@pytest.mark.parametrize("resolving", [True, False])
def test_map_error(name: str, resolving: bool) -> None:
    case = CASES[name]
    err = map_error(case.exc, resolving=resolving)
    assert type(err) is (errors.ResolveError if resolving else errors.DownloadError)
    assert isinstance(err, errors.StageError) and isinstance(err, errors.TornadoError)
    assert err.stage == ("resolve" if resolving else "download")
    assert err.kind == case.kind
    # failures with useful specifics keep the cleaned text; the rest get the outcome's own sentence
    expected = clean_message(case.exc) if case.kind in DETAILED_KINDS else outcome_for(case.kind).message
    assert err.message == expected
    assert str(err) == err.message


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (KeyError("x"), "unknown"),
        (ConnectionResetError(104, "Connection reset by peer"), "network"),
        (TimeoutError("timed out"), "timeout"),
        (RuntimeError("HTTP Error 503: Service Unavailable"), "server_error"),
    ],
)
def test_map_error_of_other_exceptions(exc: BaseException, kind: str) -> None:
    err = map_error(exc, resolving=False)
    assert isinstance(err, errors.DownloadError)
    assert err.kind == kind


# --------------------------------------------------------------------------- parameters


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


DANGEROUS_KEYS = {
    "exec_cmd",
    "postprocessor_args",
    "external_downloader",
    "external_downloader_args",
    "cookiefile",
    "cookiesfrombrowser",
    "proxy",
    "batchfile",
    "load_info_filename",
    "download_archive",
    "username",
    "password",
    "netrc_cmd",
    "plugin_dirs",
    "postprocessors",
    "allowed_extractors",
    "break_on_existing",
    "ignoreerrors",
}


def test_base_params(tmp_path: Path) -> None:
    job_dir = tmp_path / "job-1"
    params = base_params(job_dir, "/opt/ffmpeg/bin")
    assert params["outtmpl"] == {"default": f"{MEDIA_STEM}.%(format_id)s.%(ext)s"}
    assert MEDIA_STEM == "media"
    assert params["paths"] == {"home": str(job_dir), "temp": str(job_dir)}
    assert params["skip_unavailable_fragments"] is False
    assert params["cachedir"] is False
    assert params["quiet"] is True
    assert params["no_warnings"] is True
    assert params["noprogress"] is True
    assert isinstance(params["logger"], SilentLogger)
    assert params["noplaylist"] is True
    assert params["retries"] == 0
    assert params["extractor_retries"] == 0
    assert params["geo_bypass"] is False
    assert params["restrictfilenames"] is True
    assert params["ffmpeg_location"] == "/opt/ffmpeg/bin"
    assert params["socket_timeout"] == 20
    assert base_params(job_dir, None, socket_timeout=5)["socket_timeout"] == 5
    assert base_params(job_dir, None)["ffmpeg_location"] is None
    assert not DANGEROUS_KEYS & set(params)


def test_base_params_hold_no_caller_strings(tmp_path: Path) -> None:
    job_dir = tmp_path / "j"
    params = base_params(job_dir, "/ffdir")
    fixed = {str(job_dir), "/ffdir", f"{MEDIA_STEM}.%(format_id)s.%(ext)s", "no_color"}
    assert set(_strings(params)) <= fixed
    # the output template is a fixed stem: no title, id or other field a page controls
    for field in ("title", "id", "uploader", "channel", "playlist"):
        assert f"%({field})" not in params["outtmpl"]["default"]


def test_base_params_are_fresh_each_call(tmp_path: Path) -> None:
    a = base_params(tmp_path, None)
    b = base_params(tmp_path, None)
    assert a is not b and a["paths"] is not b["paths"] and a["logger"] is not b["logger"]


def test_silent_logger_swallows_everything(capsys: pytest.CaptureFixture[str]) -> None:
    logger = SilentLogger()
    for method in (logger.debug, logger.info, logger.warning, logger.error):
        assert method("ERROR: something") is None
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_format_selection() -> None:
    assert format_selection() == {"format": "bv,ba/b"}


def test_download_params(tmp_path: Path) -> None:
    def hook(d: dict[str, Any]) -> None:
        pass

    params = download_params(tmp_path, None, hook)
    assert params["progress_hooks"] == [hook]
    assert params["format"] == "bv,ba/b"
    assert params["concurrent_fragment_downloads"] == 4
    assert params["http_chunk_size"] == 10 * 2**20
    assert params["continuedl"] is True  # a .part is resumed once pipeline._ytparts vouched for it
    assert download_params(tmp_path, None, hook, live=True)["continuedl"] is False
    # the base allowlist survives the update
    assert params["skip_unavailable_fragments"] is False
    assert params["cachedir"] is False
    assert params["outtmpl"] == {"default": f"{MEDIA_STEM}.%(format_id)s.%(ext)s"}
    assert isinstance(params["logger"], SilentLogger) and params["quiet"] is True
    assert not DANGEROUS_KEYS & set(params)

    params = download_params(
        tmp_path, None, hook, concurrent_fragments=1, http_chunk_size=None, socket_timeout=3
    )
    assert "http_chunk_size" not in params
    assert params["concurrent_fragment_downloads"] == 1
    assert params["socket_timeout"] == 3


def test_a_sources_retry_after_reaches_the_stage_error() -> None:
    """Issue 16 point 4: the retry and the host's back-off honour the source's Retry-After."""
    limited = HTTPError(
        Response(io.BytesIO(b""), "http://127.0.0.1:8765/v", {"Retry-After": "7"}, status=429)
    )
    try:  # as the extractor raises it: while handling the request's error
        raise limited
    except HTTPError:
        wrapped = ExtractorError("Unable to download webpage: HTTP Error 429", cause=limited)
    for exc in (reported(limited), reported(wrapped)):
        error = map_error(exc, resolving=True)
        assert (error.kind, error.retry_after) == ("rate_limited", 7.0)
    assert map_error(reported(http_error(429)), resolving=False).retry_after is None
    assert map_error(text_only("HTTP Error 429: Too Many Requests"), resolving=False).retry_after is None
