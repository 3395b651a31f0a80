"""Fast path for plain HTTP(S) media: parallel requests on kept-alive connections, straight into the files.

yt-dlp's downloaders fetch through the network guard's proxy (an extra copy of every byte in this
process, a new connection per request) in small blocks. For the two common shapes this package does the
same job with a few keep-alive connections whose reads (``recv_into`` a large buffer) and writes
(``pwrite``) release the GIL, so they really run in parallel:

- a progressive file (one format, one plain URL): ``Range`` chunks written at their offsets;
- DASH (the picked representations, fragments listed by plain URLs on one origin): fragments fetched
  ahead on all connections and appended to each representation's file in order, as yt-dlp's own DASH
  downloader concatenates them (the muxer then copies them into the container, as before).

It is taken only when it is safe to: not live, no cookies but the job's own jar (sent per request as
http.cookiejar matches them), no impersonation, byte-range fragments or DRM, safe request
headers and a media extension; a progressive server must answer the first ranged request with ``206``
and a ``Content-Range`` total. Anything unusual (no Range support, a redirect, an encoded or chunked
body, a failed first request) returns ``None``, nothing is kept, and the caller runs yt-dlp, which then
meets (and words) errors as it always did. Failures past the first request (a reset, a timeout, a body
cut short, an HTTP error) raise :class:`~tornado_engine.errors.DownloadError` with the kinds yt-dlp's
would get (fragments are retried like its ``fragment_retries``), so the runner's retries work alike;
what a progressive file got is kept, with its sidecar, and the next try resumes it (see :mod:`.progressive`).

Network policy: the host is resolved and judged once by :class:`~tornado_engine.safety.NetworkPolicy`
and every connection goes to an address it allowed (never a fresh lookup: no DNS rebinding); without a
policy (the download stage gives none when the job has upstream proxies), connections are ``CONNECT``
tunnels through the network guard, which judges them itself and chains the job's upstream proxy. A
refused address raises ``DownloadError`` ("Blocked by network policy ...") and nothing is sent to it.
Redirects are never followed here (they fall back).

Cancel (a ``threading.Event``) is checked at least every :data:`TICK` seconds by every connection, also
while a socket is silent; a source slower than the stall policy (:class:`~tornado_engine.bounds.StallPolicy`,
metered over all the download's connections together) ends it with kind ``stalled``; progress goes to
the same callback as yt-dlp's path, in order, never backwards.
Connections beyond each download's first come from an engine-wide budget (:data:`EXTRA_CONNECTIONS`).

    eligibility   which downloads it takes and what it would fetch (pure)
    connection    connections pinned to policy-checked addresses (or through the guard); HTTP/1.1 requests
    progressive   one plain file: ranged chunks on parallel connections, written at their offsets
    dash          DASH fragments on parallel connections, appended to each representation's file in order
    tuning        per-download tuning, the engine-wide connection budget, the cancel tick
    errors        fall back, transport failure, stop: how the parts tell download_sync how a download ended
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ... import partialfile
from ...bounds import StallPolicy
from ...errors import JobCancelled, StageError
from ...options import MediaOptions
from ...progress import ProgressCallback
from ...safety import NetworkPolicy
from ...sources.pacer import HostPacer
from ...sources.settings import JobSources
from ...ytdlp import download_params, map_error
from ..downloader import DownloadResult
from ..sidecar import SideFiles, fetch_side_files
from ._signals import Fallback, NetError
from .connection import Session
from .dash import fetch_dash
from .eligibility import FastDash, FastSource, FastStream, eligible
from .progressive import fetch_file
from .tuning import EXTRA_CONNECTIONS, TICK, FastPathTuning

__all__ = [
    "EXTRA_CONNECTIONS", "TICK", "FastDash", "FastPathTuning", "FastSource", "FastStream", "download_sync",
    "eligible",
]  # fmt: skip


def download_sync(
    info: dict[str, Any],
    job_dir: Path,
    *,
    on_progress: ProgressCallback,
    cancel: threading.Event,
    socket_timeout: float = 20.0,
    policy: NetworkPolicy | None = None,
    proxy: str | None = None,
    options: MediaOptions | None = None,
    ffmpeg_dir: str | None = None,
    tuning: FastPathTuning | None = None,
    stall: StallPolicy | None = None,
    sources: JobSources | None = None,
) -> DownloadResult | None:
    """Blocking. The download, or None when yt-dlp should do it (then nothing is left in ``job_dir``).

    ``policy``: judge and pin the host's addresses here; without it, connect through ``proxy`` (the
    network guard). With neither, returns None. ``stall``: a source slower than this ends the download
    with a ``DownloadError`` of kind ``stalled``. ``sources``: the job's cookies (sent where
    http.cookiejar matches them) and bandwidth throttle.
    """
    source = eligible(info, options)
    if source is None:
        return None
    tuning = tuning or FastPathTuning()
    if isinstance(source, FastDash):
        paths = [job_dir / st.filename for st in source.streams]
        ids = [st.format_id for st in source.streams]
    else:
        paths, ids = [job_dir / source.filename], [source.format_id]
    started = time.monotonic()
    try:
        with _host_connections(source, sources, tuning, cancel) as (tuning, pacer):
            jar = sources.cookies.jar() if sources is not None and sources.cookies else None
            throttle = sources.throttle if sources is not None else None
            session = Session(source, policy, proxy, cancel, socket_timeout, stall, jar, throttle, pacer)
            if isinstance(source, FastDash):
                size = fetch_dash(source, paths, session, tuning, on_progress)
            else:
                size = fetch_file(source, paths[0], session, tuning, on_progress)
    except (Fallback, NetError) as exc:
        if cancel.is_set():  # what was written stays: the runner removes a cancelled job's folder
            raise JobCancelled("cancelled during download") from None
        if isinstance(exc, Fallback):
            _remove(paths)
            return None
        raise map_error(Exception(f"Got error: {exc}"), resolving=False) from None
    except (StageError, JobCancelled):  # what a progressive file got is kept to resume (a shutdown's too)
        raise
    except BaseException:
        _remove(paths)
        raise
    seconds = time.monotonic() - started
    side = SideFiles()
    if options is not None and (options.subtitle_languages or options.thumbnail):
        params = download_params(
            job_dir, ffmpeg_dir, lambda d: None, socket_timeout=socket_timeout, options=options
        )
        if proxy:
            params["proxy"] = proxy
        params.update(sources.ytdlp_params() if sources is not None else {})
        side = fetch_side_files(info, job_dir, params, options)
    return DownloadResult(paths, ids, size, seconds, side)


@contextlib.contextmanager
def _host_connections(
    source: FastSource | FastDash, sources: JobSources | None, tuning: FastPathTuning, cancel: threading.Event
) -> Iterator[tuple[FastPathTuning, tuple[HostPacer, str] | None]]:
    """The download's connections to its host, held from the engine's per-host pacer (waiting for one
    at least): the tuning for as many as it got, and the pacer each request asks."""
    pacer = sources.pacer if sources is not None else None
    if pacer is None or sources is None:
        yield tuning, None
        return
    host = urllib.parse.urlsplit(source.url).hostname or ""
    with pacer.hold(host, sources.job_id, tuning.connections, cancel) as got:
        yield dataclasses.replace(tuning, connections=got), (pacer, sources.job_id)


def _remove(paths: list[Path]) -> None:
    for path in paths:
        partialfile.discard(path)
