"""Wake idle workers when jobs become claimable: PostgreSQL LISTEN/NOTIFY on a connection of its own.

The transactions that make jobs claimable (an insert, a batch started, a job released or re-queued) run
``pg_notify('tornado_jobs', '')``; PostgreSQL delivers it at their COMMIT to every session listening, and
each worker's listener wakes its scheduler, which claims at once instead of at its next poll.

Polling stays the fallback: a notification is a hint, never the only way a job is found. Should the
listening connection drop (a restart, ``pg_terminate_backend``, a silent network), the listener connects
again (0.1 s, growing to ~2 s apart) and wakes the scheduler once it listens again, for what was
committed meanwhile; a connection that is quiet for ``check_every`` seconds is checked with a query, so a
dead one is noticed too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

import psycopg

from .pg_pool import Conn

__all__ = ["CHANNEL", "JobsListener"]

_log = logging.getLogger("tornado_engine.store.postgres")

CHANNEL = "tornado_jobs"


class JobsListener:
    """Calls ``wake()`` for each notification on :data:`CHANNEL`; ``connect()`` opens its connection."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[Conn]],
        wake: Callable[[], None],
        *,
        check_every: float = 30.0,
        redact: Callable[[object], str] = str,
    ) -> None:
        self._connect, self._wake, self._redact = connect, wake, redact
        self.check_every = check_every
        self.connections = 0  # sessions opened so far (the first, then one per reconnect)
        self.listening = asyncio.Event()  # set while LISTEN is in effect
        self._task: asyncio.Task[None] | None = None
        self._failures = 0  # connections lost in a row: the next try waits longer

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tornado-listen")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except (psycopg.Error, OSError, TimeoutError) as exc:
                self._failures += 1
                delay = min(2.0, 0.1 * 1.5 ** (self._failures - 1)) * random.uniform(0.9, 1.1)
                _log.warning("job notifications: %s; listening again in %.1f s", self._redact(exc), delay)
                await asyncio.sleep(delay)

    async def _listen(self) -> None:
        conn = await self._connect()
        try:
            await conn.execute(f"LISTEN {CHANNEL}".encode())
            self.connections += 1
            self._failures = 0
            self.listening.set()
            self._wake()  # what was committed while no session listened
            while True:
                async for _ in conn.notifies(timeout=self.check_every):
                    self._wake()
                await conn.execute(b"SELECT 1")  # quiet for a while: is the session still there?
        finally:
            self.listening.clear()
            with contextlib.suppress(Exception):
                await conn.close()
