"""Background tasks that never die silently: a failure is logged at ERROR with its traceback and the task
starts again after a backoff, until it is cancelled.

Each loop (claims, heartbeats, the reaper, the sweeper, webhook delivery) handles the failures it expects
(the store down for a while) itself, round by round; what escapes it (a bug, a surprise from a store
or a library) reaches :func:`supervise`, which restarts the loop instead of leaving the engine without it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["HEALTHY_AFTER", "restart_delay", "supervise", "supervised_task"]

HEALTHY_AFTER = 60.0  # seconds a restarted loop must run before its failures count from zero again


def restart_delay(failures: int, base: float = 0.5, cap: float = 30.0) -> float:
    """Seconds before restarting a loop that failed ``failures`` times in a row: 0.5, 1, 2, ... 30."""
    return min(cap, base * 2.0 ** max(0, failures - 1))


async def supervise(name: str, loop: Callable[[], Coroutine[Any, Any, None]], log: logging.Logger) -> None:
    """Run ``loop()``; when it raises, log it and run it again after :func:`restart_delay`.

    Returns when ``loop()`` returns (it was told to stop); cancelling this task cancels the loop."""
    failures = 0
    while True:
        started = time.monotonic()
        try:
            await loop()
            return
        except Exception:
            failures = 1 if time.monotonic() - started > HEALTHY_AFTER else failures + 1
            delay = restart_delay(failures)
            log.error("%s failed (%d in a row); restarting in %.1fs", name, failures, delay, exc_info=True)
        await asyncio.sleep(delay)


def supervised_task(
    name: str, loop: Callable[[], Coroutine[Any, Any, None]], log: logging.Logger
) -> asyncio.Task[None]:
    """``asyncio.create_task`` of :func:`supervise`, named ``name``."""
    return asyncio.create_task(supervise(name, loop, log), name=name)
