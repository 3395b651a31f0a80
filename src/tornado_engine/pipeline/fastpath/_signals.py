"""How a fast download stops short: fall back to yt-dlp, a transport failure, or another connection's."""

from __future__ import annotations

__all__ = ["Fallback", "NetError", "Stopped"]


class Fallback(Exception):
    """Not for the fast path after all: let yt-dlp do it (what was fetched is thrown away)."""


class NetError(Exception):
    """A transport failure, worded like yt-dlp's so that classification and messages match."""


class Stopped(Exception):
    """Another connection of the same download failed; this one just stops."""
