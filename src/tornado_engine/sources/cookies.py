"""Cookie jars: parsed from Netscape ``cookies.txt`` or a list of cookie objects, kept as Netscape text
(sealed at rest by the caller), and loaded into :mod:`http.cookiejar` jars, whose domain, path, secure
and expiry matching is what yt-dlp's own jar (a ``MozillaCookieJar``) applies. Pure: no I/O.

A cookie's value is a secret: the jar's ``repr`` shows domains and counts only.
"""

from __future__ import annotations

import http.cookiejar
import io
import re
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidRequest

__all__ = ["CookieSet", "parse_cookies"]

_HEADER = "# Netscape HTTP Cookie File\n"
_MAX_COOKIES = 2000
_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_DOMAIN = re.compile(r"^\.?[A-Za-z0-9.-]+$")


@dataclass(frozen=True)
class CookieSet:
    """Cookies in Netscape format; ``text`` is secret (never in ``repr``)."""

    text: str = field(repr=False)
    domains: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"CookieSet(domains={list(self.domains)!r})"

    def __bool__(self) -> bool:
        return bool(self.domains)

    @property
    def values(self) -> list[str]:
        """Every cookie value (for redaction: whatever shows text to people removes these)."""
        return [c.value for c in self.jar() if c.value]

    def jar(self) -> http.cookiejar.MozillaCookieJar:
        """A fresh jar with these cookies (expired ones dropped, as yt-dlp's loader does)."""
        jar = http.cookiejar.MozillaCookieJar()
        if not self.domains:  # none (the default set has no text at all)
            return jar
        # MozillaCookieJar only reads files: _really_load takes any text stream
        jar._really_load(io.StringIO(self.text), "<cookies>", ignore_discard=True, ignore_expires=False)  # type: ignore[attr-defined]
        return jar

    def merged(self, other: CookieSet) -> CookieSet:
        """These cookies and ``other``'s (``other`` wins for the same domain, path and name)."""
        if not other:
            return self
        if not self:
            return other
        return _from_cookies([*self.jar(), *other.jar()])


def parse_cookies(data: str | Iterable[Mapping[str, Any]]) -> CookieSet:
    """A jar from Netscape text or from ``[{"domain", "name", "value", "path"?, "secure"?, "expires"?}]``.
    InvalidRequest (never quoting a value) when malformed."""
    if isinstance(data, str):
        jar = http.cookiejar.MozillaCookieJar()
        # curl and browsers' exports mark HttpOnly cookies with a prefix the stdlib reads as a comment
        text = _HEADER + re.sub(r"(?m)^#HttpOnly_", "", data)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the stdlib warns ("http.cookiejar bug!"), then raises
                jar._really_load(io.StringIO(text), "<cookies>", ignore_discard=True, ignore_expires=True)  # type: ignore[attr-defined]
        except (http.cookiejar.LoadError, ValueError, IndexError):
            raise InvalidRequest("cookies: not a Netscape cookies.txt file", field="cookies") from None
        return _from_cookies(list(jar))
    return _from_cookies([_cookie(item) for item in data])


def _cookie(item: Mapping[str, Any]) -> http.cookiejar.Cookie:
    if not isinstance(item, Mapping):
        raise InvalidRequest("cookies: each cookie must be an object", field="cookies")
    domain, name, value = (str(item.get(k) or "") for k in ("domain", "name", "value"))
    path = str(item.get("path") or "/")
    expires = item.get("expires")
    if not _DOMAIN.match(domain) or not _NAME.match(name) or not path.startswith("/"):
        raise InvalidRequest("cookies: each needs a domain, a token name and a /path", field="cookies")
    if any(c in value for c in ";\r\n\0") or (expires is not None and not isinstance(expires, int)):
        raise InvalidRequest("cookies: a value has ; or a line break, or expires is not an int",
                             field="cookies")  # fmt: skip
    return http.cookiejar.Cookie(
        0, name, value, None, False, domain, True, domain.startswith("."), path, True,
        bool(item.get("secure")), expires, expires is None, None, None, {},
    )  # fmt: skip


def _from_cookies(cookies: list[http.cookiejar.Cookie]) -> CookieSet:
    if len(cookies) > _MAX_COOKIES:
        raise InvalidRequest(f"cookies: at most {_MAX_COOKIES}", field="cookies")
    now = time.time()
    kept: dict[tuple[str, str, str], http.cookiejar.Cookie] = {}
    for cookie in cookies:
        if cookie.expires and cookie.expires <= now:  # 0 or none: a session cookie
            continue
        if any(c in (cookie.value or "") for c in "\t\r\n") or not _DOMAIN.match(cookie.domain):
            raise InvalidRequest("cookies: a tab or line break in a cookie, or a bad domain", field="cookies")
        kept[(cookie.domain, cookie.path, cookie.name)] = cookie
    lines = [_HEADER]
    for c in kept.values():
        lines.append(
            "\t".join([c.domain, "TRUE" if c.domain.startswith(".") else "FALSE", c.path,
                       "TRUE" if c.secure else "FALSE", str(c.expires or ""), c.name, c.value or ""]) + "\n"
        )  # fmt: skip
    return CookieSet("".join(lines), tuple(sorted({c.domain.lstrip(".") for c in kept.values()})))
