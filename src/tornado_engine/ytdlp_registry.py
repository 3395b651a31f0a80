"""A cheap ``yt_dlp.YoutubeDL``: what every instance re-derives is derived once per process.

Why (performance issue #8): the engine makes a new ``YoutubeDL`` for every playlist probe, resolve,
download and side-file call, and each one cost ~0.1 s of CPU before doing anything, plus ~40 ms on its
first request, plus ~5 ms to find the extractor for a URL. Three things are shared here, all of them
functions of yt-dlp's code and the parameters only, never of a job or of what a site answered:

* The extractor list. ``add_default_info_extractors`` filters the ~1,750 extractor classes through
  ``orderedSet_from_options`` (quadratic in the number of names) on every instance. The list of
  *classes* depends only on the classes yt-dlp knows (built-ins, plus plugin extractors, loaded by the
  process's first instance as yt-dlp does) and on ``allowed_extractors``; it is computed once by yt-dlp's
  own ``add_default_info_extractors`` on a throwaway instance, and rebuilt if those classes change.
  Extractor *instances* (``UnsupportedURLIE`` when allowed, and those yt-dlp makes on demand) hold their
  ``YoutubeDL`` and are never shared: each new instance gets new ones.
* URL matching. ``extract_info`` asks every extractor's ``suitable(url)`` in order; for a direct media
  URL that is ~1,750 calls before ``generic``. :func:`extract_info` finds the same first extractor with the
  classes' own compiled ``_VALID_URL`` patterns in one tight loop (extractors with a ``suitable`` of their
  own are asked as before) and passes it as ``ie_key``, which yt-dlp checks with ``suitable`` again.
* The TLS context an HTTP handler builds on its first request (parsing certifi's CA bundle, ~40 ms):
  one per set of TLS settings (verification, legacy renegotiation, certifi or system store) when no
  client certificate is configured. yt-dlp and urllib3 only read a context once it is made, the way one
  handler's connections already share one; the bundle is read once per process.

Cookies, headers, proxies, the cache, extractor instances and every other per-job state stay per
instance. Everything else is ``yt_dlp.YoutubeDL(params)``: same parameters, same plugins, same errors (a
bad ``allowed_extractors`` regex is a ``ValueError``, as from yt-dlp).
"""

from __future__ import annotations

import importlib
import itertools
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import yt_dlp
from yt_dlp.extractor import gen_extractor_classes, import_extractors
from yt_dlp.extractor.common import InfoExtractor

from .sources.cookies import CookieSet
from .sources.settings import COOKIES_PARAM

# Internals this module reads; a yt-dlp without them gets the slower, public ways (the unit tests compare
# every shortcut with yt-dlp's own result, so a release that changes their meaning fails them).
try:
    from yt_dlp.globals import all_plugins_loaded as _plugins_loaded
    from yt_dlp.globals import extractors as _extractor_table
    from yt_dlp.plugins import load_all_plugins
except ImportError:  # pragma: no cover
    _extractor_table = None
try:
    from yt_dlp.networking._helper import make_ssl_context as _make_ssl_context
except ImportError:  # pragma: no cover
    _make_ssl_context = None

__all__ = [
    "Matcher",
    "extract_info",
    "extractor_for",
    "extractor_registry",
    "first_suitable",
    "new_ydl",
    "shared_ssl_context",
    "warm_up",
]

try:  # the stock methods of yt-dlp's lazy extractor classes (absent when lazy extractors are off)
    from yt_dlp.extractor.lazy_extractors import LazyLoadExtractor as _Lazy
except ImportError:  # pragma: no cover
    _Lazy = InfoExtractor

# an extractor whose suitable() and _match_valid_url() are these is suitable iff one of its patterns
# matches the URL (re.match, compiled without flags): yt-dlp's own definition, for both kinds of class
_STOCK_SUITABLE = frozenset({InfoExtractor.suitable.__func__, _Lazy.suitable.__func__})
_STOCK_MATCH = frozenset({InfoExtractor._match_valid_url.__func__, _Lazy._match_valid_url.__func__})

