"""In-process fan-out of job events to ``engine.events(job_id)`` subscribers, ``engine.wait`` callers and
the engine-wide stream (``engine.events()``: every job's events, optionally one tenant's or batch's).

An engine-wide subscriber that reads slower than jobs make progress must not hold memory without bound:
its buffer keeps at most ``limit`` progress events (a running stage's percent, bytes and speed) and drops
the oldest of them first; events that change what a job is doing (a step entered or finished, a status,
the terminal event) are never dropped: there are a handful per job.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from .progress import Event
from .states import TERMINAL, Status

__all__ = ["DEFAULT_STREAM_BUFFER", "EventHub", "is_progress"]

_M = TypeVar("_M", bound=Any)

DEFAULT_STREAM_BUFFER = 1000  # progress events an engine-wide subscriber may have unread


def is_progress(event: Event) -> bool:
    """A running stage's progress: the kind a slow engine-wide subscriber may miss (a newer one follows)."""
    return event.status is Status.PROCESSING and 0.0 < event.stage_percent < 100.0


class _Feed:
    """One engine-wide subscriber's buffer (see the module's doc)."""

    def __init__(self, accept: Callable[[Event], bool], limit: int) -> None:
        self.accept = accept
        self.limit = limit
        self.events: deque[Event] = deque()
        self.progress = 0  # progress events in ``events``
        self.ready = asyncio.Event()
        self.closed = False

    def put(self, event: Event) -> None:
        self.events.append(event)
        self.ready.set()
        if not is_progress(event):
            return
        self.progress += 1
        if self.progress > self.limit:
            oldest = next(e for e in self.events if is_progress(e))
            self.events.remove(oldest)
            self.progress -= 1

    def get(self) -> Event:
        event = self.events.popleft()
        if is_progress(event):
            self.progress -= 1
        if not self.events:
            self.ready.clear()
        return event


class EventHub:
    """Subscribers get every event of one job from the moment they subscribe; the last is terminal."""

    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue[Event]]] = defaultdict(set)
        self._last: dict[str, Event] = {}
        self._finished: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._feeds: set[_Feed] = set()
        self._closed = False

    def has_subscribers(self, job_id: str) -> bool:
        """Whether anyone follows ``job_id`` now."""
        return bool(self._queues.get(job_id))

    def publish(self, event: Event) -> None:
        """Hand ``event`` to its job's subscribers; a terminal one also wakes the job's waiters."""
        if event.status in TERMINAL:
            self._last.pop(event.job_id, None)
            for done in self._finished.get(event.job_id, ()):
                done.set()
        else:
            self._last[event.job_id] = event
        for queue in self._queues.get(event.job_id, ()):
            queue.put_nowait(event)
        # a copy: a subscriber collected meanwhile (its finalizer) leaves the set
        for feed in tuple(self._feeds) if self._feeds else ():
            if feed.accept(event):
                feed.put(event)

    def stream(
        self, accept: Callable[[Event], bool] = lambda event: True, limit: int = DEFAULT_STREAM_BUFFER
    ) -> AsyncIterator[Event]:
        """Every job's events that ``accept`` lets through, from this call on, until :meth:`close`.

        Subscribed at once (not at the first ``anext``), so nothing published between the call and the
        first read is missed; an iterator dropped unread unsubscribes when it is collected."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        feed = _Feed(accept, limit)
        feed.closed = self._closed
        self._feeds.add(feed)
        iterator = self._drain(feed)
        weakref.finalize(iterator, self._feeds.discard, feed)
        return iterator

    async def _drain(self, feed: _Feed) -> AsyncIterator[Event]:
        try:
            while True:
                if not feed.events:
                    if feed.closed:
                        return
                    await feed.ready.wait()
                    continue
                yield feed.get()
        finally:
            self._feeds.discard(feed)

    def close(self) -> None:
        """The engine closes: engine-wide subscribers end once they have read what they hold."""
        self._closed = True
        for feed in tuple(self._feeds):
            feed.closed = True
            feed.ready.set()

    @contextlib.contextmanager
    def watch(self, job_id: str) -> Iterator[asyncio.Event]:
        """An event set when ``job_id``'s terminal event is published here (one per waiter: a waiter that
        leaves does not take the others' away)."""
        done = asyncio.Event()
        self._finished[job_id].add(done)
        try:
            yield done
        finally:
            _leave(self._finished, job_id, done)

    @contextlib.contextmanager
    def listen(self, job_id: str) -> Iterator[asyncio.Queue[Event]]:
        """``job_id``'s events from now on, queued. Listen *before* reading the job's stored state: an
        event published while the store is read is then queued, never lost between the two."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._queues[job_id].add(queue)
        try:
            yield queue
        finally:
            _leave(self._queues, job_id, queue)

    def latest(self, job_id: str) -> Event | None:
        """The last event of a running job published here (None once it ended, or never seen)."""
        return self._last.get(job_id)

    async def subscribe(self, job_id: str, first: Event | None) -> AsyncIterator[Event]:
        """Yield events until a terminal one. ``first``: the job's state as read from the store."""
        with self.listen(job_id) as queue:
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


def _leave(table: dict[str, set[_M]], job_id: str, member: _M) -> None:
    members = table.get(job_id)
    if members is not None:
        members.discard(member)
        if not members:
            del table[job_id]
