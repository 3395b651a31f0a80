"""What a direct media file holds, from a bounded read of its head (and tail): for metadata look-ups.

yt-dlp's generic extractor knows a plain file's URL and extension, nothing of its duration or picture.
This reads the first :data:`HEAD_BYTES` with a ranged GET through the network guard (the same proxy and
policy as every yt-dlp request), writes them into a sparse file of the source's size and probes it
(in-process where it can); an MP4 whose index (``moov``) is at the end needs a second ranged read of the
last :data:`TAIL_BYTES`.
Never more than those two reads, each under ``socket_timeout`` and an overall time budget; a source that
refuses ranges is read for its head only. Any failure just means no probe: the metadata stays as yt-dlp
found it.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import logging
import re
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import MuxError
from .pipeline import muxer
from .probe import MediaInfo

__all__ = ["HEAD_BYTES", "TAIL_BYTES", "HeadProbe", "direct_file", "enrich", "probe_head"]

_log = logging.getLogger("tornado_engine.headprobe")

HEAD_BYTES = 4 * 2**20  # a faststart MP4's index, a WebM/Matroska header: hours of media fit
TAIL_BYTES = 4 * 2**20  # an MP4 index written at the end
_BUDGET = 30.0  # seconds for both reads together
_PROBE_SECONDS = 10.0
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+)", re.I)


@dataclass(frozen=True)
class HeadProbe:
    media: MediaInfo
    size: int | None  # the source's size in bytes, when the server said it
    fetched: int  # bytes read from the source


def direct_file(info: dict[str, Any]) -> tuple[str, dict[str, str]] | None:
    """(URL, request headers) of a plain media file yt-dlp knows nothing about, else None (pure)."""
    formats = info.get("formats") or []
    if not info.get("direct") or len(formats) != 1 or not isinstance(formats[0], dict):
        return None
    fmt = formats[0]
    url = fmt.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or fmt.get("height"):
        return None
    headers = fmt.get("http_headers") or {}
    return url, {k: v for k, v in headers.items() if isinstance(k, str) and isinstance(v, str)}


def enrich(info: dict[str, Any], probe: HeadProbe) -> dict[str, Any]:
    """``info`` with the probe's duration, size, picture and codecs filled in where yt-dlp had none (pure)."""
    media = probe.media
    video = max(
        (s for s in media.of_kind("video") if not s.attached_pic and s.width and s.height),
        key=lambda s: (s.width or 0) * (s.height or 0),
        default=None,
    )
    audio = next(iter(media.of_kind("audio")), None)
    fmt = dict(info["formats"][0])
    fmt.update(
        width=video.width if video else None,
        height=video.height if video else None,
        vcodec=video.codec if video else "none",
        acodec=audio.codec if audio else "none",
    )
    fields: dict[str, Any] = {"width": fmt["width"], "height": fmt["height"]}
    if probe.size:
        fields["filesize"] = fmt["filesize"] = probe.size
    if media.duration and not info.get("duration"):
        fields["duration"] = media.duration
    return {**info, **{k: v for k, v in fields.items() if v is not None}, "formats": [fmt]}


async def probe_head(
    url: str,
    headers: dict[str, str],
    *,
    ffprobe: str,
    proxy: str | None,
    socket_timeout: float = 20.0,
    head_bytes: int = HEAD_BYTES,
    tail_bytes: int = TAIL_BYTES,
) -> HeadProbe | None:
    """Probe the file at ``url`` from its head, then (if that is not enough) its tail; None if unreadable.

    Blocking reads run in a thread; ``proxy``: the network guard (None: a direct connection)."""
    opener = _opener(proxy)
    reader = _Reader(opener, url, headers, socket_timeout, time.monotonic() + _BUDGET)
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory(prefix="tornado-headprobe-") as folder:
        sparse = Path(folder) / "head"
        try:
            size, ranged = await loop.run_in_executor(None, reader.head, sparse, head_bytes)
            media = await _ffprobe(sparse, ffprobe)
            if media is None and ranged and size and size > head_bytes:
                await loop.run_in_executor(None, reader.tail, sparse, size, tail_bytes)
                media = await _ffprobe(sparse, ffprobe)
        except (OSError, ValueError, http.client.HTTPException) as exc:  # urllib's errors are OSErrors
            _log.debug("head probe of a direct file failed: %s", type(exc).__name__)
            return None
    return HeadProbe(media, size, reader.fetched) if media is not None else None


async def _ffprobe(path: Path, ffprobe: str) -> MediaInfo | None:
    try:
        media = await muxer.probe(path, ffprobe, timeout=_PROBE_SECONDS, audio_bit_rate=False)
    except MuxError:
        return None
    return media if media.streams else None


def _opener(proxy: str | None) -> urllib.request.OpenerDirector:
    # never the environment's proxies: the guard, or a direct connection when the engine has none
    handler = urllib.request.ProxyHandler({"http": proxy, "https": proxy} if proxy else {})
    return urllib.request.build_opener(handler)


class _Reader:
    """The two ranged reads, each at most its bound, all within one time budget (in a thread)."""

    def __init__(
        self,
        opener: urllib.request.OpenerDirector,
        url: str,
        headers: dict[str, str],
        timeout: float,
        deadline: float,
    ) -> None:
        self._opener, self._url, self._headers = opener, url, headers
        self._timeout, self._deadline = timeout, deadline
        self.fetched = 0

    def head(self, path: Path, limit: int) -> tuple[int | None, bool]:
        """Write the first ``limit`` bytes into a sparse file of the source's size: (size, ranges served)."""
        with self._get(0, limit - 1) as response:
            ranged = response.status == 206
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range") or "")
            size = int(match[3]) if ranged and match else _length(response)
            data = self._read(response, limit)
        with path.open("wb") as out:
            out.write(data)
            if size and size > len(data):
                out.truncate(size)  # a hole, not bytes on disk: ffprobe seeks over it
        return size, ranged

    def tail(self, path: Path, size: int, limit: int) -> None:
        start = max(0, size - limit)
        with self._get(start, size - 1) as response:
            if response.status != 206:
                raise ValueError("the tail was not served as a range")
            data = self._read(response, size - start)
        with path.open("r+b") as out:
            out.seek(start)
            out.write(data)

    def _get(self, first: int, last: int) -> Any:
        headers = {**self._headers, "Range": f"bytes={first}-{last}", "Accept-Encoding": "identity"}
        request = urllib.request.Request(self._url, headers=headers)
        return self._opener.open(request, timeout=self._timeout)

    def _read(self, response: Any, limit: int) -> bytes:
        chunks: list[bytes] = []
        left = limit
        while left > 0:
            if time.monotonic() > self._deadline:
                raise TimeoutError("head probe time budget spent")
            chunk = response.read(min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
            self.fetched += len(chunk)
        with contextlib.suppress(OSError):
            response.close()  # a source that ignored the range stops sending here
        return b"".join(chunks)


def _length(response: Any) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None
