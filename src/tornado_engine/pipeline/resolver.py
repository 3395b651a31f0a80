"""Resolver: what is behind a URL (yt-dlp ``extract_info(download=False)``, in a thread)."""

from __future__ import annotations

import asyncio
import functools
import tempfile
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import yt_dlp

from ..errors import ResolveError
from ..ytdlp import base_params, format_selection, map_error

__all__ = ["SELECTED_KEY", "resolve"]

# yt-dlp records its pick only for merged ("+") selections; we keep the "bv,ba/b" pick ourselves so the
# downloader can weigh each stream's share of the progress from the start.
SELECTED_KEY = "tornado_selected_format_ids"


def _selected_format_ids(ydl: yt_dlp.YoutubeDL, info: dict[str, Any], spec: str) -> list[str]:
    formats = info.get("formats") or []
    if not formats:
        return []
    selector = ydl.build_format_selector(spec)
    chosen = selector(
        {
            "formats": formats,
            "has_merged_format": any("none" not in (f.get("acodec"), f.get("vcodec")) for f in formats),
            "incomplete_formats": all(f.get("vcodec") == "none" for f in formats)
            or all(f.get("acodec") == "none" for f in formats),
        }
    )
    return [str(f.get("format_id")) for f in chosen]


def _resolve_sync(url: str, ffmpeg_dir: str | None, socket_timeout: float) -> dict[str, Any]:
    # Resolving writes nothing, but yt-dlp wants a home; give it an empty throwaway one.
    with tempfile.TemporaryDirectory(prefix="tornado-resolve-") as home:
        params = {**base_params(Path(home), ffmpeg_dir, socket_timeout=socket_timeout), **format_selection()}
        try:
            with yt_dlp.YoutubeDL(params) as ydl:
                info = ydl.extract_info(url, download=False)
                # sanitized: JSON-storable, and without resolve-time private keys (recipe pitfall 4)
                clean: dict[str, Any] = ydl.sanitize_info(info, remove_private_keys=True)
                clean[SELECTED_KEY] = _selected_format_ids(ydl, clean, params["format"])
        except yt_dlp.utils.YoutubeDLError as exc:
            raise map_error(exc, resolving=True) from exc
    if clean.get("_type") in ("playlist", "multi_video"):
        raise ResolveError("This URL is a playlist; submit its entries as separate jobs", kind="no_formats")
    return clean


async def resolve(
    url: str, *, ffmpeg_dir: str | None, socket_timeout: float = 20, executor: Executor | None = None
) -> dict[str, Any]:
    call = functools.partial(_resolve_sync, url, ffmpeg_dir, socket_timeout)
    return await asyncio.get_running_loop().run_in_executor(executor, call)
