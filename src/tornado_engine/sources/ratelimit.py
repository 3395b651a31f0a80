"""Bandwidth limits: a token bucket (pure: the clock is passed in), a rate parser, and a thread-safe
throttle that charges one job's bucket and the engine's together.

A bucket holds at most ``burst`` bytes and refills at ``rate`` bytes per second; :meth:`TokenBucket.take`
always grants the bytes and says how long the caller must wait first (the debt is paid by waiting, so
reads of any size work and the long-run rate is exact).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

from ..errors import InvalidRequest

__all__ = ["Throttle", "TokenBucket", "parse_rate"]

_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?(?:/s)?\s*$", re.IGNORECASE)


def parse_rate(text: str | int | float, field_name: str = "limit_rate") -> int:
    """Bytes per second from ``2M``, ``500K``, ``1.5MiB/s`` or a number (as yt-dlp's --limit-rate)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
    else:
        match = _RATE.match(str(text))
        if match is None:
            raise InvalidRequest(f"{field_name}: expected bytes per second like 2M or 500K", field=field_name)
        value = float(match[1]) * _UNITS[match[2].lower()]
    if value < 1024:
        raise InvalidRequest(f"{field_name}: at least 1K (1024 bytes/s)", field=field_name)
    return int(value)


class TokenBucket:
    """Not thread-safe on its own; :class:`Throttle` locks around it."""

    def __init__(self, rate: float, now: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise InvalidRequest("a rate must be positive", field="limit_rate")
        self.rate = float(rate)
        # a quarter second of traffic: smooth enough to measure over a few seconds, big enough for a read
        self.burst = float(burst) if burst is not None else max(self.rate / 4, 65536.0)
        self.tokens = self.burst
        self.stamp = now

    def take(self, n: int, now: float) -> float:
        """Charge ``n`` bytes; seconds to wait before using them (0 when the bucket had them)."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= n
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class Throttle:
    """The buckets one transfer is charged to (its job's, the engine's); any thread."""

    # one lock for every throttle: the engine's bucket is shared by all the jobs' throttles
    _lock = threading.Lock()

    def __init__(self, *buckets: TokenBucket, clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets = buckets
        self._clock = clock

    def __bool__(self) -> bool:
        return bool(self._buckets)

    def charge(self, n: int) -> float:
        """Seconds the caller must wait for ``n`` bytes (the longest of its buckets' waits)."""
        if not self._buckets or n <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            return max(b.take(n, now) for b in self._buckets)

    def sleep_for(self, n: int) -> None:
        """Blocking: charge ``n`` bytes and wait as long as that says (a stage thread)."""
        if (wait := self.charge(n)) > 0:
            time.sleep(wait)
