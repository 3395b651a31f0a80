"""URL and network policy (SSRF guard) and secret redaction.

Judged on **resolved addresses**, never on the URL's text: ``http://2130706433/``, ``http://0177.0.0.1/``
and ``http://127.1/`` all resolve to 127.0.0.1 and are refused like it. By default only globally routable
unicast addresses are allowed; named networks can be allowed explicitly (tests and the demo need
127.0.0.0/8), by ``Engine(allow_networks=[...])`` or ``TORNADO_ALLOW_NETWORKS="127.0.0.0/8,::1/128"``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import socket
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .codecs import CONTAINERS
from .errors import BlockedAddress, InvalidRequest, UnresolvableHost

__all__ = [
    "ALLOW_ENV",
    "ALLOW_HINT",
    "MEDIA_EXTENSIONS",
    "UNREACHABLE_REASON",
    "BlockedAddress",
    "IPAddress",
    "IPNetwork",
    "NetworkPolicy",
    "Resolver",
    "check_url_syntax",
    "is_media_extension",
    "redact",
    "remote_text",
    "strip_credentials",
]

ALLOW_ENV = "TORNADO_ALLOW_NETWORKS"
# How an operator opens a private network on purpose (the three ways to set it), named in every refusal.
ALLOW_HINT = f"allow_networks=[CIDR, ...] (Python), --allow-network CIDR (CLI) or {ALLOW_ENV}=CIDR,..."

# The reason phrase of the network guard's 502 when the origin cannot be reached (no address, refused, timed
# out): "502 Origin unreachable (Connection refused by 127.0.0.1:9)". The engine reads it back from the
# downloader's error as a network failure with the origin's own cause (ytdlp.classify).
UNREACHABLE_REASON = "Origin unreachable"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def check_url_syntax(url: str, field: str = "url") -> urllib.parse.SplitResult:
    """http/https only, a host, no credentials in the URL. Raises InvalidRequest naming ``field``."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidRequest(f"{field}: malformed URL ({exc})", field=field) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidRequest(f"{field}: only http and https URLs are allowed", field=field)
    if not parts.hostname:
        raise InvalidRequest(f"{field}: the URL has no host", field=field)
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest(f"{field}: credentials in URLs are not allowed", field=field)
    if port == 0:
        raise InvalidRequest(f"{field}: port 0 is not allowed", field=field)
    return parts


# host, port -> the host's addresses (text); raises OSError (socket.gaierror) when the host does not resolve
Resolver = Callable[[str, int], Sequence[str]]


def _system_resolver(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


@dataclass(frozen=True)
class NetworkPolicy:
    allow_networks: tuple[IPNetwork, ...] = ()
    # how host names are looked up (default: the system's getaddrinfo); every address is judged either way
    resolver: Resolver = dataclasses.field(default=_system_resolver, compare=False, repr=False)

    @classmethod
    def build(cls, allow: Iterable[str] | None = None, resolver: Resolver | None = None) -> NetworkPolicy:
        """Networks from ``allow``, else from ``$TORNADO_ALLOW_NETWORKS`` (comma separated)."""
        if allow is None:
            allow = [n for n in os.environ.get(ALLOW_ENV, "").split(",") if n.strip()]
        try:
            nets = tuple(ipaddress.ip_network(n.strip(), strict=False) for n in allow)
        except ValueError as exc:
            raise InvalidRequest(f"allow_networks: {exc}", field="allow_networks") from None
        return cls(nets, resolver or _system_resolver)

    def allows(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        if any(address in net for net in self.allow_networks):
            return True
        # is_global excludes loopback, private, link-local (169.254.169.254), CGNAT, unique-local...
        return address.is_global and not address.is_multicast

    def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every address ``host`` resolves to, all of which must be allowed (else BlockedAddress)."""
        try:
            found = self.resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise UnresolvableHost(f"cannot resolve host {host!r}: {exc}", field="url") from None
        addresses: list[IPAddress] = []
        for text in found:
            address = ipaddress.ip_address(text.split("%")[0])
            if not self.allows(address):
                raise BlockedAddress(
                    f"Blocked by network policy: {host} resolves to a non-public address ({address}); "
                    f"to allow it: {ALLOW_HINT}",
                    field="url",
                )
            if address not in addresses:
                addresses.append(address)
        return addresses

    def check_url(self, url: str, field: str = "url") -> list[IPAddress]:
        parts = check_url_syntax(url, field)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        try:
            return self.resolve(parts.hostname or "", port)
        except InvalidRequest as exc:
            raise type(exc)(exc.message, field=field) from None


# What a download may leave in the job folder; anything else (.sh, .exe, .html ...) is refused.
MEDIA_EXTENSIONS = frozenset(
    {
        *CONTAINERS,  # what the muxer writes, and what downloads also bring:
        *("m4v", "mka", "oga", "aac", "flac"),
        *("wav", "ts", "m2ts", "flv", "3gp", "avi", "mpg", "mpeg"),
        *("vtt", "srt", "ass", "ttml", "srv1", "srv2", "srv3", "json3"),  # subtitles
        *("jpg", "jpeg", "png", "webp"),  # thumbnails
    }
)


def is_media_extension(name: str) -> bool:
    stem, dot, ext = name.rpartition(".")
    return bool(dot and stem) and ext.lower() in MEDIA_EXTENSIONS


_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s:]+(?::[^/@\s]*)?@")
_SECRET_QUERY = re.compile(
    r"(?i)([?&](?:x-amz-signature|x-amz-credential|x-amz-security-token|signature|sig|se|sp|sv|"
    r"x-goog-signature|x-goog-credential|token|access_token|accesskeyid|key|password|secret)=)[^&#\s]+"
)


def strip_credentials(text: str) -> str:
    """``scheme://user:pass@host`` -> ``scheme://***@host``; signature query values -> ``***``."""
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub(r"\1***@", text))


def remote_text(text: str, limit: int) -> str | None:
    """Text a source sent (a title, a description) as the engine keeps it: at most ``limit`` characters,
    without NUL characters (no reader wants them, and PostgreSQL refuses a record holding one when it
    takes the record apart: that job's last write would fail); None when nothing is left."""
    return text.replace("\x00", "")[:limit] or None


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove known secret values and URL credentials from text meant for logs, errors or records."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return strip_credentials(text)
