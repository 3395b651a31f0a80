"""Playlist probe at submit: is this URL a playlist, channel or show, and what are its entries?

Resolved flat (``extract_flat='in_playlist'``): one request for the feed or page, never one per entry, and
capped, so a 5,000-episode show returns quickly.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import tempfile
import urllib.parse
from collections.abc import Callable
from concurrent.futures import Executor
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..bounds import ResolveBounds
from ..safety import is_media_extension, remote_text
from ..ytdlp import base_params
from ..ytdlp_loader import load_ytdlp

__all__ = ["Playlist", "PlaylistEntry", "names_a_media_file", "probe_playlist"]


@dataclass(frozen=True)
class PlaylistEntry:
    url: str
    title: str | None


@dataclass(frozen=True)
class Playlist:
    url: str
    title: str | None
    entries: list[PlaylistEntry]


def _single_video(info: Any) -> bool:
    """An extractor's unprocessed result that is one video, or nothing (pure)."""
    return not isinstance(info, dict) or info.get("_type", "video") == "video"


def _probe_sync(
    url: str,
    max_entries: int,
    ffmpeg_dir: str | None,
    socket_timeout: float,
    proxy: str | None,
    bounds: ResolveBounds,
) -> Playlist | None:
    load_ytdlp()  # on first use, not with the package (see ytdlp_loader)
    from yt_dlp.utils import YoutubeDLError

    from ..ytdlp_registry import extract_info, new_ydl
    from .manifest_guard import guard

    with tempfile.TemporaryDirectory(prefix="tornado-probe-") as home:
        params = {
            **base_params(Path(home), ffmpeg_dir, socket_timeout=socket_timeout),
            "noplaylist": False,
            "extract_flat": "in_playlist",
            "lazy_playlist": True,
            "playlistend": max_entries,
        }
        if proxy:
            params["proxy"] = proxy
        try:
            with new_ydl(params) as ydl:
                guard(ydl, bounds)  # a huge manifest is refused on its bytes, not parsed here
                # Unprocessed first: a single video (a direct file, most URLs) is known as one from the
                # extractor's own result, and processing it (formats, sorting, selection) would never
                # make it a playlist. Anything else (playlists, and "url" results that point elsewhere)
                # is processed as extract_info(process=True) would, which follows them.
                info: Any = extract_info(ydl, url, download=False, process=False)
                if not _single_video(info):
                    info = ydl.process_ie_result(info, download=False)
        except YoutubeDLError:
            return None  # not for us to judge here: the job's own resolve classifies the failure
    if not isinstance(info, dict) or info.get("_type") not in ("playlist", "multi_video"):
        return None
    entries = []
    for entry in info.get("entries") or []:
        entry_url = entry.get("url") or entry.get("webpage_url") if isinstance(entry, dict) else None
        if isinstance(entry_url, str) and entry_url.startswith(("http://", "https://")):
            title = entry.get("title")  # remote text: kept as the resolver keeps a title
            title = remote_text(title, 500) if isinstance(title, str) else None
            entries.append(PlaylistEntry(entry_url, title))
        if len(entries) >= max_entries:
            break
    return Playlist(url, info.get("title"), entries)


def names_a_media_file(url: str) -> bool:
    """Whether ``url``'s path ends in a media file's name (``.mp4``, ``.webm``, ``.mp3`` ...): one item,
    never a playlist, so it needs no probe (manifests, ``.m3u8``/``.mpd``, are not media files here)."""
    path = urllib.parse.urlsplit(url).path
    return is_media_extension(path.rsplit("/", 1)[-1])


async def probe_playlist(
    url: str,
    *,
    max_entries: int,
    ffmpeg_dir: str | None = None,
    socket_timeout: float = 20,
    executor: Executor | None = None,
    proxy: str | None = None,
    bounds: ResolveBounds | None = None,
    slot: Callable[[], AbstractAsyncContextManager[None]] | None = None,
) -> Playlist | None:
    """The playlist behind ``url``, or None when it is a single item (or cannot be read now).

    ``slot``: a resolve slot held while yt-dlp works (the engine's CPU-sized resolve pool)."""
    bounds = bounds or ResolveBounds()
    call = functools.partial(_probe_sync, url, max_entries, ffmpeg_dir, socket_timeout, proxy, bounds)
    async with slot() if slot is not None else contextlib.nullcontext():
        return await asyncio.get_running_loop().run_in_executor(executor, call)
