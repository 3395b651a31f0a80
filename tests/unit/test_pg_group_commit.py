"""The PostgreSQL store's pure pieces: the group-commit queue and the JSON record sets it sends."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

pytest.importorskip("psycopg")

from tornado_engine.errors import LeaseLost, StoreError
from tornado_engine.store.group_commit import GroupCommit
from tornado_engine.store.pg_pool import _QuickReconnect
from tornado_engine.store.pg_sql import recordset


class Recorder:
    """A flush that records its groups; item "stale" is refused alone, "boom" fails the whole flush."""

    def __init__(self, delay: float = 0.0) -> None:
        self.groups: list[list[str]] = []
        self.delay = delay
        self.running = 0
        self.most_running = 0

    async def __call__(self, items: list[str]) -> list[Any]:
        self.groups.append(list(items))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await asyncio.sleep(self.delay)
            if "boom" in items:
                raise StoreError("PostgreSQL store unavailable")
            return [LeaseLost(item) if item == "stale" else item.upper() for item in items]
        finally:
            self.running -= 1


async def test_calls_made_together_share_one_flush_and_keep_their_own_outcome() -> None:
    flush = Recorder()
    group: GroupCommit[str] = GroupCommit(flush)
    results = await asyncio.gather(*(group.submit(x) for x in ["a", "stale", "b"]), return_exceptions=True)
    assert results[0] == "A" and results[2] == "B" and isinstance(results[1], LeaseLost)
    assert flush.groups == [["a", "stale", "b"]]


async def test_calls_made_during_a_flush_wait_for_the_next_one() -> None:
    flush = Recorder(delay=0.05)
    group: GroupCommit[str] = GroupCommit(flush, limit=3)
    first = asyncio.ensure_future(group.submit("a"))
    await asyncio.sleep(0.01)  # "a" is being flushed
    rest = [group.submit(x) for x in "bcdef"]
    assert await asyncio.gather(first, *rest) == list("ABCDEF")
    assert flush.groups == [["a"], ["b", "c", "d"], ["e", "f"]]  # up to ``limit`` per flush


async def test_one_key_is_never_in_two_flushes_at_once() -> None:
    flush = Recorder(delay=0.02)
    group: GroupCommit[str] = GroupCommit(flush, parallel=3, key=lambda item: item[0])
    results = await asyncio.gather(*(group.submit(x) for x in ["j1", "j2", "k1", "j3"]))
    assert results == ["J1", "J2", "K1", "J3"]
    firsts = next(g for g in flush.groups if "j1" in g)
    assert "j2" not in firsts and "j3" not in firsts  # the same job: later flushes, in order
    assert [x for g in flush.groups for x in g if x[0] == "j"] == ["j1", "j2", "j3"]
    assert flush.most_running <= 3


async def test_a_failed_flush_fails_each_of_its_callers_with_an_error_of_its_own() -> None:
    group: GroupCommit[str] = GroupCommit(Recorder())
    results = await asyncio.gather(*(group.submit(x) for x in ["a", "boom"]), return_exceptions=True)
    assert all(isinstance(r, StoreError) for r in results) and results[0] is not results[1]
    assert await group.submit("c") == "C"  # and the queue goes on


async def test_a_caller_cancelled_before_its_flush_is_left_out() -> None:
    flush = Recorder(delay=0.05)
    group: GroupCommit[str] = GroupCommit(flush)
    first = asyncio.ensure_future(group.submit("a"))
    await asyncio.sleep(0.01)
    gone = asyncio.ensure_future(group.submit("gone"))
    kept = asyncio.ensure_future(group.submit("kept"))
    await asyncio.sleep(0)
    gone.cancel()
    assert await first == "A" and await kept == "KEPT"
    assert flush.groups == [["a"], ["kept"]]
    await group.wait_idle()


def test_record_sets_are_json_whatever_the_text() -> None:
    rows = [('id"1', 1, None, 'tab\t "quoted" back\\slash \u00e9 \U0001f600 \u0000', '{"a":[1,"x"]}')]
    text = recordset(("id", "n", "none", "text", "data"), rows, raw=4)
    assert json.loads(text) == [
        {"id": 'id"1', "n": 1, "none": None, "text": rows[0][3], "data": {"a": [1, "x"]}}
    ]
    assert recordset(("id",), [], raw=0) == "[]"


def test_reconnect_attempts_stay_about_a_second_apart() -> None:
    attempt = _QuickReconnect(timeout=300)
    delays = []
    for now in range(12):
        attempt.update_delay(float(now))
        delays.append(attempt.delay)
    assert delays[0] < 0.2 and all(d <= 1.1 for d in delays) and sum(delays) < 10
    # the hooks the store's pool overrides are psycopg_pool internals: still there?
    from psycopg_pool import AsyncConnectionPool

    assert callable(AsyncConnectionPool._add_connection) and callable(AsyncConnectionPool._check_connection)
