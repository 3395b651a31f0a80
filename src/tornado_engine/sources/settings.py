"""What a job's source requests carry: the engine's :class:`SourceSettings` (``Engine(sources=...)``)
and, per attempt, the :class:`JobSources` built from them, the tenant's stored jar and proxy pool, and
the request (pure: validation and yt-dlp parameters, no I/O).

    SourceSettings.build(proxy="socks5://u:p@10.0.0.5:1080", cookies=Path("cookies.txt").read_text(),
                         limit_rate="2M", total_rate="50M", impersonate={"example.com": "chrome"},
                         extractor_args={"youtube": {"player_client": ["web"]}})
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidRequest
from .cookies import CookieSet, parse_cookies
from .hostpace import HostPolicy
from .impersonation import check_extractor_args, check_target
from .pacer import HostPacer
from .proxies import ProxyPool, ProxyRule, parse_proxy
from .ratelimit import Throttle, parse_rate

__all__ = ["COOKIES_PARAM", "JobSources", "SourceSettings", "impersonation_for"]

# yt-dlp parameter (ours; yt-dlp ignores it) whose cookies new_ydl loads into the instance's jar: the
# jar never goes through a file
COOKIES_PARAM = "tornado_cookies"


@dataclass(frozen=True)
class SourceSettings:
    """The engine's source settings; every tenant's jobs get them unless the tenant stored its own."""

    proxies: ProxyPool | None = None
    cookies: CookieSet = field(default_factory=lambda: CookieSet(""))
    limit_rate: int | None = None  # bytes/s for each job
    total_rate: int | None = None  # bytes/s for all the jobs of this process together
    impersonate: Mapping[str, str] = field(default_factory=dict)  # host (or "*") -> target
    extractor_args: Mapping[str, Mapping[str, list[str]]] = field(default_factory=dict)
    # per source host (registrable domain), every job of this process: connections, requests/s, back-off
    hosts: HostPolicy = field(default_factory=HostPolicy)

    @classmethod
    def build(
        cls,
        *,
        proxy: str | Sequence[str] | ProxyPool | None = None,
        proxy_rule: ProxyRule = "round_robin",
        cookies: str | Iterable[Mapping[str, Any]] | CookieSet | None = None,
        limit_rate: str | int | None = None,
        total_rate: str | int | None = None,
        impersonate: str | Mapping[str, str] | None = None,
        extractor_args: Mapping[str, Mapping[str, str | Iterable[str]]] | None = None,
        host_connections: int | None = None,
        host_rate: float | None = None,
        host_backoff: tuple[float, float] | None = None,
    ) -> SourceSettings:
        """Parsed and checked; InvalidRequest (never quoting a secret) on a bad value."""
        if isinstance(proxy, str):
            proxy = [proxy]
        pool = proxy if isinstance(proxy, ProxyPool) or proxy is None else _pool(proxy, proxy_rule)
        if isinstance(impersonate, str):
            impersonate = {"*": impersonate}
        return cls(
            proxies=pool,
            cookies=cookies if isinstance(cookies, CookieSet) else parse_cookies(cookies or ""),
            limit_rate=parse_rate(limit_rate, "limit_rate") if limit_rate is not None else None,
            total_rate=parse_rate(total_rate, "total_rate") if total_rate is not None else None,
            impersonate={_host(h): check_target(t) for h, t in (impersonate or {}).items()},
            extractor_args=check_extractor_args(extractor_args or {}),
            hosts=HostPolicy(host_connections, host_rate, *(host_backoff or ())),
        )


def _pool(urls: Sequence[str], rule: ProxyRule) -> ProxyPool | None:
    return ProxyPool([parse_proxy(u) for u in urls], rule=rule) if urls else None


def _host(host: str) -> str:
    text = str(host).strip().lower().lstrip(".")
    if text != "*" and (not text or any(c in text for c in "/:@ ")):
        raise InvalidRequest(f"impersonate: {host!r} is not a host name", field="impersonate")
    return text


def impersonation_for(url: str, by_host: Mapping[str, str]) -> str | None:
    """The target for ``url``'s host: its own entry, its parent domain's, else ``"*"``'s."""
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    while host:
        if host in by_host:
            return by_host[host]
        host = host.partition(".")[2]
    return by_host.get("*")


@dataclass(frozen=True)
class JobSources:
    """One attempt's sources. Secrets (cookie values, proxy passwords) stay out of ``repr``."""

    cookies: CookieSet = field(default_factory=lambda: CookieSet(""))
    proxies: ProxyPool | None = None
    impersonate: str | None = None
    limit_rate: int | None = None
    extractor_args: Mapping[str, Mapping[str, list[str]]] = field(default_factory=dict)
    throttle: Throttle = field(default_factory=Throttle, repr=False, compare=False)
    # the network guard charges this job's traffic to ``throttle``: yt-dlp's own ``ratelimit`` would be a
    # second limiter in series, and two in series lose ~40% (1.2 MiB/s measured for a 2 MiB/s cap)
    metered: bool = False
    # the engine's per-host pacer, and whose connections these are (the job id) to it
    pacer: HostPacer | None = field(default=None, repr=False, compare=False)
    job_id: str = ""

    def secrets(self) -> list[str]:
        """What must never show: cookie values and proxy credentials (for redaction)."""
        found = list(self.cookies.values)
        if self.proxies is not None:
            found += [p.password for p in self.proxies.proxies if p.password]
        return found

    def ytdlp_params(self) -> dict[str, Any]:
        """yt-dlp parameters for these sources (the proxy is the guard's: it chains the upstream)."""
        params: dict[str, Any] = {}
        if self.cookies:
            params[COOKIES_PARAM] = self.cookies
        if self.limit_rate and not self.metered:
            params["ratelimit"] = self.limit_rate
        if self.impersonate:
            from yt_dlp.networking.impersonate import ImpersonateTarget

            params["impersonate"] = ImpersonateTarget.from_str(self.impersonate)
        if self.extractor_args:
            params["extractor_args"] = {k: dict(v) for k, v in self.extractor_args.items()}
        return params
