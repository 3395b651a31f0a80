"""The shared extractor registry, URL matcher and TLS contexts give what a plain ``YoutubeDL`` would (pure).

Each check compares against yt-dlp itself: a ``yt_dlp.YoutubeDL(params)`` built the ordinary way, and its
extractors' own ``suitable()``. Nothing here makes a request.
"""

from __future__ import annotations

from typing import Any

import pytest
import yt_dlp
from hypothesis import given, settings
from hypothesis import strategies as st
from yt_dlp.extractor.common import InfoExtractor

from tornado_engine import ytdlp_registry
from tornado_engine.ytdlp import SilentLogger
from tornado_engine.ytdlp_registry import (
    Matcher,
    extract_info,
    extractor_registry,
    first_suitable,
    new_ydl,
    shared_ssl_context,
)

QUIET: dict[str, Any] = {"quiet": True, "no_warnings": True, "cachedir": False, "nocheckcertificate": True}

URLS = [
    "http://127.0.0.1:8765/media/clip.mp4",
    "https://example.com/some/page.html",
    "https://www.youtube.com/watch?v=BaW_jenozKc",
    "https://youtu.be/BaW_jenozKc",
    "https://www.youtube.com/playlist?list=PL4lCao7KL_QFVb7Iudeipvc2BCavECqzc",
    "https://www.youtube.com/@SomeChannel/videos",
    "https://vimeo.com/56015672",
    "https://www.dailymotion.com/video/x5kesuj",
    "https://soundcloud.com/some-artist/some-track",
    "https://www.twitch.tv/videos/6528877",
    "https://x.com/someone/status/1234567890123456789",
    "ytsearch3:cute cats",
    "http://127.0.0.1:9/ie/ok",  # the tests' plugin extractor
    "http://127.0.0.1:9/ie/private/progressive.mp4",
    "ftp://example.com/file.mp4",
    "",
]


def stock_first(ydl: Any, url: str) -> str | None:
    """What ``YoutubeDL.extract_info`` picks: the first extractor whose suitable(url) is true."""
    return next((key for key, ie in ydl._ies.items() if ie.suitable(url)), None)


def same_extractors(ours: Any, theirs: Any) -> None:
    assert list(ours._ies) == list(theirs._ies)
    for key, ie in ours._ies.items():
        other = theirs._ies[key]
        if isinstance(other, type):
            assert ie is other
        else:  # an instance: the same kind, but its own, bound to its own YoutubeDL
            assert type(ie) is type(other) and ie is not other
            assert ours._ies_instances[key] is ie and ie._downloader is ours


@pytest.mark.parametrize(
    "allowed", [None, ["default"], ["generic", "end"], ["youtube.*", "-youtube:tab", "generic"], ["all"]]
)
def test_same_extractors_in_the_same_order_as_yt_dlp(allowed: list[str] | None) -> None:
    params = dict(QUIET) if allowed is None else {**QUIET, "allowed_extractors": allowed}
    with yt_dlp.YoutubeDL(dict(params)) as theirs, new_ydl(dict(params)) as ours:
        same_extractors(ours, theirs)
        for url in URLS:
            assert first_suitable(ours.tornado_matcher, url) == stock_first(theirs, url), url


def test_instances_are_never_shared_between_youtubedls() -> None:
    params = {**QUIET, "allowed_extractors": ["generic", "end"]}
    with new_ydl(dict(params)) as one, new_ydl(dict(params)) as two:
        assert one._ies["Generic"] is two._ies["Generic"]  # a class: shared
        assert one._ies["UnsupportedURL"] is not two._ies["UnsupportedURL"]
        assert one._ies["UnsupportedURL"]._downloader is one
        assert not set(map(id, one._ies_instances.values())) & set(map(id, two._ies_instances.values()))


def test_the_plugin_extractor_comes_first() -> None:
    with new_ydl(dict(QUIET)) as ydl:
        assert next(iter(ydl._ies)) == "EngineTest"
        assert first_suitable(ydl.tornado_matcher, "http://127.0.0.1:9/ie/ok") == "EngineTest"
        assert first_suitable(ydl.tornado_matcher, "http://127.0.0.1:9/progressive.mp4") == "Generic"


