"""Browser impersonation targets and the allow-listed yt-dlp ``extractor_args`` (pure: validation only).

A target is yt-dlp's ``client[-version][:os[-os_version]]`` (``chrome``, ``safari-18.0``,
``chrome-136:windows-10``) for one of the clients curl_cffi imitates; whether the ``[impersonate]`` extra
is installed is asked by :func:`impersonation_available`, and a target given without it is refused
with the extra's name. Extractor arguments are accepted only for the (extractor, argument) pairs of
:data:`EXTRACTOR_ARGS`, each value a short plain token: never a raw yt-dlp options dict.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable, Mapping

from ..errors import InvalidRequest

__all__ = [
    "EXTRACTOR_ARGS", "IMPERSONATE_CLIENTS", "IMPERSONATE_EXTRA", "check_extractor_args", "check_target",
    "impersonation_available",
]  # fmt: skip

IMPERSONATE_CLIENTS = frozenset({"chrome", "edge", "safari", "firefox", "tor"})
IMPERSONATE_EXTRA = "pip install 'tornado-engine[impersonate]'"
# (extractor key, lower case as yt-dlp's) -> the arguments a caller may set
EXTRACTOR_ARGS: Mapping[str, frozenset[str]] = {
    "youtube": frozenset({"player_client", "player_skip", "lang", "skip", "comment_sort", "formats"}),
    "youtubetab": frozenset({"skip"}),
    "generic": frozenset({"impersonate", "hls_key", "fragment_query", "variant_query"}),
    "twitter": frozenset({"api"}),
    "vimeo": frozenset({"client"}),
    "tiktok": frozenset({"api_hostname", "app_name", "app_version"}),
    "instagram": frozenset({"app_id"}),
}
_TARGET = re.compile(r"^(?P<client>[a-z]+)(?:-[0-9][0-9.]{0,10})?(?::[a-z]+(?:-[0-9.]{1,10})?)?$")
_VALUE = re.compile(r"^[A-Za-z0-9_.:+/=-]{1,100}$")
_MAX_VALUES = 10


def impersonation_available() -> bool:
    """Whether curl_cffi (the ``[impersonate]`` extra) is installed."""
    return importlib.util.find_spec("curl_cffi") is not None


def check_target(target: str, field_name: str = "impersonate", *, installed: bool = True) -> str:
    """A valid target, lower-cased; InvalidRequest for an unknown client, or (``installed``) a missing
    extra (a stored request is read back with ``installed=False``: the check is the submitter's)."""
    text = str(target).strip().lower()
    match = _TARGET.match(text)
    if match is None or match["client"] not in IMPERSONATE_CLIENTS:
        raise InvalidRequest(
            f"{field_name}: expected client[-version][:os], client one of "
            f"{', '.join(sorted(IMPERSONATE_CLIENTS))} (e.g. chrome, safari-18.0)",
            field=field_name,
        )
    if installed and not impersonation_available():
        raise InvalidRequest(f"{field_name}: impersonation needs curl_cffi: {IMPERSONATE_EXTRA}",
                             field=field_name)  # fmt: skip
    return text


def check_extractor_args(
    given: Mapping[str, Mapping[str, str | Iterable[str]]], field_name: str = "extractor_args"
) -> dict[str, dict[str, list[str]]]:
    """``{"youtube": {"player_client": ["web", "tv"]}}`` checked against :data:`EXTRACTOR_ARGS`."""
    checked: dict[str, dict[str, list[str]]] = {}
    for extractor, args in given.items():
        key = str(extractor).lower()
        allowed = EXTRACTOR_ARGS.get(key)
        if allowed is None or not isinstance(args, Mapping):
            raise InvalidRequest(f"{field_name}: extractor {key!r} takes no arguments here; allowed: "
                                 f"{', '.join(sorted(EXTRACTOR_ARGS))}", field=field_name)  # fmt: skip
        for name, raw in args.items():
            if name not in allowed:
                raise InvalidRequest(f"{field_name}: {key} argument {name!r} is not allowed; allowed: "
                                     f"{', '.join(sorted(allowed))}", field=field_name)  # fmt: skip
            values = [raw] if isinstance(raw, str) else [str(v) for v in raw]
            if not values or len(values) > _MAX_VALUES or not all(_VALUE.match(v) for v in values):
                raise InvalidRequest(f"{field_name}: {key}.{name}: 1-{_MAX_VALUES} plain values",
                                     field=field_name)  # fmt: skip
            checked.setdefault(key, {})[name] = values
    return checked
