"""The SQLite store's statements (``sql/sqlite/queries.sql``, loaded once) and the row helpers its
operations share: job and outbox rows, and a batch's completion."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from ..models import Job
from .base import OutboxMessage
from .rules import batch_completed_message, job_from_record, now_ms, outbox_rows
from .sqlfiles import load_queries

__all__ = [
    "OutboxRow",
    "Q",
    "after_job_ended",
    "insert_outbox",
    "outbox_rows_due",
    "row_to_job",
    "status_counts",
]

Q = load_queries("sqlite")

OutboxRow = tuple[str, str, str | None, str, str, str, int, int]


def row_to_job(status: str, data: str, progress: str | None = None) -> Job:
    return job_from_record(status, json.loads(data), json.loads(progress) if progress else None, data)


def outbox_rows_due(messages: Sequence[OutboxMessage]) -> list[OutboxRow]:
    """Encoded when the call is made, on the event loop: the thread gets plain values only. Due now."""
    now = now_ms()
    return [(*row, now) for row in outbox_rows(messages)]


def insert_outbox(conn: sqlite3.Connection, rows: Sequence[OutboxRow]) -> None:
    if rows:
        conn.executemany(Q["insert_outbox"], rows)


def status_counts(conn: sqlite3.Connection, batch_id: str) -> dict[str, int]:
    return dict(conn.execute(Q["batch_status_counts"], (batch_id,)).fetchall())


def after_job_ended(conn: sqlite3.Connection, batch_id: str | None) -> None:
    """The last job of a batch to end queues the batch's completion message, exactly once."""
    if batch_id is None or conn.execute(Q["batch_open"], (batch_id,)).fetchone()[0]:
        return
    row = conn.execute(Q["mark_batch_notified"], (batch_id,)).fetchone()
    if row is None:
        return
    message = batch_completed_message(batch_id, row[0], json.loads(row[1]), status_counts(conn, batch_id))
    if message is not None:
        insert_outbox(conn, outbox_rows_due([message]))