def test_a_bad_allowed_extractors_regex_is_a_value_error_as_in_yt_dlp() -> None:
    params = {**QUIET, "allowed_extractors": ["(unclosed"]}
    with pytest.raises(ValueError, match="allowed_extractors"):
        yt_dlp.YoutubeDL(dict(params))
    with pytest.raises(ValueError, match="allowed_extractors"):
        new_ydl(dict(params))


def test_nothing_allowed_finds_nothing_and_yt_dlp_says_so() -> None:
    params = {**QUIET, "allowed_extractors": ["-all"], "logger": SilentLogger()}
    with new_ydl(dict(params)) as ydl:
        assert ydl._ies == {}
        assert first_suitable(ydl.tornado_matcher, URLS[0]) is None
        with pytest.raises(yt_dlp.utils.DownloadError, match="No suitable extractor"):
            extract_info(ydl, URLS[0], download=False)


def test_the_registry_is_built_once_and_rebuilt_when_the_known_classes_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    params = dict(QUIET)
    first = ytdlp_registry._registry(params)
    assert ytdlp_registry._registry(dict(params)) is first
    assert ytdlp_registry._registry({**params, "allowed_extractors": ["default"]}) is first
    table, size = ytdlp_registry._known_classes()
    monkeypatch.setattr(ytdlp_registry, "_known_classes", lambda: (table, size - 1))  # filled in later
    shrunk = ytdlp_registry._registry(params)
    assert shrunk is not first
    monkeypatch.undo()
    current = ytdlp_registry._registry(params)
    assert current is not shrunk and current.ies == first.ies
    same = dict(table)
    monkeypatch.setattr(ytdlp_registry, "_known_classes", lambda: (same, size))  # a copy: same classes
    assert ytdlp_registry._registry(params) is current
    other = dict(table)
    other[next(iter(other))] = type("ReplacedIE", (), {})
    monkeypatch.setattr(ytdlp_registry, "_known_classes", lambda: (other, size))  # plugins loaded
    assert ytdlp_registry._registry(params) is not current
    monkeypatch.undo()
    again = ytdlp_registry._registry(params)
    assert again is not current and again.ies == first.ies
    assert extractor_registry(params) == first.ies and extractor_registry(params) is not again.ies


def test_a_verbose_youtubedl_is_built_the_ordinary_way() -> None:
    params = {**QUIET, "verbose": True, "logger": SilentLogger()}
    with new_ydl(dict(params)) as ydl, yt_dlp.YoutubeDL(dict(QUIET)) as theirs:
        assert ydl.tornado_matcher is None
        same_extractors(ydl, theirs)


HOSTS = [
    "www.youtube.com", "youtube.com", "m.youtube.com", "vimeo.com", "127.0.0.1:9", "example.com",
    "www.bbc.co.uk", "twitter.com", "www.facebook.com", "archive.org", "www.tiktok.com",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    scheme=st.sampled_from(["http://", "https://", "", "ytsearch:", "HTTP://"]),
    host=st.sampled_from(HOSTS),
    path=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/_-.?=&%", max_size=40),
)
def test_the_matcher_agrees_with_suitable(scheme: str, host: str, path: str) -> None:
    url = f"{scheme}{host}/{path}"
    ydl = _shared_pair()
    assert first_suitable(ydl[0].tornado_matcher, url) == stock_first(ydl[1], url)


_PAIR: list[Any] = []


def _shared_pair() -> tuple[Any, Any]:
    if not _PAIR:
        _PAIR.extend([new_ydl(dict(QUIET)), yt_dlp.YoutubeDL(dict(QUIET))])
    return _PAIR[0], _PAIR[1]


