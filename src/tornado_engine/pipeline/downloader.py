"""Downloader: fetch the chosen streams into the job's own folder (yt-dlp, in a thread).

Cancel is cooperative: the progress hook raises :class:`JobCancelled` when the job's flag is set, and
yt-dlp lets that exception through unchanged.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import partialfile
from ..bounds import ResolveBounds
from ..errors import DownloadError, JobCancelled
from ..options import MediaOptions
from ..progress import DownloadProgress, ProgressCallback
from ..sources.settings import JobSources
from ..ytdlp import download_params, is_live, map_error
from ..ytdlp_loader import load_ytdlp
from ._ytparts import Changed, Parts
from .children import stop_on_cancel
from .resolver import SELECTED_KEY
from .sidecar import SideFiles, fetch_side_files

__all__ = ["DownloadResult", "download_sync", "requested_formats"]


@dataclass(frozen=True)
class DownloadResult:
    files: list[Path]
    format_ids: list[str]
    bytes: int
    seconds: float
    side: SideFiles = field(default_factory=SideFiles)  # subtitles and thumbnail, when asked for


def requested_formats(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The formats the resolver picked (``bv,ba/b`` gives one or two), or the info itself."""
    by_id = {str(f.get("format_id")): f for f in info.get("formats") or []}
    chosen = [by_id[i] for i in info.get(SELECTED_KEY) or [] if i in by_id]
    return chosen or [info]


def download_sync(
    info: dict[str, Any],
    job_dir: Path,
    *,
    on_progress: ProgressCallback,
    cancel: threading.Event,
    socket_timeout: float = 20.0,
    options: MediaOptions | None = None,
    proxy: str | None = None,
    ffmpeg_dir: str | None = None,
    bounds: ResolveBounds | None = None,
    sources: JobSources | None = None,
) -> DownloadResult:
    """Blocking (run it in a thread): yt-dlp downloads the resolved ``info`` into ``job_dir``, resuming
    the ``.part`` files an earlier try left when their source is still the same version (:mod:`._ytparts`).

    A manifest yt-dlp fetches again here is held to ``bounds`` as the resolve's were."""
    run = functools.partial(
        _download, info, job_dir, on_progress=on_progress, cancel=cancel, socket_timeout=socket_timeout,
        options=options, proxy=proxy, ffmpeg_dir=ffmpeg_dir, bounds=bounds, sources=sources,
    )  # fmt: skip
    try:
        return run()
    except Changed:  # the resumed source is another version now: its .part files go, start over
        partialfile.disown(job_dir)
        return run()


def _download(
    info: dict[str, Any],
    job_dir: Path,
    *,
    on_progress: ProgressCallback,
    cancel: threading.Event,
    socket_timeout: float,
    options: MediaOptions | None,
    proxy: str | None,
    ffmpeg_dir: str | None,
    bounds: ResolveBounds | None,
    sources: JobSources | None,
) -> DownloadResult:
    load_ytdlp()  # on first use, not with the package (see ytdlp_loader)
    from yt_dlp.utils import YoutubeDLError

    from ..ytdlp_registry import new_ydl
    from .manifest_guard import guard, raise_exceeded

    formats = requested_formats(info)
    tracker = DownloadProgress(formats, info.get("duration"))
    parts = Parts(job_dir, formats)
    info = copy.deepcopy(info)
    parts.prepare(info)

    def hook(d: dict[str, Any]) -> None:
        if cancel.is_set():
            raise JobCancelled("cancelled during download")
        parts.progress(d)
        percent = tracker.update(d)
        on_progress(percent, tracker.total_bytes_done, d.get("speed"), d.get("eta"))

    started = time.monotonic()
    live = is_live(info)
    params = download_params(
        job_dir, ffmpeg_dir, hook, socket_timeout=socket_timeout, options=options, live=live
    )
    if proxy:  # the network guard; the side call inherits it with the rest of these parameters
        params["proxy"] = proxy
    params.update(sources.ytdlp_params() if sources is not None else {})  # cookies, rate, impersonate
    # a live recording's ffmpeg never calls the hook: on cancel it gets SIGINT (and yt-dlp returns)
    watch = stop_on_cancel(cancel, job_dir) if live else contextlib.nullcontext()
    try:
        with watch, new_ydl(params) as ydl:
            guard(ydl, bounds or ResolveBounds(), manifests_only=True)
            _observe(ydl, parts)
            result = ydl.process_ie_result(info, download=True)
    except (JobCancelled, Changed):
        raise
    except YoutubeDLError as exc:
        if cancel.is_set():  # a stalled socket surfaces as a timeout after the cancel (recipe 4)
            raise JobCancelled("cancelled during download") from exc
        raise_exceeded(exc)
        raise map_error(exc, resolving=False) from exc
    downloads = result.get("requested_downloads") or []
    files = [Path(d["filepath"]) for d in downloads if d.get("filepath")]
    if not files or not all(f.is_file() for f in files):
        raise DownloadError("The download produced no file", kind="invalid_media")
    parts.finished(files)
    ids = [str(d.get("format_id") or result.get("format_id")) for d in downloads]
    size = sum(f.stat().st_size for f in files)
    side = SideFiles()
    if options is not None:
        side = fetch_side_files(info, job_dir, params, options)
    return DownloadResult(files, ids, size, time.monotonic() - started, side)


def _observe(ydl: Any, parts: Parts) -> None:
    """Every response the download gets goes past ``parts`` (a resumed source must be the same version)."""
    urlopen = ydl.urlopen

    def observed(request: Any) -> Any:
        response = urlopen(request)
        try:
            parts.response(request, response)
        except Changed:
            response.close()
            raise
        return response

    ydl.urlopen = observed
