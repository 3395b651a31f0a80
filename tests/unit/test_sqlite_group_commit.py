"""The SQLite store's group runner: operations queued together share one transaction, each in a savepoint,
so one that fails is rolled back alone; a failure of the transaction itself fails them all."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tornado_engine.errors import LeaseLost, StoreError
from tornado_engine.store.sqlite import SQLiteStore
from tornado_engine.store.sqlite_group import Op, run_group


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
    yield conn
    conn.close()


def _ops(*fns: Callable[[sqlite3.Connection], Any], write: bool = True) -> list[Op]:
    loop = asyncio.new_event_loop()
    try:
        return [Op(fn, loop.create_future(), write) for fn in fns]
    finally:
        loop.close()


def _insert(key: str, value: int) -> Callable[[sqlite3.Connection], str]:
    def op(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO t VALUES (?, ?)", (key, value))
        return key

    return op


def _rows(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT k, v FROM t"))


def test_a_failing_operation_is_rolled_back_alone(conn: sqlite3.Connection) -> None:
    def half_then_fence(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO t VALUES ('half', 1)")  # written, then refused: must not stay
        raise LeaseLost("stale")

    duplicate = _insert("a", 9)  # a constraint error, after "a" went in earlier in the same group
    outcomes = run_group(conn, _ops(_insert("a", 1), half_then_fence, duplicate, _insert("b", 2)))
    assert outcomes[0] == (True, "a") and outcomes[3] == (True, "b")
    assert outcomes[1][0] is False and isinstance(outcomes[1][1], LeaseLost)
    assert outcomes[2][0] is False and isinstance(outcomes[2][1], StoreError)
    assert isinstance(outcomes[2][1].__cause__, sqlite3.IntegrityError)
    assert not conn.in_transaction  # committed
    assert _rows(conn) == {"a": 1, "b": 2}


def test_a_one_statement_operation_fails_alone_without_a_savepoint(conn: sqlite3.Connection) -> None:
    def upsert_many(c: sqlite3.Connection) -> None:  # one statement: row "c" goes in, then "a" clashes
        c.execute("INSERT INTO t VALUES ('c', 3), ('a', 9)")

    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    ops = _ops(_insert("a", 1), upsert_many, _insert("b", 2))
    for op in ops[1:]:
        op.savepoint = False
    outcomes = run_group(conn, ops)
    conn.set_trace_callback(None)
    assert [ok for ok, _ in outcomes] == [True, False, True]
    assert isinstance(outcomes[1][1], StoreError)
    assert _rows(conn) == {"a": 1, "b": 2}  # SQLite undid the failed statement's first row itself
    assert sum(s.startswith("SAVEPOINT") for s in statements) == 1  # the first operation's only


def test_reads_alone_take_no_write_lock(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO t VALUES ('a', 1)")
    seen: list[bool] = []

    def read(c: sqlite3.Connection) -> int:
        seen.append(c.in_transaction)
        return int(c.execute("SELECT v FROM t WHERE k = 'a'").fetchone()[0])

    assert run_group(conn, _ops(read, read, write=False)) == [(True, 1), (True, 1)]
    assert seen == [False, False]


def test_a_failed_commit_fails_every_operation(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("CREATE TABLE child (k TEXT REFERENCES t (k) DEFERRABLE INITIALLY DEFERRED)")

    def orphan(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO child VALUES ('nobody')")  # checked only at COMMIT

    outcomes = run_group(conn, _ops(_insert("a", 1), orphan))
    assert [ok for ok, _ in outcomes] == [False, False]
    assert all(isinstance(error, StoreError) for _, error in outcomes)
    assert not conn.in_transaction and _rows(conn) == {}  # nothing of the group is left


def test_a_closed_store_fails_every_operation() -> None:
    outcomes = run_group(None, _ops(_insert("a", 1), _insert("b", 2)))
    assert [type(error) for _, error in outcomes] == [StoreError, StoreError]


async def test_operations_queued_together_run_in_one_hop(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "jobs.db")
    await store.open()
    hops = 0
    real = store._executor.submit

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal hops
        hops += 1
        return real(*args, **kwargs)

    store._executor.submit = counting  # type: ignore[method-assign]
    try:
        tenants = [store.put_tenant(f"t{i}", {"n": i}) for i in range(50)]
        await asyncio.gather(*tenants)
        assert hops <= 2  # the first alone (the thread was idle), then the other 49 together
        got = await asyncio.gather(*(store.get_tenant(f"t{i}") for i in range(50)))
        assert got == [{"n": i} for i in range(50)]
    finally:
        await store.close()
