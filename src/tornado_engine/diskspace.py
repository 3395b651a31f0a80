"""A disk that fills: which failures mean "no space left", and whether a download fits (pure).

ENOSPC reaches the engine in several shapes: an ``OSError`` from our own writes (the fast path's
``pwrite``, local storage), a yt-dlp ``DownloadError`` that only carries the text ("unable to write data:
[Errno 28] No space left on device") and the original error in ``exc_info``, and ffmpeg's stderr. Every
boundary asks :func:`is_disk_full` or :func:`mentions_disk_full`, so the rule is written once; the kind
they map to is ``disk_full`` (transient: retried with backoff, since other jobs' files go away).

Before a download, :func:`room_problem` says whether the resolver's expected size fits in the free space
minus a reserve kept for the mux output, the store and everything else on that disk.
"""

from __future__ import annotations

import errno

__all__ = ["DEFAULT_RESERVE_BYTES", "is_disk_full", "mentions_disk_full", "room_problem"]

DEFAULT_RESERVE_BYTES = 256 * 1024 * 1024  # Engine(disk_reserve_bytes=...)

_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_TEXTS = ("no space left on device", "disk quota exceeded", "errno 28]")
_MB = 1024 * 1024


def mentions_disk_full(text: str) -> bool:
    """True when a tool's message (ffmpeg's stderr, yt-dlp's error text) says the disk is full."""
    low = text.lower()
    return any(marker in low for marker in _TEXTS)


def is_disk_full(exc: BaseException | None) -> bool:
    """True when ``exc``, its causes, or the error a yt-dlp ``DownloadError`` wraps is a full disk."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _ERRNOS:
            return True
        if mentions_disk_full(str(exc)):
            return True
        wrapped = getattr(exc, "exc_info", None)  # yt-dlp keeps the original error there
        inner = wrapped[1] if isinstance(wrapped, tuple) and len(wrapped) > 1 else None
        if isinstance(inner, BaseException) and is_disk_full(inner):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def room_problem(*, free: int, expected: int, reserve: int, promised: int = 0) -> str | None:
    """Why a download of ``expected`` bytes (0: unknown) must wait, or None when it fits.

    ``promised``: what the other downloads running on that disk are still expected to write, so that
    many jobs checking at once do not all count the same free space. Unknown sizes still need the
    reserve itself to be free: a disk that is already that full would only fail the job halfway."""
    room = free - max(promised, 0) - reserve
    if room >= max(expected, 0) and room > 0:
        return None
    need = f"about {-(-expected // _MB)} MB" if expected > 0 else "an unknown size"
    return (
        f"Not enough disk space: the download needs {need}, {max(room, 0) // _MB} MB are free "
        f"beyond the {reserve // _MB} MB reserve and the running downloads"
    )