_MATCH = re.Pattern.match


@dataclass(frozen=True)
class Matcher:
    """Which extractor ``extract_info`` would pick for a URL, as steps in the extractors' order.

    A step is ``(keys, patterns, None)``: a run of extractors with yt-dlp's stock ``suitable``, flattened
    to one compiled pattern per entry and the key of the extractor it belongs to (tried in C, with
    ``map``); or ``((key,), (), suitable)``: an extractor with a ``suitable`` of its own, asked as before.
    """

    steps: tuple[tuple[tuple[str, ...], tuple[re.Pattern[str], ...], Callable[[str], Any] | None], ...]

    @classmethod
    def of(cls, extractors: dict[str, Any]) -> Matcher:
        """The matcher for ``ie_key -> extractor`` (a class, or an instance: its class is used)."""
        steps: list[tuple[tuple[str, ...], tuple[re.Pattern[str], ...], Callable[[str], Any] | None]] = []
        keys: list[str] = []
        patterns: list[re.Pattern[str]] = []
        for key, ie in extractors.items():
            kind: Any = ie if isinstance(ie, type) else type(ie)
            own = _patterns(kind)
            if own is not None:
                keys += [key] * len(own)
                patterns += own
                continue
            if patterns:
                steps.append((tuple(keys), tuple(patterns), None))
                keys, patterns = [], []
            steps.append(((key,), (), kind.suitable))
        if patterns:
            steps.append((tuple(keys), tuple(patterns), None))
        return cls(tuple(steps))


@dataclass(frozen=True)
class _Registry:
    """yt-dlp's extractor list for one ``allowed_extractors``, from one set of known classes."""

    known: tuple[Any, int]  # the class table yt-dlp had (object, size) when it was built: else rebuild
    ies: dict[str, Any]  # ie_key -> class (or a template instance, replaced per YoutubeDL), in order
    instances: tuple[type, ...]  # the types of the entries that are instances (their ie_key is the key)
    matcher: Matcher


_lock = threading.Lock()
_table_lock = threading.Lock()
_table_ready = threading.Event()
_registries: dict[tuple[str, ...], _Registry] = {}


def _allowed(params: dict[str, Any]) -> tuple[str, ...]:
    value = params.get("allowed_extractors", ["default"])
    return tuple(value) if isinstance(value, list | tuple) else (value,)


def _patterns(cls: Any) -> tuple[re.Pattern[str], ...] | None:
    """The compiled patterns yt-dlp's stock ``suitable`` would try, or None when it is not stock."""
    suitable = getattr(cls.suitable, "__func__", None)
    match = getattr(cls._match_valid_url, "__func__", None)
    if suitable not in _STOCK_SUITABLE or match not in _STOCK_MATCH:
        return None
    if cls._VALID_URL is False:
        return ()  # never suitable
    try:
        cls._match_valid_url("")  # compiles and caches cls._VALID_URL_RE, as the first suitable() does
    except Exception:
        return None  # whatever it is, suitable() itself will say it, as before
    patterns = cls.__dict__.get("_VALID_URL_RE")
    if not isinstance(patterns, tuple) or not all(isinstance(p, re.Pattern) for p in patterns):
        return None
    return patterns


def _build(allowed: tuple[str, ...], known: tuple[Any, int]) -> _Registry:
    # yt-dlp's own selection, on a throwaway instance, so the order and filtering are exactly its own
    template = yt_dlp.YoutubeDL({"quiet": True, "allowed_extractors": list(allowed)}, auto_init=False)
    try:
        template.add_default_info_extractors()
        ies = dict(template._ies)
    finally:
        template.close()
    instances = tuple(type(ie) for ie in ies.values() if not isinstance(ie, type))
    return _Registry(known, ies, instances, Matcher.of(ies))


