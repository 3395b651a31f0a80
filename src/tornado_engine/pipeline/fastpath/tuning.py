"""How hard the fast path pushes, and what its transfers share: per-download tuning, the engine-wide
budget of extra connections (and the threads it pays for), how often a wait looks at cancel, the progress
callback and how files open."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "CREATE", "EXTRA_CONNECTIONS", "MIB", "TICK", "FastPathTuning", "start_extra",
]  # fmt: skip

TICK = 0.25  # seconds: how often a waiting connection looks at the cancel flag
MIB = 1 << 20
CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)  # mode 0o666: umask decides


@dataclass(frozen=True)
class FastPathTuning:
    """How hard one download pushes; the engine-wide cap on extra connections is :data:`EXTRA_CONNECTIONS`."""

    connections: int = 4  # per download, the first one included
    chunk_size: int = 8 * MIB  # one ranged request
    min_chunk_size: int = 1 * MIB
    buffer_size: int = 256 * 1024  # read buffer per connection; written with one pwrite when full


# Connections beyond each download's first come from one budget, so 500 jobs at once stay at 500 + this
# many sockets and threads (no fd exhaustion), while a lone big download gets all the parallelism it wants.
EXTRA_CONNECTIONS = threading.BoundedSemaphore(48)


def start_extra(threads: list[threading.Thread], wanted: int, work: Callable[[], None]) -> None:
    """Start up to ``wanted`` more connections' threads running ``work``, each paid for from the budget
    and appended to ``threads`` as it starts (so the caller joins every one, also when a start fails)."""
    for _ in range(max(0, wanted)):
        if not EXTRA_CONNECTIONS.acquire(blocking=False):
            break  # the engine-wide budget is used up: this download makes do with fewer
        thread = threading.Thread(target=_run_extra, args=(work,), daemon=True, name="fastpath")
        try:
            thread.start()
        except BaseException:
            EXTRA_CONNECTIONS.release()
            raise
        threads.append(thread)


def _run_extra(work: Callable[[], None]) -> None:
    try:
        work()
    finally:
        EXTRA_CONNECTIONS.release()
