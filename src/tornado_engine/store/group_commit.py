"""Group commit for an asyncio store: calls made while a flush runs queue up, and the next flush takes
every one waiting, so many callers share one transaction and one round trip."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from ..errors import StoreError

__all__ = ["GroupCommit"]

_ItemT = TypeVar("_ItemT")


class GroupCommit(Generic[_ItemT]):
    """The next flush takes every item waiting (up to ``limit``). ``flush`` returns one outcome per item,
    in order: a result, or an exception for that caller alone. At most ``parallel`` flushes run at once;
    an item whose ``key`` (a job id) is already in a flush waits for the next one, so one job's writes
    stay in order. A caller cancelled before its flush starts is left out of it."""

    def __init__(
        self,
        flush: Callable[[list[_ItemT]], Awaitable[list[Any]]],
        *,
        limit: int = 500,
        parallel: int = 1,
        key: Callable[[_ItemT], Hashable] | None = None,
    ) -> None:
        self._flush, self._limit, self._parallel, self._key = flush, limit, parallel, key
        self._queue: deque[tuple[_ItemT, asyncio.Future[Any]]] = deque()
        self._busy: set[Hashable] = set()  # keys of the items being flushed
        self._drains: set[asyncio.Task[None]] = set()

    async def submit(self, item: _ItemT) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((item, future))
        if len(self._drains) < self._parallel:
            self._drains.add(loop.create_task(self._drain(), name="tornado-store-flush"))
        return await future

    async def wait_idle(self) -> None:
        while self._drains:
            await asyncio.gather(*self._drains, return_exceptions=True)

    def _take(self) -> tuple[list[tuple[_ItemT, asyncio.Future[Any]]], set[Hashable]]:
        group: list[tuple[_ItemT, asyncio.Future[Any]]] = []
        keys: set[Hashable] = set()
        later = []
        while self._queue and len(group) < self._limit:
            item, future = self._queue.popleft()
            if future.done():  # its caller was cancelled: nothing to write
                continue
            key = self._key(item) if self._key else None
            if key is not None and (key in keys or key in self._busy):
                later.append((item, future))
                continue
            if key is not None:
                keys.add(key)
            group.append((item, future))
        self._queue.extendleft(reversed(later))
        return group, keys

    async def _drain(self) -> None:
        task = asyncio.current_task()
        try:
            while True:
                group, keys = self._take()
                if not group:
                    return  # what is left waits for the flush that holds its key
                self._busy |= keys
                try:
                    outcomes = await self._flush([item for item, _ in group])
                except BaseException as exc:
                    for _, future in group:
                        if not future.done():
                            future.set_exception(_copy_error(exc))
                    if not isinstance(exc, Exception):
                        raise
                    continue
                finally:
                    self._busy -= keys
                for (_, future), outcome in zip(group, outcomes, strict=True):
                    if future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            if task is not None:
                self._drains.discard(task)


def _copy_error(exc: BaseException) -> Exception:
    """One exception per caller of a failed flush (raising one instance in many tasks tangles its
    traceback); anything but a StoreError is reported as one."""
    if isinstance(exc, StoreError):
        return type(exc)(*exc.args)
    error = StoreError(f"PostgreSQL store error: {exc!r}")
    error.__cause__ = exc if isinstance(exc, Exception) else None
    return error