def _known_classes() -> tuple[Any, int]:
    """yt-dlp's table of extractor classes (built-ins and plugins) and its size: what a YoutubeDL's list is
    made from. Loading plugins replaces the table; importing the built-ins fills it."""
    if _extractor_table is None:  # pragma: no cover
        classes = tuple(gen_extractor_classes())
        return classes, len(classes)
    if not _table_ready.is_set():
        # Once per process, one thread at a time: yt-dlp fills its table in a loop and load_all_plugins()
        # replaces it with a copy of what it holds, so a second thread loading meanwhile kept a partial
        # table (no GenericIE) for the life of the process (seen in the soak: a worker failing every job
        # with "No suitable extractor found").
        with _table_lock:
            if not _table_ready.is_set():
                if not _plugins_loaded.value:  # as every YoutubeDL() does first: plugins, then built-ins
                    load_all_plugins()
                import_extractors()
                _table_ready.set()
    table = _extractor_table.value
    return table, len(table)


def _same(a: tuple[Any, int], b: tuple[Any, int]) -> bool:
    return a[1] == b[1] and (a[0] is b[0] or a[0] == b[0])


def _registry(params: dict[str, Any]) -> _Registry:
    allowed = _allowed(params)
    known = _known_classes()
    registry = _registries.get(allowed)
    if registry is None or not _same(registry.known, known):
        with _lock:
            registry = _registries.get(allowed)
            if registry is None or not _same(registry.known, known):
                registry = _registries[allowed] = _build(allowed, known)
    return registry


def extractor_registry(params: dict[str, Any]) -> dict[str, Any]:
    """ie_key -> extractor, in order, as ``YoutubeDL(params)`` would load them (a copy).

    Instances (e.g. ``UnsupportedURLIE``) are templates, never to be used: :func:`new_ydl` makes new ones.
    Built once per ``allowed_extractors``; rebuilt when the classes yt-dlp knows change (plugins loaded
    later). Thread-safe. Raises ``ValueError`` for a bad ``allowed_extractors`` regex, as yt-dlp does.
    """
    return dict(_registry(params).ies)


class _YoutubeDL(yt_dlp.YoutubeDL):  # type: ignore[misc]
    """A YoutubeDL whose HTTP handlers take their TLS context from :func:`shared_ssl_context`."""

    tornado_matcher: Matcher | None = None

    def build_request_director(self, handlers: Sequence[Any], preferences: Any = None) -> Any:
        director = super().build_request_director(handlers, preferences)
        for handler in director.handlers.values() if _make_ssl_context is not None else ():
            make = getattr(handler, "_make_sslcontext", None)
            if make is not None and all(
                hasattr(handler, a) for a in ("verify", "legacy_ssl_support", "prefer_system_certs")
            ):
                handler._make_sslcontext = _sharing(handler, make)
        return director


def new_ydl(params: dict[str, Any]) -> Any:
    """``yt_dlp.YoutubeDL(params)``, without re-deriving its extractor list or its TLS context.

    A verbose instance loads its extractors the ordinary way (``auto_init`` prints its debug header).
    """
    registry = _registry(params)  # first: the class table is complete before any YoutubeDL() reads it
    if params.get("verbose"):
        return _with_cookies(_YoutubeDL(params), params)
    ydl = _with_cookies(_YoutubeDL(params, auto_init=False), params)
    if isinstance(ydl._ies, dict) and not ydl._ies:
        ydl._ies.update(registry.ies)  # classes are shared; instances are replaced right below
        for cls in registry.instances:  # same key: stays in its place, now bound to this ydl
            ydl.add_info_extractor(cls())
        ydl.tornado_matcher = registry.matcher
    else:  # pragma: no cover - a yt-dlp whose internals moved: the public way, one by one
        for ie in registry.ies.values():
            ydl.add_info_extractor(ie if isinstance(ie, type) else type(ie)())
    return ydl


