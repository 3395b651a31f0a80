"""What holds the event loop when it is late: a thread samples the loop thread's stack (bench_width.py).

The loop notes the time every few milliseconds (:meth:`LoopWatchdog.tick`, from a task); a thread looks
every ``interval`` and, while the last note is older than ``threshold``, takes the loop thread's stack
(``sys._current_frames``) and counts it by its innermost frames. A stack in ``select`` means the loop was
waiting for the GIL or the CPU, not running code of its own.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
import traceback

__all__ = ["LoopWatchdog"]


class LoopWatchdog:
    def __init__(self, threshold: float = 0.15, interval: float = 0.05, depth: int = 5) -> None:
        self.threshold, self.interval, self.depth = threshold, interval, depth
        self.stacks: collections.Counter[str] = collections.Counter()
        self.samples = 0
        self._loop_thread = threading.get_ident()  # made on the loop's thread
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="loop-watchdog", daemon=True)

    def tick(self) -> None:
        self._last = time.monotonic()

    def start(self) -> None:
        self.tick()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            if time.monotonic() - self._last <= self.threshold:
                continue
            frame = sys._current_frames().get(self._loop_thread)
            if frame is None:
                continue
            frames = traceback.extract_stack(frame)[-self.depth :]
            where = " < ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.name}" for f in reversed(frames))
            self.stacks[where] += 1
            self.samples += 1

    def summary(self, top: int = 3) -> str:
        """The ``top`` stacks seen while late, with their share of the samples."""
        if not self.samples:
            return f"never > {self.threshold * 1000:.0f} ms late"
        shares = "; ".join(f"{n} x {where}" for where, n in self.stacks.most_common(top))
        return f"{self.samples} samples > {self.threshold * 1000:.0f} ms late: {shares}"