class _RecordingYDL:
    def __init__(self, matcher: Any) -> None:
        self.tornado_matcher = matcher
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def extract_info(self, url: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append((url, kwargs))
        return {}


def test_extract_info_names_the_extractor_it_found() -> None:
    matcher = Matcher((((), (), None), (("Other",), (), lambda url: url.endswith(".mp4"))))
    ydl = _RecordingYDL(matcher)
    extract_info(ydl, "https://x/a.mp4", download=False)
    extract_info(ydl, "https://x/page", download=False)  # nothing: yt-dlp searches and reports itself
    extract_info(ydl, "https://x/a.mp4", download=False, ie_key="Generic")  # the caller's choice stands
    assert ydl.calls == [
        ("https://x/a.mp4", {"download": False, "ie_key": "Other"}),
        ("https://x/page", {"download": False}),
        ("https://x/a.mp4", {"download": False, "ie_key": "Generic"}),
    ]
    plain = _RecordingYDL(None)
    extract_info(plain, "https://x/a.mp4", download=False)
    assert plain.calls == [("https://x/a.mp4", {"download": False})]


def test_tls_contexts_are_shared_per_settings() -> None:
    one = shared_ssl_context(verify=False, legacy_support=False, use_certifi=True)
    assert shared_ssl_context(verify=False, legacy_support=False, use_certifi=True) is one
    legacy = shared_ssl_context(verify=False, legacy_support=True, use_certifi=True)
    assert legacy is not one


class _Handler:
    def __init__(self, client_cert: dict[str, str] | None = None) -> None:
        self.verify = False
        self.legacy_ssl_support = False
        self.prefer_system_certs = False
        self._client_cert = client_cert or {}
        self.own: list[Any] = []

    def _make_sslcontext(self, legacy_ssl_support: bool | None = None) -> object:
        self.own.append(legacy_ssl_support)
        return object()


def test_handlers_take_the_shared_context_unless_they_have_a_client_certificate() -> None:
    plain = _Handler()
    make = ytdlp_registry._sharing(plain, plain._make_sslcontext)
    assert make() is shared_ssl_context(verify=False, legacy_support=False, use_certifi=True)
    assert make(legacy_ssl_support=True) is shared_ssl_context(
        verify=False, legacy_support=True, use_certifi=True
    )
    assert plain.own == []
    certified = _Handler({"client_certificate": "/nonexistent.pem"})
    make = ytdlp_registry._sharing(certified, certified._make_sslcontext)
    assert make(legacy_ssl_support=True) is not make()
    assert certified.own == [True, None]


def test_a_new_youtubedls_handlers_share_the_context() -> None:
    with new_ydl(dict(QUIET)) as one, new_ydl(dict(QUIET)) as two:
        contexts = [
            h._make_sslcontext()
            for ydl in (one, two)
            for h in ydl._request_director.handlers.values()
            if hasattr(h, "_make_sslcontext")
        ]
        assert contexts and all(c is contexts[0] for c in contexts)
    with yt_dlp.YoutubeDL(dict(QUIET)) as theirs:  # unchanged for YoutubeDLs made elsewhere
        handler = next(
            h for h in theirs._request_director.handlers.values() if hasattr(h, "_make_sslcontext")
        )
        assert handler._make_sslcontext() is not contexts[0]


class _OneIE(InfoExtractor):
    _VALID_URL = r"https?://one\.example/(?P<id>\d+)"


class _TwoIE(InfoExtractor):
    _VALID_URL = (r"https?://two\.example/a/(?P<id>\d+)", r"https?://two\.example/b/(?P<id>\d+)")


class _NeverIE(InfoExtractor):
    _VALID_URL = False


class _OwnIE(InfoExtractor):
    _VALID_URL = r"https?://(?:one|two)\.example/"

    @classmethod
    def suitable(cls, url: str) -> bool:
        return not _OneIE.suitable(url) and super().suitable(url)


class _CatchAllIE(InfoExtractor):
    _VALID_URL = r"https?://"


@pytest.mark.parametrize(
    "url",
    [
        "https://one.example/12",
        "https://one.example/x",
        "https://two.example/b/7",
        "https://two.example/a/x",
        "https://three.example/",
        "ftp://one.example/12",
    ],
)
def test_the_steps_keep_the_extractors_order(url: str) -> None:
    extractors: dict[str, Any] = {
        "Never": _NeverIE, "Own": _OwnIE, "One": _OneIE, "Two": _TwoIE, "CatchAll": _CatchAllIE,
    }  # fmt: skip
    matcher = Matcher.of(extractors)
    assert [len(keys) for keys, _, _ in matcher.steps] == [1, 4]  # Own alone, Never no pattern at all
    expected = next((key for key, ie in extractors.items() if ie.suitable(url)), None)
    assert first_suitable(matcher, url) == expected
