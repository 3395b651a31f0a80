"""Each tenant's stored sources (cookie jar, proxy pool), sealed at rest, and the :class:`JobSources` an
attempt gets from them, the engine's :class:`SourceSettings` and the request.

A tenant's jar is merged over the engine's (the tenant's cookie wins for the same domain, path and name);
a tenant's proxy pool replaces the engine's. Pools are kept per sealed value, so their health (failures,
benches) lasts across jobs; the engine-wide bandwidth bucket is shared by every job of this process.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from ..errors import InvalidRequest
from ..models import Job
from ..safety import NetworkPolicy
from ..secrets import SecretBox
from ..store.base import JobStore
from .cookies import CookieSet, parse_cookies
from .pacer import HostPacer
from .proxies import ProxyPool, ProxyRule, parse_proxy
from .ratelimit import Throttle, TokenBucket
from .settings import JobSources, SourceSettings, impersonation_for

__all__ = ["SourceBook", "SourceKind"]

SourceKind = Literal["cookies", "proxies"]


class SourceBook:
    def __init__(
        self,
        store: JobStore,
        settings: SourceSettings,
        network: NetworkPolicy,
        box: Callable[[], SecretBox],
    ) -> None:
        self._store = store
        self.settings = settings
        self._network = network
        self._box = box
        self._pools: dict[str, ProxyPool] = {}
        self._engine_bucket = (
            TokenBucket(settings.total_rate, time.monotonic()) if settings.total_rate else None
        )
        # every job's requests to a host, paced together (connections, requests/s, back-off)
        self.pacer = HostPacer(settings.hosts)

    def __repr__(self) -> str:
        return "SourceBook()"

    async def set_cookies(self, owner: str, data: str | Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        """Keep ``owner``'s jar (Netscape text or cookie objects), sealed. -> {domains, count}"""
        jar = parse_cookies(data)
        if not jar:
            raise InvalidRequest("cookies: no cookie that has not expired", field="cookies")
        await self._store.put_tenant_source(owner, "cookies", self._box().encrypt(jar.text))
        return {"domains": list(jar.domains), "count": len(jar.values)}

    async def set_proxies(
        self, owner: str, urls: Sequence[str], rule: ProxyRule = "round_robin"
    ) -> dict[str, Any]:
        """Keep ``owner``'s proxy pool, sealed; each proxy's address must pass the network policy."""
        pool = ProxyPool([parse_proxy(u) for u in urls], rule=rule)
        loop = asyncio.get_running_loop()
        for proxy in pool.proxies:
            try:
                await loop.run_in_executor(None, self._network.resolve, proxy.host, proxy.port)
            except InvalidRequest as exc:
                raise InvalidRequest(f"proxy {proxy.label}: {exc.message}", field="proxies") from None
        sealed = self._box().encrypt(json.dumps({"proxies": [p.url() for p in pool.proxies], "rule": rule}))
        await self._store.put_tenant_source(owner, "proxies", sealed)
        return {"proxies": [p.label for p in pool.proxies], "rule": rule}

    async def remove(self, owner: str, kind: SourceKind) -> bool:
        """Forget ``owner``'s jar or pool; False if it had none."""
        had = kind in await self._store.get_tenant_sources(owner)
        await self._store.put_tenant_source(owner, kind, None)
        return had

    async def describe(self, owner: str) -> dict[str, Any]:
        """What ``owner`` has stored, without a secret: cookie domains, proxy labels and rule."""
        cookies, pool = await self._tenant(owner)
        return {
            "cookie_domains": list(cookies.domains),
            "proxies": [p.label for p in pool.proxies] if pool else [],
            "proxy_rule": pool.rule if pool else None,
        }

    async def _tenant(self, owner: str) -> tuple[CookieSet, ProxyPool | None]:
        stored = await self._store.get_tenant_sources(owner)
        cookies = CookieSet("")
        if (sealed := stored.get("cookies")) is not None:
            cookies = parse_cookies(self._box().decrypt(sealed))
        pool = None
        if (sealed := stored.get("proxies")) is not None:
            pool = self._pools.get(sealed)
            if pool is None:  # kept: its health outlives one job
                data = json.loads(self._box().decrypt(sealed))
                pool = ProxyPool([parse_proxy(u) for u in data["proxies"]], rule=data["rule"])
                self._pools[sealed] = pool
        return cookies, pool

    async def for_job(self, job: Job) -> JobSources:
        """The sources of ``job``'s attempt: engine settings, its tenant's stored ones, its request's."""
        settings = self.settings
        cookies, pool = await self._tenant(job.owner)
        request = job.request
        rates = [r for r in (request.limit_rate, settings.limit_rate) if r]
        job_rate = min(rates) if rates else None
        buckets = [TokenBucket(job_rate, time.monotonic())] if job_rate else []
        if self._engine_bucket is not None:
            buckets.append(self._engine_bucket)
        return JobSources(
            cookies=settings.cookies.merged(cookies),
            proxies=pool or settings.proxies,
            impersonate=request.impersonate or impersonation_for(request.url, settings.impersonate),
            limit_rate=job_rate,
            extractor_args=settings.extractor_args,
            throttle=Throttle(*buckets),
            pacer=self.pacer,
            job_id=job.id,
        )

    def engine_sources(self, url: str) -> JobSources:
        """For a resolve outside a job (metadata): the engine's own settings for ``url``."""
        settings = self.settings
        return JobSources(
            cookies=settings.cookies, proxies=settings.proxies, limit_rate=settings.limit_rate,
            impersonate=impersonation_for(url, settings.impersonate), extractor_args=settings.extractor_args,
            pacer=self.pacer,
        )  # fmt: skip
