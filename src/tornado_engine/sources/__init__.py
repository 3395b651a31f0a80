"""Sources (issue 16): what a job's requests to the media site carry.

proxies        upstream proxies (HTTP, HTTPS, SOCKS5) and the pool that picks one, with health
upstream       the network guard's tunnels through them (to the address the guard checked)
cookies        cookie jars: Netscape text or cookie objects, matched by http.cookiejar
ratelimit      bandwidth: a token bucket, per job and engine-wide
impersonation  browser impersonation targets (curl_cffi) and allow-listed extractor arguments
settings       the engine's SourceSettings and one attempt's JobSources
book           each tenant's stored (sealed) jar and pool; an attempt's JobSources
"""

from __future__ import annotations

from .cookies import CookieSet
from .proxies import ProxyPool, ProxySpec
from .settings import JobSources, SourceSettings

__all__ = ["CookieSet", "JobSources", "ProxyPool", "ProxySpec", "SourceSettings"]
