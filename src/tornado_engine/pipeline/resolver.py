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

__all__ = ["resolve"]


def _resolve_sync(url: str, ffmpeg_dir: str | None, socket_timeout: float) -> dict[str, Any]:
    # Resolving writes nothing, but yt-dlp wants a home; give it an empty throwaway one.
    with tempfile.TemporaryDirectory(prefix="tornado-resolve-") as home:
        params = {**base_params(Path(home), ffmpeg_dir, socket_timeout=socket_timeout), **format_selection()}
        try:
            with yt_dlp.YoutubeDL(params) as ydl:
                info = ydl.extract_info(url, download=False)
                # sanitized: JSON-storable, and without resolve-time private keys (recipe pitfall 4)
                clean: dict[str, Any] = ydl.sanitize_info(info, remove_private_keys=True)
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
