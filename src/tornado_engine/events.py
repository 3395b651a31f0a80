"""In-process fan-out of job events to ``engine.events(job_id)`` subscribers and ``engine.wait`` callers."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator

from .progress import Event
from .states import TERMINAL

__all__ = ["EventHub"]


class EventHub:
    """Subscribers get every event of one job from the moment they subscribe; the last is terminal."""

    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue[Event]]] = defaultdict(set)
        self._last: dict[str, Event] = {}
        self._finished: dict[str, asyncio.Event] = {}

    def has_subscribers(self, job_id: str) -> bool:
        """Whether anyone follows ``job_id`` now."""
        return bool(self._queues.get(job_id))

    def publish(self, event: Event) -> None:
        """Hand ``event`` to its job's subscribers; a terminal one also wakes the job's waiters."""
        if event.status in TERMINAL:
            self._last.pop(event.job_id, None)
            if done := self._finished.get(event.job_id):
                done.set()
        else:
            self._last[event.job_id] = event
        for queue in self._queues.get(event.job_id, ()):
            queue.put_nowait(event)

    @contextlib.contextmanager
    def watch(self, job_id: str) -> Iterator[asyncio.Event]:
        """An event set when ``job_id``'s terminal event is published here; waiters of one job share it."""
        done = self._finished.setdefault(job_id, asyncio.Event())
        try:
            yield done
        finally:
            self._finished.pop(job_id, None)

    async def subscribe(self, job_id: str, first: Event | None) -> AsyncIterator[Event]:
        """Yield events until a terminal one. ``first``: the job's state as read from the store."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._queues[job_id].add(queue)
        try:
            latest = self._last.get(job_id) or first
            if latest is not None:
                yield latest
                if latest.status in TERMINAL:
                    return
            while True:
                event = await queue.get()
                yield event
                if event.status in TERMINAL:
                    return
        finally:
            self._queues[job_id].discard(queue)
            if not self._queues[job_id]:
                del self._queues[job_id]
