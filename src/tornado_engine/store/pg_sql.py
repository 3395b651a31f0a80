"""The PostgreSQL store's statements (``sql/postgres/queries.sql``, loaded once) and the row helpers its
operations share: running a query, job and outbox rows, and a batch's completion."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.rows import TupleRow
from psycopg.types.json import Json

from ..models import Job
from .pg_pool import Conn
from .rules import OutboxRow, batch_completed_message, dumps, job_columns, outbox_rows
from .sqlfiles import load_queries

__all__ = [
    "OUTBOX_FIELDS",
    "Q",
    "after_jobs_ended",
    "columns",
    "execute",
    "fetch_all",
    "fetch_one",
    "insert_outbox",
    "job_row",
    "lock_batch",
    "recordset",
]

# encoded once: psycopg is handed bytes, as it sends them
Q: dict[str, bytes] = {name: sql.encode() for name, sql in load_queries("postgres").items()}
OUTBOX_FIELDS = ("id", "owner", "job_id", "url", "event", "payload", "created_at", "saved_with")


async def fetch_one(conn: Conn, query: bytes, params: Sequence[Any] = ()) -> TupleRow | None:
    cur = await conn.execute(query, params)
    return await cur.fetchone()


async def fetch_all(conn: Conn, query: bytes, params: Sequence[Any] = ()) -> list[TupleRow]:
    cur = await conn.execute(query, params)
    return await cur.fetchall()


async def execute(conn: Conn, query: bytes, params: Sequence[Any] = ()) -> int:
    cur = await conn.execute(query, params)
    return cur.rowcount


def columns(job: Job) -> tuple[str, int, int, Json]:
    """:func:`job_columns`, the record as a json parameter (already JSON text: sent as it is)."""
    status, stored, reserved, data = job_columns(job)
    return status, stored, reserved, Json(data, dumps=lambda text: text)


def job_row(job: Job, paused: bool, key: str | None) -> tuple[Any, ...]:
    return (job.id, job.owner, *columns(job), job.created_at, job.created_at, job.batch_id, paused, key)


def recordset(names: Sequence[str], rows: Sequence[Sequence[Any]], raw: int = -1) -> str:
    """Rows as one JSON array of objects, for ``json_to_recordset``: one text parameter however many
    rows there are (psycopg escapes each element of a text[] parameter in Python: most of a worker's CPU
    with JSON records in them). Column ``raw`` already is JSON text and goes in as it is. The records
    and payloads go in as JSON strings (a ``text`` column, cast to json): PostgreSQL unescapes every
    string of an object it takes apart, and refuses a ``\u0000`` (a title may have one) in any."""

    def fields(row: Sequence[Any]) -> str:
        return ",".join(f'"{name}":{value if n == raw else dumps(value)}'
                        for n, (name, value) in enumerate(zip(names, row, strict=False)))  # fmt: skip

    objects = (fields(row) for row in rows)
    return "[" + ",".join("{" + fields + "}" for fields in objects) + "]"


async def insert_outbox(conn: Conn, rows: Sequence[OutboxRow]) -> None:
    if rows:
        await conn.execute(Q["insert_outbox"], (recordset(OUTBOX_FIELDS, rows),))


async def lock_batch(conn: Conn, batch_id: str | None) -> None:
    """Terminal writes of one batch take its row first: the last job to end then sees all the others
    ended (READ COMMITTED reads after the lock), so ``batch_completed`` is queued exactly once."""
    if batch_id is not None:
        await conn.execute(Q["lock_batch"], (batch_id,))


async def after_jobs_ended(conn: Conn, batch_ids: Sequence[str]) -> None:
    """The last job of a batch to end queues the batch's completion message, exactly once. The caller
    holds the batches' rows (:func:`lock_batch`)."""
    if batch_ids:
        for (batch_id,) in await fetch_all(conn, Q["ended_batches"], (sorted(batch_ids),)):
            await _notify_batch(conn, batch_id)


async def _notify_batch(conn: Conn, batch_id: str) -> None:
    batch = await fetch_one(conn, Q["mark_notified"], (batch_id,))
    if batch is None:
        return
    counts = {r[0]: r[1] for r in await fetch_all(conn, Q["status_counts"], (batch_id,))}
    message = batch_completed_message(batch_id, batch[0], batch[1], counts)
    if message is not None:
        await insert_outbox(conn, outbox_rows([message]))