def _with_cookies(ydl: Any, params: dict[str, Any]) -> Any:
    """The job's cookies (``COOKIES_PARAM``) in the instance's own jar: never through a file."""
    cookies = params.get(COOKIES_PARAM)
    if isinstance(cookies, CookieSet) and cookies:
        for cookie in cookies.jar():
            ydl.cookiejar.set_cookie(cookie)
    return ydl


def first_suitable(matcher: Matcher, url: str) -> str | None:
    """The key of the first extractor whose ``suitable(url)`` is true, as ``extract_info`` finds it."""
    for keys, patterns, suitable in matcher.steps:
        if suitable is None:
            # the key of the first pattern that matches: compress() stops there, map() calls in C
            key = next(itertools.compress(keys, map(_MATCH, patterns, itertools.repeat(url))), None)
            if key is not None:
                return key
        elif suitable(url):
            return keys[0]
    return None


def extractor_for(url: str) -> str | None:
    """The key of the extractor ``extract_info`` picks for ``url`` with the default extractor list."""
    return first_suitable(_registry({}).matcher, url)


def extract_info(ydl: Any, url: str, **kwargs: Any) -> Any:
    """``ydl.extract_info(url, **kwargs)``, its extractor found with :func:`first_suitable`.

    yt-dlp checks the extractor with ``suitable`` again and goes on as it would have; with no match (or a
    YoutubeDL not made by :func:`new_ydl`) it searches itself and reports "No suitable extractor" itself.
    """
    matcher = getattr(ydl, "tornado_matcher", None)
    if matcher is not None and "ie_key" not in kwargs:
        key = first_suitable(matcher, url)
        if key is not None:
            kwargs["ie_key"] = key
    return ydl.extract_info(url, **kwargs)


_ssl_lock = threading.Lock()
_ssl_contexts: dict[tuple[bool, bool, bool, str | None], Any] = {}


def shared_ssl_context(*, verify: bool, legacy_support: bool, use_certifi: bool) -> Any:
    """One ``make_ssl_context(...)`` (no client certificate) per set of settings, for the process."""
    # make_ssl_context reads SSLKEYLOGFILE itself: part of the key
    key = (bool(verify), bool(legacy_support), bool(use_certifi), os.environ.get("SSLKEYLOGFILE") or None)
    context = _ssl_contexts.get(key)
    if context is None:
        with _ssl_lock:
            context = _ssl_contexts.get(key)
            if context is None:
                context = _ssl_contexts[key] = _make_ssl_context(
                    verify=key[0], legacy_support=key[1], use_certifi=key[2]
                )
    return context


def _sharing(handler: Any, make: Callable[..., Any]) -> Callable[..., Any]:
    """``handler._make_sslcontext`` answered from the shared contexts (mirrors RequestHandler's)."""

    def make_sslcontext(legacy_ssl_support: bool | None = None) -> Any:
        if getattr(handler, "_client_cert", None):  # a client certificate: its own context, as before
            return make(legacy_ssl_support=legacy_ssl_support)
        legacy = handler.legacy_ssl_support if legacy_ssl_support is None else legacy_ssl_support
        return shared_ssl_context(
            verify=handler.verify, legacy_support=legacy, use_certifi=not handler.prefer_system_certs
        )

    return make_sslcontext


def warm_up() -> None:
    """Build now what the first ``new_ydl`` would: the default extractor list (importing yt-dlp and its
    extractors, ~0.5 s of CPU), the generic extractor and the default TLS context. Blocking: the engine
    runs it in a stage thread when it opens, so the first resolve or playlist probe finds them ready (or
    waits for them, once)."""
    _registry({})
    # the extractor of every direct media URL (and of pages no site extractor claims): yt-dlp imports its
    # module on first use, ~80 ms that would otherwise land on the first playlist probe
    importlib.import_module("yt_dlp.extractor.generic")
    if _make_ssl_context is not None:  # yt-dlp's defaults: verify, no legacy renegotiation, certifi
        shared_ssl_context(verify=True, legacy_support=False, use_certifi=True)
