"""Upstream proxies and the pool that picks one per connection (pure: no I/O, the clock is passed in).

A :class:`ProxySpec` is one parsed ``http://``, ``https://`` or ``socks5://`` URL with optional
credentials; its ``repr``, ``str`` and :attr:`ProxySpec.label` never show the password. A
:class:`ProxyPool` chooses among several by a rule (round robin, sticky per job, per host) and benches a
proxy that failed ``fail_limit`` times in a row for ``bench_seconds``; when every proxy is benched, the
one whose bench ends first is used (a job is never refused for want of a proxy).
"""

from __future__ import annotations

import threading
import urllib.parse
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from ..errors import InvalidRequest

__all__ = ["PROXY_SCHEMES", "ProxyPool", "ProxyRule", "ProxySpec", "parse_proxy"]

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
ProxyRule = Literal["round_robin", "sticky_job", "per_host"]
_RULES: tuple[ProxyRule, ...] = ("round_robin", "sticky_job", "per_host")


@dataclass(frozen=True)
class ProxySpec:
    """One upstream proxy. ``password`` is a secret: kept out of ``repr`` and every label."""

    scheme: str
    host: str
    port: int
    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def label(self) -> str:
        """``scheme://host:port`` (no credentials): what errors, logs and records may show."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def __str__(self) -> str:
        return self.label

    def url(self) -> str:
        """The full URL with credentials, for the one place that connects (never for display)."""
        auth = ""
        if self.username or self.password:
            user = urllib.parse.quote(self.username, safe="")
            auth = f"{user}:{urllib.parse.quote(self.password, safe='')}@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{auth}{host}:{self.port}"


def parse_proxy(url: str, field_name: str = "proxy") -> ProxySpec:
    """A proxy URL (``socks5://user:pass@host:1080``); InvalidRequest (without the URL) when malformed."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise InvalidRequest(f"{field_name}: not a proxy URL", field=field_name) from None
    scheme = parts.scheme.lower()
    if scheme not in PROXY_SCHEMES:
        raise InvalidRequest(
            f"{field_name}: the scheme must be one of {', '.join(PROXY_SCHEMES)}", field=field_name
        )
    if not parts.hostname or (parts.path not in ("", "/")) or parts.query or parts.fragment:
        raise InvalidRequest(f"{field_name}: expected scheme://[user:password@]host:port", field=field_name)
    default = {"http": 80, "https": 443}.get(scheme, 1080)
    user, password = urllib.parse.unquote(parts.username or ""), urllib.parse.unquote(parts.password or "")
    if any(len(x.encode()) > 255 or "\n" in x or "\r" in x for x in (user, password)):  # RFC 1929's bound
        raise InvalidRequest(f"{field_name}: a user name or password too long (255 bytes)", field=field_name)
    scheme = "socks5" if scheme == "socks5h" else scheme
    return ProxySpec(scheme, parts.hostname, port or default, username=user, password=password)


@dataclass
class _Health:
    failures: int = 0  # in a row
    benched_until: float = 0.0


class ProxyPool:
    """Choose a proxy for (job, host); count failures; thread-safe (the guard and the fast path share it)."""

    def __init__(
        self,
        proxies: Iterable[ProxySpec],
        *,
        rule: ProxyRule = "round_robin",
        fail_limit: int = 3,
        bench_seconds: float = 60.0,
    ) -> None:
        self.proxies = tuple(proxies)
        if not self.proxies:
            raise InvalidRequest("a proxy pool needs at least one proxy", field="proxies")
        if rule not in _RULES:
            raise InvalidRequest(f"proxy rule must be one of {', '.join(_RULES)}", field="proxy_rule")
        if fail_limit < 1 or bench_seconds < 0:
            raise InvalidRequest("fail_limit must be >= 1 and bench_seconds >= 0", field="proxies")
        self.rule: ProxyRule = rule
        self.fail_limit = fail_limit
        self.bench_seconds = bench_seconds
        self._health = {p: _Health() for p in self.proxies}
        self._next = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ProxyPool([{', '.join(p.label for p in self.proxies)}], rule={self.rule!r})"

    def choose(self, job: str, host: str, now: float) -> ProxySpec:
        """The proxy for this connection: the rule's pick among the healthy ones."""
        with self._lock:
            healthy = [p for p in self.proxies if self._health[p].benched_until <= now]
            if not healthy:  # all benched: the one back soonest
                return min(self.proxies, key=lambda p: self._health[p].benched_until)
            if self.rule == "round_robin":
                self._next += 1
                return healthy[(self._next - 1) % len(healthy)]
            key = job if self.rule == "sticky_job" else host.lower()
            # a stable hash over the whole list, so a key keeps its proxy while that one is healthy
            first = self.proxies[zlib.crc32(key.encode()) % len(self.proxies)]
            if first in healthy:
                return first
            return healthy[zlib.crc32(key.encode()) % len(healthy)]

    def failed(self, proxy: ProxySpec, now: float) -> bool:
        """Count a failure (could not connect, refused the tunnel); True when it benched the proxy."""
        with self._lock:
            health = self._health.get(proxy)
            if health is None:
                return False
            health.failures += 1
            if health.failures < self.fail_limit:
                return False
            health.failures = 0
            health.benched_until = now + self.bench_seconds
            return True

    def succeeded(self, proxy: ProxySpec) -> None:
        with self._lock:
            if (health := self._health.get(proxy)) is not None:
                health.failures = 0

    def benched(self, now: float) -> list[ProxySpec]:
        with self._lock:
            return [p for p in self.proxies if self._health[p].benched_until > now]
