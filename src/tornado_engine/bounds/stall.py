"""How slow a transfer may be before it counts as stalled (pure: no I/O, no clock of its own).

A socket timeout fires only when *nothing* arrives; a source that drips a byte a second keeps a job busy
until the server gives up. Like curl's ``--speed-limit``/``--speed-time``, a transfer is stalled when fewer
than ``min_bytes_per_second * window_seconds`` bytes arrived in the last ``window_seconds`` (counted from
its start, so a new transfer gets one whole window first). Enforced where the bytes flow: the fast path,
the network guard every yt-dlp and ffmpeg request goes through, and uploads.

An upload is watched by what its SDK reports (:class:`WriteWatch`): a multipart SDK says nothing until a
whole part (or a few, in parallel) is written, so a write of ``unit`` bytes may take ``unit /
min_bytes_per_second`` seconds plus one window before it counts as stalled.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass

__all__ = ["StallMeter", "StallPolicy", "WriteWatch"]

_BUCKETS = 32  # the window is kept as this many time buckets: memory stays constant at any rate


@dataclass(frozen=True)
class StallPolicy:
    """``Engine(stall=StallPolicy(...))``; the default: under 1 KiB/s for 30 s is a stall."""

    min_bytes_per_second: int = 1024
    window_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.min_bytes_per_second < 0:
            raise ValueError("min_bytes_per_second must not be negative")
        if self.window_seconds <= 0:
            raise ValueError("window_seconds must be positive")

    @property
    def message(self) -> str:
        """The error text of a stalled job, from this policy's own numbers."""
        rate = self.min_bytes_per_second
        shown = f"{rate / 1024:g} KiB/s" if rate >= 1024 and rate % 1024 == 0 else f"{rate} B/s"
        return f"The source stopped sending data (under {shown} for {self.window_seconds:g} s)"

    @property
    def storage_message(self) -> str:
        """The error text of an upload the storage stopped taking."""
        return self.message.replace("The source stopped sending", "The storage stopped accepting")

    def meter(self, now: float) -> StallMeter:
        return StallMeter(self, now)


class StallMeter:
    """Byte counts of one transfer (or of all a job's connections) over a sliding window.

    ``feed(n, now)`` as bytes arrive, ``stalled(now)`` whenever the caller looks (also while nothing
    arrives). Thread-safe: a download's connections share one meter.
    """

    def __init__(self, policy: StallPolicy, now: float) -> None:
        self.policy = policy
        self._started = now
        self._width = policy.window_seconds / _BUCKETS
        self._buckets: collections.deque[list[float]] = collections.deque()  # [bucket start, bytes]
        self._lock = threading.Lock()

    def restart(self, now: float) -> None:
        """A new phase (e.g. a pause the caller made on purpose): a fresh whole window from ``now``."""
        with self._lock:
            self._started = now
            self._buckets.clear()

    def feed(self, n: int, now: float) -> None:
        with self._lock:
            start = now - (now - self._started) % self._width
            if self._buckets and self._buckets[-1][0] >= start:
                self._buckets[-1][1] += n
            else:
                self._buckets.append([start, float(n)])
            self._trim(now)

    def stalled(self, now: float) -> bool:
        policy = self.policy
        if policy.min_bytes_per_second == 0 or now - self._started < policy.window_seconds:
            return False
        with self._lock:
            self._trim(now)
            got = sum(count for _, count in self._buckets)
        return got < policy.min_bytes_per_second * policy.window_seconds

    def _trim(self, now: float) -> None:
        # a bucket counts while any of it is inside the window: a stall is never called early
        while self._buckets and self._buckets[0][0] + self._width <= now - self.policy.window_seconds:
            self._buckets.popleft()


class WriteWatch:
    """One upload as its SDK reports it: ``report(done, now)`` from the SDK's threads, ``stalled(now)``
    from whoever watches. Stalled when no report came for one window plus the time the next write (up to
    ``unit`` bytes, no more than what is left) takes at the policy's minimum rate."""

    def __init__(self, policy: StallPolicy, unit: int, total: int, now: float) -> None:
        self.policy = policy
        self.unit = max(1, unit)
        self.total = total
        self._done = 0
        self._last = now
        self._lock = threading.Lock()

    def report(self, done: int, now: float) -> None:
        with self._lock:
            if done > self._done:  # a report of no new bytes is no sign of life
                self._done = done
                self._last = now

    def stalled(self, now: float) -> bool:
        rate = self.policy.min_bytes_per_second
        if rate == 0:
            return False
        with self._lock:
            write = min(self.unit, max(0, self.total - self._done))
            return now - self._last > self.policy.window_seconds + write / rate
