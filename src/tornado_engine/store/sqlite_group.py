"""The SQLite store's group commit, on the store's thread: every operation waiting runs in one hop, the
writes in one transaction (one fsync of the WAL, one lock), each in a savepoint of its own, so that one
that fails (a stale lease token, a cancelled job) is rolled back alone and raises for its caller only."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import StoreError

__all__ = ["MAX_GROUP", "Op", "run_group"]

MAX_GROUP = 512  # operations per hop to the thread (and per transaction)


@dataclass(eq=False, slots=True)
class Op:
    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    write: bool
    # False: ``fn`` changes the database in one statement at most, which SQLite undoes by itself when it
    # fails: no savepoint needed (its SAVEPOINT and RELEASE cost twice the job's own UPDATE)
    savepoint: bool = True


def _failure(exc: Exception) -> Exception:
    if isinstance(exc, sqlite3.Error):
        error = StoreError(f"SQLite store error: {exc}")
        error.__cause__ = exc
        return error
    return exc


def _run_reads(conn: sqlite3.Connection, ops: Sequence[Op]) -> list[tuple[bool, Any]]:
    outcomes: list[tuple[bool, Any]] = []
    for op in ops:
        try:
            outcomes.append((True, op.fn(conn)))
        except Exception as exc:
            outcomes.append((False, _failure(exc)))
    return outcomes


def _run_alone(conn: sqlite3.Connection, op: Op) -> tuple[bool, Any]:
    try:
        return True, op.fn(conn)
    except Exception as exc:
        if not conn.in_transaction:  # SQLite rolled the whole transaction back (disk full, I/O)
            raise
        return False, _failure(exc)


def run_group(conn: sqlite3.Connection | None, ops: Sequence[Op]) -> list[tuple[bool, Any]]:
    """On the store's thread: every operation of ``ops``, in order; ``(True, result)`` or ``(False,
    exception)`` for each. Writes share one transaction, each in a savepoint of its own; when the
    transaction itself fails (BEGIN, COMMIT, or an error that rolled it back) every operation fails."""
    if conn is None:
        return [(False, StoreError("the store is not open"))] * len(ops)
    if not any(op.write for op in ops):  # reads only: no transaction, no write lock
        return _run_reads(conn, ops)
    outcomes = []
    try:
        conn.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlocks between processes
        for op in ops:
            if not (op.savepoint and op.write):  # a read changes nothing
                outcomes.append(_run_alone(conn, op))
                continue
            conn.execute("SAVEPOINT op")
            try:
                result = op.fn(conn)
            except Exception as exc:
                if not conn.in_transaction:  # SQLite rolled the whole transaction back (disk full, I/O)
                    raise
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
                outcomes.append((False, _failure(exc)))
            else:
                conn.execute("RELEASE op")
                outcomes.append((True, result))
        conn.execute("COMMIT")
    except Exception as exc:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        failure = StoreError(f"SQLite store error: {exc}")
        failure.__cause__ = exc
        return [(False, failure)] * len(ops)
    return outcomes
