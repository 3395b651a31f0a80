"""The in-process resolve of a plain media file: one GET's response head over the fast path's connection,
then :func:`.directinfo.direct_info` (blocking; run in a stage thread).

The connection goes to addresses the network policy judged, or through the network guard's tunnel when
the job has upstream proxies (the guard chains them), after the engine's per-host pacer allows it, as a
fast download's do. No redirect is followed and the body is never read. ``TORNADO_RESOLVE=ytdlp`` turns
this off (every URL resolved by yt-dlp), for comparisons.
"""

from __future__ import annotations

import contextlib
import os
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

from ..errors import JobCancelled, StageError
from ..safety import NetworkPolicy
from ..sources.pacer import HostPacer
from ..sources.settings import JobSources
from ..ytdlp_loader import load_ytdlp
from .directinfo import GENERIC_KEY, direct_info, request_headers
from .fastpath._signals import Fallback, NetError
from .fastpath.connection import Session
from .fastpath.eligibility import FastSource

__all__ = ["ENV_RESOLVE", "direct_enabled", "resolve_direct_sync"]

ENV_RESOLVE = "TORNADO_RESOLVE"  # "ytdlp": yt-dlp resolves every URL; anything else: plain files here


def direct_enabled() -> bool:
    """Read at each resolve, so one engine can be measured both ways."""
    return os.environ.get(ENV_RESOLVE, "").strip().lower() != "ytdlp"


def resolve_direct_sync(
    url: str,
    *,
    policy: NetworkPolicy | None,
    proxy: str | None,
    cancel: threading.Event,
    socket_timeout: float,
    sources: JobSources,
) -> dict[str, Any] | None:
    """yt-dlp's info for ``url`` built here; None when yt-dlp must resolve it (a site extractor claims
    it, the connection failed, the answer is not a plain file). Raises JobCancelled when cancelled."""
    load_ytdlp()
    from ..ytdlp_registry import extractor_for

    if extractor_for(url) != GENERIC_KEY:  # a site extractor claims the URL: its resolve, not ours
        return None
    if sources.pacer is not None and sources.pacer.policy.connections is not None:
        # a host with a connection limit: our GET, dropped after its head, stays open on the host's side
        # until it notices, so the next connection could pass the limit there; yt-dlp's resolve through
        # the guard is paced as before
        return None
    source = FastSource(url, tuple(request_headers().items()), "", "", None)
    try:
        with _paced(sources, url, cancel) as pacer:
            session = Session(source, policy, proxy, cancel, socket_timeout,
                              throttle=sources.throttle, pacer=pacer)  # fmt: skip
            sock = session.connect()
            try:
                response = session.ask(sock, url)
            finally:
                sock.close()  # the head is all it takes
    except (Fallback, NetError, StageError):  # yt-dlp tries again and words the failure as before
        if cancel.is_set():
            raise JobCancelled("cancelled while resolving") from None
        return None
    if response.status == 429 or (response.status == 503 and "retry-after" in response.headers):
        # the host said "slow down": its back-off starts for every job, and this one retries after it
        # (handing the URL to yt-dlp would ask the host again at once)
        raise session.http_error(response)
    return direct_info(url, response.status, response.headers)


@contextlib.contextmanager
def _paced(sources: JobSources, url: str, cancel: threading.Event) -> Iterator[tuple[HostPacer, str] | None]:
    """One of the host's connections from the engine's per-host pacer, held as a download's are."""
    pacer = sources.pacer
    if pacer is None:
        yield None
        return
    host = urllib.parse.urlsplit(url).hostname or ""
    with pacer.hold(host, sources.job_id, 1, cancel):
        yield pacer, sources.job_id
