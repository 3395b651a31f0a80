"""The engine's per-host pacer: one :class:`~tornado_engine.sources.hostpace.HostTable` behind a lock, for
every caller of the process: the network guard (its own loop thread), the fast path (stage threads), the
runner (the engine's loop).

Waiting callers poll (:meth:`HostTable.wait_hint`: the back-off's end, a token's refill, else 50 ms);
whoever waits for a host's back-off is told through ``on_wait(owner, domain, until)`` (epoch seconds), once
per back-off, so the job shows it in its events.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator

from ..errors import JobCancelled
from .hostpace import HostPolicy, HostTable, registrable_domain

__all__ = ["HostPacer", "WaitNote"]

WaitNote = Callable[[str, str, float], None]  # (owner, domain, until in epoch seconds); any thread
_TICK = 0.25  # a blocking wait looks at cancel this often


class HostPacer:
    def __init__(self, policy: HostPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._table = HostTable(policy)
        self._lock = threading.Lock()
        self._clock = clock
        self.on_wait: WaitNote | None = None  # set by the runtime
        self._told: dict[tuple[str, str], float] = {}  # (owner, domain) -> the back-off it was told of

    def __repr__(self) -> str:
        return f"HostPacer({self.policy!r})"

    def _try(
        self, domain: str, owner: str, connect: bool, want: int = 1, hold: bool = False
    ) -> tuple[int, float]:
        with self._lock:
            now = self._clock()
            got = self._table.enter(domain, owner, now, connect=connect, want=want, hold=hold)
            if got:
                return got, 0.0
            until = self._table.until(domain, now)
            hint = self._table.wait_hint(domain, now)
        if until is not None:
            self._tell(owner, domain, until - now)
        return 0, hint

    def _tell(self, owner: str, domain: str, left: float) -> None:
        until = round(time.time() + left)
        with self._lock:
            if self._told.get((owner, domain)) == until:
                return
            self._told[(owner, domain)] = until
        if self.on_wait is not None and owner:
            self.on_wait(owner, domain, until)

    # -- async: the network guard, the runner ---------------------------------------------------------
    async def enter(self, host: str, owner: str, *, connect: bool = True, limit: float | None = None) -> bool:
        """Wait for a connection (``connect``) and a request token of ``host``'s domain; False when its
        back-off would outlast ``limit`` seconds more (the caller answers for it)."""
        domain = registrable_domain(host)
        started = self._clock()
        while True:
            got, hint = self._try(domain, owner, connect)
            if got:
                return True
            if limit is not None and self._clock() + hint - started > limit and self.until(host) is not None:
                return False
            await asyncio.sleep(min(hint, 1.0))

    async def clear(self, host: str, owner: str, cancel: asyncio.Event | None = None) -> None:
        """Wait out ``host``'s back-off (if any), telling ``owner``; returns early when ``cancel`` is set."""
        stop = cancel or asyncio.Event()
        while (left := self.until(host)) is not None:
            self._tell(owner, registrable_domain(host), left)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), left)
            if stop.is_set():
                return

    @contextlib.asynccontextmanager
    async def connection(self, host: str, owner: str) -> AsyncIterator[None]:
        """Hold one of ``host``'s connections (after waiting for it) while the block runs."""
        await self.enter(host, owner)
        try:
            yield
        finally:
            self.leave(host, owner)

    # -- blocking: the fast path's threads ------------------------------------------------------------
    @contextlib.contextmanager
    def hold(self, host: str, owner: str, want: int, cancel: threading.Event) -> Iterator[int]:
        """Blocking: at least one and up to ``want`` of ``host``'s connections, held while the block runs
        (yields how many). Raises JobCancelled when ``cancel`` is set while waiting."""
        domain = registrable_domain(host)
        while True:
            got, hint = self._try(domain, owner, True, want, hold=True)
            if got:
                break
            if cancel.wait(min(hint, _TICK)):
                raise JobCancelled("cancelled while waiting for the source host")
        try:
            yield got
        finally:
            with self._lock:
                self._table.leave(domain, owner, got, hold=True)

    def request(self, host: str, owner: str, cancel: threading.Event) -> None:
        """Blocking: wait for a request token of ``host``'s domain (and its back-off's end)."""
        domain = registrable_domain(host)
        while not self._try(domain, owner, False)[0]:
            if cancel.wait(_TICK):
                raise JobCancelled("cancelled while waiting for the source host")

    # -- any thread -----------------------------------------------------------------------------------
    def leave(self, host: str, owner: str) -> None:
        with self._lock:
            self._table.leave(registrable_domain(host), owner)

    def holds(self, host: str, owner: str) -> bool:
        with self._lock:
            return self._table.holds(registrable_domain(host), owner)

    def until(self, host: str) -> float | None:
        """Seconds left of ``host``'s back-off, or None."""
        with self._lock:
            now = self._clock()
            until = self._table.until(registrable_domain(host), now)
        return None if until is None else until - now

    def back_off(self, host: str, retry_after: float | None) -> float:
        """``host`` said "slow down" (429/503, a bot check): every request to its domain waits. Seconds
        until the back-off ends."""
        with self._lock:
            now = self._clock()
            until, _ = self._table.back_off(registrable_domain(host), retry_after, now)
        return until - now

    def share(self, workers: int) -> None:
        """The limits are shared by ``workers`` processes (this one included): this one takes its part."""
        with self._lock:
            self._table.share(workers)

    def forget(self, owner: str) -> None:
        """``owner``'s attempt is over: what it was told goes."""
        with self._lock:
            for key in [k for k in self._told if k[0] == owner]:
                del self._told[key]

    def succeeded(self, host: str) -> None:
        with self._lock:
            self._table.succeeded(registrable_domain(host))
