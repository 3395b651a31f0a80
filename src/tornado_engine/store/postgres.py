"""The PostgreSQL store: several engine processes, on several machines, share one database.

- Claims take rows with ``FOR UPDATE SKIP LOCKED`` (procrastinate's claim), so concurrent workers neither
  wait for nor double-claim each other's jobs.
- Leases are computed and compared on the database clock (``now()``), never a worker's clock.
- Every write of a running job is fenced by its lease token; Completed is refused with JobCancelled once
  a cancel was requested, exactly as in the SQLite store.
- Connections come from psycopg_pool, checked before each use, so connections the server dropped
  (restart, ``pg_terminate_backend``) are replaced. One that fails its check has every idle one checked
  with it (a restart took them all), and reconnecting retries every 0.1-1 s rather than psycopg_pool's
  1, 2, 4, 8 ... s, so the store works again within about a second of the server's return.
- Each connection sets ``idle_in_transaction_session_timeout`` (60 s unless configured): a worker frozen
  inside a transaction (SIGSTOP, a VM pause) loses its session and its row locks instead of holding them
  until it thaws.
- Each operation is one transaction. A connection error is retried once when the transaction provably
  did not commit (it failed before COMMIT was sent, so the server rolled it back), or when the operation
  is an idempotent read. A failure during COMMIT is ambiguous: it is reported, never retried, so no
  write is ever applied twice.
- Group commit: saves made while one is in flight queue up, and the next flush writes all of them in one
  transaction: one statement updates every record, fenced row by row, and queues the terminal ones'
  webhook events. Each caller gets its own outcome (a stale token is LeaseLost for that save only); none
  returns before the COMMIT. Should the group's statement fail (a bad row), each save runs alone instead.
  Tenant lookups are grouped the same way (one query for all owners asked for at once).
- The schema is versioned SQL in ``sql/postgres/`` (see :func:`migrate`).
- The DSN's password never appears in a repr, a log line or an error (:func:`redact_dsn`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Generic, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg.types.json import Json
from psycopg_pool import AsyncConnectionPool
from psycopg_pool.base import AttemptWithBackoff

from ..errors import JobCancelled, StoreError
from ..models import Job
from ..states import TERMINAL, Status
from ..webhooks import batch_payload
from .base import BatchRecord, Claim, Heartbeat, LeaseLost, OutboxMessage, UsageTotals

__all__ = ["Migration", "PostgresStore", "load_migrations", "migrate", "redact_dsn"]

log = logging.getLogger("tornado_engine.store.postgres")

T = TypeVar("T")
ItemT = TypeVar("ItemT")
Conn = psycopg.AsyncConnection[TupleRow]

_SQL = resources.files(__package__).joinpath("sql", "postgres")
_MIGRATION_NAME = re.compile(r"^(\d{4})_(\w+)\.sql$")
_LOCK_KEY = 0x746F726E61646F  # "tornado": the advisory lock that serializes schema changes
_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS tornado_schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""
_TERMINAL_SQL = ", ".join(sorted(f"'{s.value}'" for s in TERMINAL))
_JOB_EVENTS = ("job_completed", "job_failed", "job_skipped", "job_cancelled")
_RETRY_DELAY = 0.2


# -- secrets -------------------------------------------------------------------------------------------


def redact_dsn(text: str) -> str:
    """``text`` with every password of a PostgreSQL URL or keyword DSN replaced by ``***``."""
    text = re.sub(r"(\w+://[^:@/?#]*:)[^@/]*@", r"\1***@", text)
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)", r"\1***", text, flags=re.IGNORECASE)


def _password_forms(dsn: str) -> list[str]:
    """The password as written in the DSN and as decoded, to scrub from server and driver messages."""
    forms = re.findall(r"\w+://[^:@/?#]*:([^@/]*)@", dsn)
    forms += [m[1] for m in re.findall(r"password\s*=\s*('?)([^'\s&]*)\1", dsn, flags=re.IGNORECASE)]
    with contextlib.suppress(psycopg.Error):
        forms += [v for k, v in conninfo_to_dict(dsn).items() if "password" in k and isinstance(v, str)]
    return sorted({f for f in forms if f}, key=len, reverse=True)


# -- schema --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """``sql/postgres/NNNN_name.sql``, in version order."""
    found = []
    for entry in _SQL.iterdir():
        if match := _MIGRATION_NAME.match(entry.name):
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    if not found:  # a packaging slip, not a database problem: say what is missing
        raise StoreError(f"the PostgreSQL schema files are missing from this installation ({_SQL})")
    return sorted(found, key=lambda m: m.version)


async def migrate(conn: Conn, *, upto: int | None = None) -> list[int]:
    """Bring the schema up to date in one transaction, under an advisory lock so that workers starting
    together apply each migration once. A fresh database gets ``schema.sql`` (what all migrations add
    up to) unless ``upto`` asks for the migrations themselves, as the schema test does."""
    known = [m for m in load_migrations() if upto is None or m.version <= upto]
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        await conn.execute(_MIGRATIONS_TABLE)
        cur = await conn.execute("SELECT version FROM tornado_schema_migrations")
        applied = {row[0] for row in await cur.fetchall()}
        newest = max(m.version for m in load_migrations())
        if applied and max(applied) > newest:
            raise StoreError(
                f"the PostgreSQL schema is at version {max(applied)}, newer than this tornado-engine "
                f"knows ({newest}); upgrade tornado-engine"
            )
        cur = await conn.execute("SELECT to_regclass('tornado_jobs') IS NULL")
        fresh = not applied and (await cur.fetchone() or (False,))[0]
        todo = [m for m in known if m.version not in applied]
        if fresh and upto is None:
            await conn.execute(_SQL.joinpath("schema.sql").read_text(encoding="utf-8").encode())
        else:
            for migration in todo:
                await conn.execute(migration.sql.encode())
        for migration in todo:
            await conn.execute(
                "INSERT INTO tornado_schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
    if todo:
        log.info("PostgreSQL schema: applied %s", ", ".join(f"{m.version:04d}_{m.name}" for m in todo))
    return [m.version for m in todo]


# -- queries -------------------------------------------------------------------------------------------
# Named, as procrastinate keeps its SQL: each statement reads as a whole. %s parameters only; the only
# interpolations are constants of this module.

_OWNER = "(%s::text IS NULL OR owner = %s)"
_SECONDS = "make_interval(secs => %s::float8)"
_INSERT_JOB = """
    INSERT INTO tornado_jobs (id, owner, status, stored_bytes, reserved_bytes, data, created_at,
                              available_at, batch_id, paused, idempotency_key)
    -- runnable now, but in submit order: a client clock running ahead must not delay its own jobs
    VALUES (%s, %s, %s, %s, %s, %s, %s, LEAST(now(), to_timestamp(%s::float8 / 1000)), %s, %s, %s)"""
_INSERT_KEYED_JOB = f"""{_INSERT_JOB}
    ON CONFLICT (owner, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING id"""
_JOB_BY_KEY = "SELECT status, data FROM tornado_jobs WHERE owner = %s AND idempotency_key = %s"
_INSERT_BATCH = """
    INSERT INTO tornado_batches (id, owner, created_at, paused, data) VALUES (%s, %s, %s, %s, %s)"""
_GET_JOB = f"SELECT status, data FROM tornado_jobs WHERE id = %s AND {_OWNER}"
_LIST_JOBS = f"""
    SELECT status, data FROM tornado_jobs WHERE {_OWNER} AND (%s::text IS NULL OR status = %s)
    ORDER BY created_at DESC, seq DESC LIMIT %s OFFSET %s"""
_GET_BATCH = f"SELECT owner, created_at, paused, data FROM tornado_batches WHERE id = %s AND {_OWNER}"
_BATCH_COUNTS = f"""
    SELECT count(*) FILTER (WHERE status = 'Completed'),
           count(*) FILTER (WHERE status IN ({_TERMINAL_SQL}) AND status <> 'Completed')
    FROM tornado_jobs WHERE batch_id = %s"""
_USAGE = f"""
    SELECT status, count(*), coalesce(sum(stored_bytes), 0), coalesce(sum(reserved_bytes), 0)
    FROM tornado_jobs WHERE {_OWNER} GROUP BY status"""
_USAGE_BY_BACKEND = f"""
    SELECT split_part(data->>'storage_url', ':', 1), sum(stored_bytes)
    FROM tornado_jobs WHERE {_OWNER} AND stored_bytes > 0 GROUP BY 1"""
_IS_TERMINAL = f"status IN ({_TERMINAL_SQL})"
_MARK_NOTIFIED = (
    "UPDATE tornado_batches SET notified = true WHERE id = %s AND NOT notified RETURNING owner, data"
)
_STATUS_COUNTS = "SELECT status, count(*) FROM tornado_jobs WHERE batch_id = %s GROUP BY status"
_FLAG_CANCEL = """
    UPDATE tornado_jobs SET cancel_requested = true WHERE id = %s AND status = 'Processing'
    RETURNING status, data"""
_CLAIM_OUTBOX = f"""
    WITH due AS (
        SELECT id FROM tornado_outbox
        WHERE status = 'pending' AND next_attempt_at <= now() AND lease_until <= now()
        ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED)
    UPDATE tornado_outbox o SET lease_until = now() + {_SECONDS} FROM due WHERE o.id = due.id
    RETURNING o.id, o.owner, o.url, o.event, o.payload, o.job_id, o.attempts, o.created_at"""
_CLAIM = f"""
    WITH picked AS (
        SELECT id FROM tornado_jobs
        WHERE status = 'Pending' AND NOT paused AND available_at <= now()
        ORDER BY available_at, created_at, seq LIMIT %s
        FOR UPDATE SKIP LOCKED)
    UPDATE tornado_jobs j
    SET status = 'Processing', lease_owner = %s, lease_token = j.lease_token + 1,
        lease_expires_at = now() + {_SECONDS}
    FROM picked WHERE j.id = picked.id
    RETURNING j.lease_token, j.data, j.created_at, j.seq"""
# The saves of a group, in one statement: rows locked in id order (as the heartbeat does), each written
# only under its own token, and the webhook events of the records that were written queued with them.
# Rows come as one JSON array each (see _recordset).
_SAVE_GROUP = """
    WITH v AS (
        SELECT * FROM json_to_recordset(%s::json)
            AS v(id text, token bigint, status text, stored bigint, reserved bigint, data json)),
    held AS (
        SELECT j.id FROM tornado_jobs j JOIN v ON j.id = v.id AND j.lease_token = v.token
        WHERE j.status = 'Processing' ORDER BY j.id FOR UPDATE OF j),
    saved AS (
        UPDATE tornado_jobs j
        SET status = v.status, stored_bytes = v.stored, reserved_bytes = v.reserved, data = v.data,
            lease_owner = CASE WHEN v.status = 'Processing' THEN j.lease_owner END
        FROM v JOIN held ON held.id = v.id
        WHERE j.id = v.id AND j.lease_token = v.token AND j.status = 'Processing'
          -- Completed never lands on a job whose cancel was accepted: that cancel would be a lie
          AND (v.status <> 'Completed' OR NOT j.cancel_requested)
        RETURNING j.id),
    queued AS (
        INSERT INTO tornado_outbox (id, owner, job_id, url, event, payload, created_at)
        SELECT m.id, m.owner, m.job_id, m.url, m.event, m.payload, m.created_at
        FROM json_to_recordset(%s::json) AS m(id text, owner text, job_id text, url text, event text,
                                              payload json, created_at bigint, saved_with text)
        WHERE m.saved_with IN (SELECT id FROM saved)
        ON CONFLICT (id) DO NOTHING)
    SELECT id FROM saved"""
# why a save of the group was not written: its token, its status, a cancel asked for
_FENCE_STATE = """
    SELECT id, lease_token, status, cancel_requested FROM tornado_jobs WHERE id = ANY(%s::text[])"""
# terminal writes take their batches' rows first, in id order (see _lock_batch)
_LOCK_BATCHES = "SELECT 1 FROM tornado_batches WHERE id = ANY(%s::text[]) ORDER BY id FOR UPDATE"
_ENDED_BATCHES = f"""
    SELECT b.id FROM unnest(%s::text[]) AS b(id) WHERE NOT EXISTS (
        SELECT 1 FROM tornado_jobs WHERE batch_id = b.id AND status NOT IN ({_TERMINAL_SQL}))"""
_INSERT_OUTBOX = """
    INSERT INTO tornado_outbox (id, owner, job_id, url, event, payload, created_at)
    SELECT id, owner, job_id, url, event, payload, created_at
    FROM json_to_recordset(%s::json)
        AS m(id text, owner text, job_id text, url text, event text, payload json, created_at bigint)
    ON CONFLICT (id) DO NOTHING"""
_TENANTS = "SELECT owner, data FROM tornado_tenants WHERE owner = ANY(%s::text[])"
# rows locked in id order (as set_batch_paused does), so two multi-row lockers cannot deadlock
_HEARTBEAT = f"""
    WITH held AS (
        SELECT j.id FROM tornado_jobs j
        JOIN unnest(%s::text[], %s::bigint[]) AS t(id, token) ON j.id = t.id AND j.lease_token = t.token
        WHERE j.lease_owner = %s AND j.status = 'Processing'
        ORDER BY j.id FOR UPDATE OF j)
    UPDATE tornado_jobs j SET lease_expires_at = now() + {_SECONDS} FROM held WHERE j.id = held.id
    RETURNING j.id, j.cancel_requested"""
_RELEASE = f"""
    UPDATE tornado_jobs
    SET status = 'Pending', lease_owner = NULL, lease_expires_at = NULL,
        available_at = now() + {_SECONDS}, reserved_bytes = %s, data = %s
    WHERE id = %s AND lease_token = %s AND status = 'Processing'"""
_LEASE_OWNERS = """
    SELECT DISTINCT lease_owner FROM tornado_jobs WHERE status = 'Processing' AND lease_owner IS NOT NULL"""
# SKIP LOCKED: a row being heartbeated or saved right now is not stale; the next pass looks again
_REQUEUE = """
    WITH stale AS (
        SELECT id FROM tornado_jobs
        WHERE status = 'Processing'
          AND (lease_expires_at IS NULL OR lease_expires_at < now() OR lease_owner = ANY(%s::text[]))
        ORDER BY id FOR UPDATE SKIP LOCKED)
    UPDATE tornado_jobs j SET status = 'Pending', lease_owner = NULL, lease_expires_at = NULL,
        available_at = now()
    FROM stale WHERE j.id = stale.id RETURNING j.id"""


# -- rows ----------------------------------------------------------------------------------------------


def _job(status: str, data: dict[str, Any]) -> Job:
    job = Job.from_record(data)
    job.status = Status(status)  # the column is the truth; data is rewritten on every write
    return job


def _columns(job: Job) -> tuple[str, int, int, Json]:
    """status, stored_bytes, reserved_bytes, data: the columns each write of a job sets together."""
    status, stored, reserved, data = _plain_columns(job)
    return status, stored, reserved, Json(data, dumps=lambda text: text)


def _plain_columns(job: Job) -> tuple[str, int, int, str]:
    stored = job.file_size or 0 if job.status is Status.COMPLETED and not job.file_deleted_at else 0
    reserved = job.reserved_bytes if job.status in (Status.PENDING, Status.PROCESSING) else 0
    return job.status.value, stored, reserved, _dumps(job.to_record())


async def _one(conn: Conn, query: str, params: Sequence[Any] = ()) -> TupleRow | None:
    cur = await conn.execute(query.encode(), params)
    return await cur.fetchone()


async def _all(conn: Conn, query: str, params: Sequence[Any] = ()) -> list[TupleRow]:
    cur = await conn.execute(query.encode(), params)
    return await cur.fetchall()


def _job_row(job: Job, paused: bool, key: str | None) -> tuple[Any, ...]:
    return (job.id, job.owner, *_columns(job), job.created_at, job.created_at, job.batch_id, paused, key)


async def _exec(conn: Conn, query: str, params: Sequence[Any] = ()) -> int:
    cur = await conn.execute(query.encode(), params)
    return cur.rowcount


# records are written several times per job: compact, and without the circular-reference bookkeeping
# (json, not jsonb, columns: a \u0000 in a title is kept as written)
_dumps = json.JSONEncoder(check_circular=False, separators=(",", ":")).encode

_OutboxRow = tuple[str, str, str | None, str, str, str, int]


def _outbox_rows(messages: Sequence[OutboxMessage]) -> list[_OutboxRow]:
    """Encoded when the call is made: what goes to the server is plain text."""
    now = int(time.time() * 1000)
    return [
        (m.id, m.owner, m.job_id, m.url, m.event, _dumps(m.payload), m.created_at or now) for m in messages
    ]


_OUTBOX_FIELDS = ("id", "owner", "job_id", "url", "event", "payload", "created_at", "saved_with")
_RECORD_FIELDS = ("id", "token", "status", "stored", "reserved", "data")


def _recordset(names: Sequence[str], rows: Sequence[Sequence[Any]], raw: int) -> str:
    """Rows as one JSON array of objects, for ``json_to_recordset``: one text parameter however many
    rows there are (psycopg escapes each element of a text[] parameter in Python: most of a worker's CPU
    with JSON records in them). Column ``raw`` already is JSON text and goes in as it is."""

    def fields(row: Sequence[Any]) -> str:
        return ",".join(f'"{name}":{value if n == raw else _dumps(value)}'
                        for n, (name, value) in enumerate(zip(names, row, strict=False)))  # fmt: skip

    objects = (fields(row) for row in rows)
    return "[" + ",".join("{" + fields + "}" for fields in objects) + "]"


async def _insert_outbox(conn: Conn, rows: Sequence[_OutboxRow]) -> None:
    if rows:
        await conn.execute(_INSERT_OUTBOX.encode(), (_recordset(_OUTBOX_FIELDS, rows, raw=5),))


async def _lock_batch(conn: Conn, batch_id: str | None) -> None:
    """Terminal writes of one batch take its row first: the last job to end then sees all the others
    ended (READ COMMITTED reads after the lock), so ``batch_completed`` is queued exactly once."""
    if batch_id is not None:
        await conn.execute(b"SELECT 1 FROM tornado_batches WHERE id = %s FOR UPDATE", (batch_id,))


async def _after_jobs_ended(conn: Conn, batch_ids: Sequence[str]) -> None:
    """The last job of a batch to end queues the batch's ``batch_completed`` event, exactly once. The
    caller holds the batches' rows (:func:`_lock_batch`)."""
    if batch_ids:
        for (batch_id,) in await _all(conn, _ENDED_BATCHES, (sorted(batch_ids),)):
            await _notify_batch(conn, batch_id)


async def _notify_batch(conn: Conn, batch_id: str) -> None:
    batch = await _one(conn, _MARK_NOTIFIED, (batch_id,))
    if batch is None or not batch[1].get("webhook_url"):
        return
    counts: dict[str, int] = {r[0]: r[1] for r in await _all(conn, _STATUS_COUNTS, (batch_id,))}
    completed, total = counts.get(Status.COMPLETED.value, 0), sum(counts.values())
    message = OutboxMessage(
        id=f"msg_batch_{batch_id}",
        owner=batch[0],
        url=batch[1]["webhook_url"],
        event="batch_completed",
        payload=batch_payload(batch_id, completed, total - completed, total),
    )
    await _insert_outbox(conn, _outbox_rows([message]))


# -- group commit --------------------------------------------------------------------------------------


class _GroupCommit(Generic[ItemT]):
    """Calls made while a flush runs queue up; the next flush takes every one waiting (up to ``limit``),
    so many callers share one transaction and one round trip. ``flush`` returns one outcome per item, in
    order: a result, or an exception for that caller alone. At most ``parallel`` flushes run at once; an
    item whose ``key`` (a job id) is already in a flush waits for the next one, so one job's writes stay
    in order. A caller cancelled before its flush starts is left out of it."""

    def __init__(
        self,
        flush: Callable[[list[ItemT]], Awaitable[list[Any]]],
        *,
        limit: int = 500,
        parallel: int = 1,
        key: Callable[[ItemT], Hashable] | None = None,
    ) -> None:
        self._flush, self._limit, self._parallel, self._key = flush, limit, parallel, key
        self._queue: deque[tuple[ItemT, asyncio.Future[Any]]] = deque()
        self._busy: set[Hashable] = set()  # keys of the items being flushed
        self._drains: set[asyncio.Task[None]] = set()

    async def submit(self, item: ItemT) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((item, future))
        if len(self._drains) < self._parallel:
            self._drains.add(loop.create_task(self._drain(), name="tornado-store-flush"))
        return await future

    async def wait_idle(self) -> None:
        while self._drains:
            await asyncio.gather(*self._drains, return_exceptions=True)

    def _take(self) -> tuple[list[tuple[ItemT, asyncio.Future[Any]]], set[Hashable]]:
        group: list[tuple[ItemT, asyncio.Future[Any]]] = []
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


@dataclass(eq=False, slots=True)
class _Save:
    job_id: str
    token: int
    status: str
    stored: int
    reserved: int
    data: str  # the record, JSON text
    terminal: bool
    batch_id: str | None
    outbox: list[_OutboxRow]


async def _save_group(conn: Conn, saves: Sequence[_Save]) -> list[Exception | None]:
    """Writes ``saves`` (distinct jobs) in the caller's transaction; the outcome of each, in order."""
    batches = sorted({s.batch_id for s in saves if s.terminal and s.batch_id is not None})
    if batches:
        await conn.execute(_LOCK_BATCHES.encode(), (batches,))
    records = [(s.job_id, s.token, s.status, s.stored, s.reserved, s.data) for s in saves]
    events = [(*row, s.job_id) for s in saves for row in s.outbox]
    params = (_recordset(_RECORD_FIELDS, records, raw=5), _recordset(_OUTBOX_FIELDS, events, raw=5))
    written = {r[0] for r in await _all(conn, _SAVE_GROUP, params)}
    outcomes: list[Exception | None] = [None] * len(saves)
    refused = [n for n, s in enumerate(saves) if s.job_id not in written]
    if refused:
        rows = await _all(conn, _FENCE_STATE, ([saves[n].job_id for n in refused],))
        state = {r[0]: (r[1], r[2], r[3]) for r in rows}
        for n in refused:
            save = saves[n]
            token, status, cancel_requested = state.get(save.job_id, (None, None, False))
            if token != save.token:
                outcomes[n] = LeaseLost(f"job {save.job_id}: lease lost, write refused")
            elif save.terminal and status == save.status:
                pass  # this very write, committed by an attempt whose connection was lost at COMMIT
            elif status == Status.PROCESSING.value and cancel_requested:
                outcomes[n] = JobCancelled(f"job {save.job_id} cancelled")
            else:
                outcomes[n] = LeaseLost(f"job {save.job_id}: lease lost, write refused")
    await _after_jobs_ended(conn, sorted({s.batch_id for s in saves if s.terminal and s.job_id in written
                                          and s.batch_id is not None}))  # fmt: skip
    return outcomes


# -- the pool ------------------------------------------------------------------------------------------


class _QuickReconnect(AttemptWithBackoff):
    """psycopg_pool tries to connect again after 1 s, then 2, 4, 8, 16 s ... (up to ``reconnect_timeout``):
    after a 10 s restart the server was back, but the pool's next try came only ~5 s later. Here: from
    0.1 s, growing by half, never more than ~1 s apart."""

    INITIAL_DELAY = 0.1
    DELAY_BACKOFF = 1.5
    MAX_DELAY = 1.0

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, self.MAX_DELAY * random.uniform(0.9, 1.1))


class _Pool(AsyncConnectionPool[Conn]):
    """psycopg_pool with a quick reconnect. Both hooks are psycopg_pool internals (3.2, 3.3); should they
    go, the pool keeps working with its own backoff, and test_store_conformance says so."""

    async def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        await super()._add_connection(attempt or _QuickReconnect(timeout=self.reconnect_timeout), growing)

    async def _check_connection(self, conn: Conn) -> None:
        try:
            await super()._check_connection(conn)
        except Exception:
            # The server dropped this one (a restart, pg_terminate_backend): the idle others most likely
            # went with it. Check them all now, so that the caller waits for a new connection instead of
            # finding the next dead one after a back-off of 1 s, then 2 s ...
            with contextlib.suppress(Exception):
                await self.check()
            raise


# -- the store -----------------------------------------------------------------------------------------


class _StatementError(StoreError):
    """The server refused a statement (not a connection problem)."""


class PostgresStore:
    """A :class:`~tornado_engine.store.base.JobStore` on PostgreSQL (``postgresql://`` URLs)."""

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 10.0,
        timeout: float = 15.0,
        idle_in_transaction_timeout: float | None = 60.0,
        group_size: int = 500,
        group_flushes: int = 2,
    ) -> None:
        """``idle_in_transaction_timeout``: seconds a session may sit idle inside a transaction before the
        server ends it (releasing its locks); None leaves the server's setting (also when the DSN sets
        ``idle_in_transaction_session_timeout`` through ``options``). ``group_size``: saves per group
        commit; ``group_flushes``: group transactions in flight at once (each on its own connection)."""
        self._dsn = dsn
        self._safe_dsn = redact_dsn(dsn)
        self._secrets = _password_forms(dsn)
        try:
            params = conninfo_to_dict(dsn)
        except psycopg.Error:
            raise StoreError(f"invalid PostgreSQL store URL: {self._safe_dsn}") from None
        self._kwargs: dict[str, Any] = {"autocommit": True}  # transactions are explicit, one per operation
        if "application_name" not in params:
            self._kwargs["application_name"] = "tornado_engine"
        if "connect_timeout" not in params:
            self._kwargs["connect_timeout"] = max(1, int(connect_timeout))
        self._min_size, self._max_size = min_size, max_size
        self._connect_timeout, self._timeout = connect_timeout, timeout
        if "idle_in_transaction_session_timeout" in str(params.get("options", "")):
            idle_in_transaction_timeout = None  # the DSN says what it wants
        self._idle_timeout = idle_in_transaction_timeout
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._saves: _GroupCommit[_Save] = _GroupCommit(
            self._flush_saves, limit=group_size, parallel=group_flushes, key=lambda save: save.job_id
        )
        self._tenants: _GroupCommit[str] = _GroupCommit(self._read_tenants, limit=group_size, parallel=2)

    def __repr__(self) -> str:
        return f"PostgresStore({self._safe_dsn!r})"

    def _redact(self, text: object) -> str:
        out = str(text)
        for secret in self._secrets:
            out = out.replace(secret, "***")
        return redact_dsn(out)

    async def _configure(self, conn: Conn) -> None:
        """Each new connection: a transaction left idle (a frozen worker) ends with its session."""
        if self._idle_timeout:
            await conn.execute(
                b"SELECT set_config('idle_in_transaction_session_timeout', %s, false)",
                (str(max(1, int(self._idle_timeout * 1000))),),
            )

    async def open(self) -> None:
        pool: AsyncConnectionPool[Conn] = _Pool(
            self._dsn,
            kwargs=self._kwargs,
            min_size=self._min_size,
            max_size=self._max_size,
            open=False,
            configure=self._configure,
            check=AsyncConnectionPool.check_connection,  # replaces connections the server dropped
            timeout=self._timeout,
            name="tornado-store",
        )
        try:
            await pool.open(wait=True, timeout=self._connect_timeout)
            async with pool.connection() as conn:
                await migrate(conn)
        except psycopg.Error as exc:
            await pool.close()
            raise StoreError(f"cannot open PostgreSQL store {self._safe_dsn}: {self._redact(exc)}") from None
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        await self._saves.wait_idle()  # saves already queued are written first
        await self._tenants.wait_idle()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _run(
        self, fn: Callable[[Conn], Awaitable[T]], *, idempotent: bool = False, transaction: bool = True
    ) -> T:
        """Run ``fn`` in one transaction, or for a single statement in none (two round trips fewer); retry
        once on a connection error that cannot have committed."""
        for attempt in (1, 2):
            if self._pool is None:
                raise StoreError("the store is not open")
            committing = False
            try:
                async with self._pool.connection() as conn:
                    if not transaction:
                        committing = True  # a statement on its own commits as it runs
                        return await fn(conn)
                    async with conn.transaction():
                        result = await fn(conn)
                        committing = True  # leaving the block sends COMMIT
                return result
            # connection lost, pool timeout, deadlock, shutdown; a session ended by its idle timeout
            except (psycopg.OperationalError, psycopg.errors.IdleInTransactionSessionTimeout) as exc:
                if committing and not idempotent:
                    raise StoreError(
                        "PostgreSQL connection lost while committing; the change may or may not have"
                        f" been applied: {self._redact(exc)}"
                    ) from None
                if attempt == 2:
                    raise StoreError(f"PostgreSQL store unavailable: {self._redact(exc)}") from None
                log.warning("PostgreSQL: %s; retrying once", self._redact(exc))
                await asyncio.sleep(_RETRY_DELAY * random.uniform(0.5, 1.5))
            except psycopg.Error as exc:
                raise _StatementError(f"PostgreSQL store error: {self._redact(exc)}") from None
        raise AssertionError("unreachable")

    # -- submit and read ----------------------------------------------------------------------------

    async def insert_jobs(
        self, jobs: list[Job], batch: BatchRecord | None = None, idempotency_key: str | None = None
    ) -> list[Job]:
        paused = bool(batch and batch.paused)

        async def insert(conn: Conn) -> list[Job]:
            rest = jobs
            if idempotency_key is not None and jobs:
                # ON CONFLICT: of two submits racing with one key, the second gets the first's job
                if await _one(conn, _INSERT_KEYED_JOB, _job_row(jobs[0], paused, idempotency_key)) is None:
                    row = await _one(conn, _JOB_BY_KEY, (jobs[0].owner, idempotency_key))
                    if row is None:
                        raise StoreError("idempotency key conflict, but no job holds the key")
                    return [_job(*row)]
                rest = jobs[1:]
            if batch is not None:
                await _exec(conn, _INSERT_BATCH, (batch.id, batch.owner, batch.created_at, batch.paused,
                                                  Json(batch.to_data())))  # fmt: skip
            if rest:
                async with conn.cursor() as cur:
                    await cur.executemany(_INSERT_JOB.encode(), [_job_row(j, paused, None) for j in rest])
            return jobs

        return await self._run(insert)

    async def get_job(self, job_id: str, owner: str | None = None) -> Job | None:
        async def get(conn: Conn) -> Job | None:
            row = await _one(conn, _GET_JOB, (job_id, owner, owner))
            return _job(*row) if row else None

        return await self._run(get, idempotent=True, transaction=False)

    async def list_jobs(
        self, owner: str | None, limit: int, offset: int, status: Status | None = None
    ) -> list[Job]:
        value = status.value if status else None

        async def select(conn: Conn) -> list[Job]:
            rows = await _all(conn, _LIST_JOBS, (owner, owner, value, value, limit, offset))
            return [_job(*r) for r in rows]

        return await self._run(select, idempotent=True, transaction=False)

    async def get_batch(self, batch_id: str, owner: str | None = None) -> BatchRecord | None:
        async def get(conn: Conn) -> BatchRecord | None:
            row = await _one(conn, _GET_BATCH, (batch_id, owner, owner))
            if row is None:
                return None
            completed, failed = await _one(conn, _BATCH_COUNTS, (batch_id,)) or (0, 0)
            data: dict[str, Any] = row[3]
            return BatchRecord(batch_id, row[0], row[1], row[2], data.get("show_url"), data.get("folder"),
                               list(data["job_ids"]), completed, failed, data.get("webhook_url"))  # fmt: skip

        return await self._run(get, idempotent=True)

    async def set_batch_paused(self, batch_id: str, paused: bool) -> None:
        async def update(conn: Conn) -> None:
            await conn.execute(b"UPDATE tornado_batches SET paused = %s WHERE id = %s", (paused, batch_id))
            await conn.execute(
                b"UPDATE tornado_jobs SET paused = %s WHERE id IN"
                b" (SELECT id FROM tornado_jobs WHERE batch_id = %s ORDER BY id FOR UPDATE)",
                (paused, batch_id),
            )

        await self._run(update, idempotent=True)

    async def usage(self, owner: str | None) -> UsageTotals:
        async def totals(conn: Conn) -> UsageTotals:
            rows = await _all(conn, _USAGE, (owner, owner))
            counts = {r[0]: r[1] for r in rows}
            backends = await _all(conn, _USAGE_BY_BACKEND, (owner, owner))
            return UsageTotals(
                counts, sum(int(r[2]) for r in rows), sum(int(r[3]) for r in rows),
                {str(b or "unknown"): int(n) for b, n in backends},
            )  # fmt: skip

        return await self._run(totals, idempotent=True)

    async def get_tenant(self, owner: str) -> dict[str, object] | None:
        found: dict[str, object] | None = await self._tenants.submit(owner)
        return dict(found) if found is not None else None

    async def _read_tenants(self, owners: list[str]) -> list[dict[str, object] | None]:
        """Every job looks its tenant up as it starts: one query for all the owners asked for at once."""

        async def read(conn: Conn) -> dict[str, dict[str, object]]:
            return {r[0]: r[1] for r in await _all(conn, _TENANTS, (sorted(set(owners)),))}

        found = await self._run(read, idempotent=True, transaction=False)
        return [found.get(owner) for owner in owners]

    async def put_tenant(self, owner: str, data: dict[str, object]) -> None:
        async def put(conn: Conn) -> None:
            await conn.execute(
                b"INSERT INTO tornado_tenants (owner, data) VALUES (%s, %s)"
                b" ON CONFLICT (owner) DO UPDATE SET data = excluded.data",
                (owner, Json(data)),
            )

        await self._run(put, idempotent=True)

    # -- changes outside a lease ----------------------------------------------------------------------

    async def update_pending(self, job: Job) -> bool:
        data = _columns(job)[3]

        async def update(conn: Conn) -> bool:
            query = "UPDATE tornado_jobs SET data = %s WHERE id = %s AND status = 'Pending'"
            return await _exec(conn, query, (data, job.id)) == 1

        return await self._run(update)

    async def update_finished(self, job: Job) -> bool:
        _, stored, _, data = _columns(job)

        async def update(conn: Conn) -> bool:
            query = f"UPDATE tornado_jobs SET stored_bytes = %s, data = %s WHERE id = %s AND {_IS_TERMINAL}"
            return await _exec(conn, query, (stored, data, job.id)) == 1

        return await self._run(update)

    async def request_cancel(
        self, job_id: str, owner: str | None, finished: Job | None, outbox: Sequence[OutboxMessage] = ()
    ) -> Job | None:
        rows = _outbox_rows(outbox)

        async def cancel(conn: Conn) -> Job | None:
            row = await _one(conn, _GET_JOB, (job_id, owner, owner))
            if row is None:
                return None
            if row[0] == Status.PENDING.value and finished is not None:
                await _lock_batch(conn, finished.batch_id)
                status, stored, reserved, data = _columns(finished)
                query = (
                    "UPDATE tornado_jobs SET status = %s, stored_bytes = %s, reserved_bytes = %s, data = %s"
                    " WHERE id = %s AND status = 'Pending'"
                )
                if await _exec(conn, query, (status, stored, reserved, data, job_id)) == 1:
                    await _insert_outbox(conn, rows)
                    if finished.batch_id is not None:
                        await _after_jobs_ended(conn, [finished.batch_id])
                    return _job(status, json.loads(data.obj))
            # Processing (perhaps claimed a moment ago): flagged for its worker's next heartbeat
            row = await _one(conn, _FLAG_CANCEL, (job_id,)) or await _one(
                conn, _GET_JOB, (job_id, None, None)
            )
            return _job(*row) if row else None

        return await self._run(cancel)

    # -- webhook outbox ---------------------------------------------------------------------------------

    async def enqueue(self, messages: Sequence[OutboxMessage]) -> None:
        rows = _outbox_rows(messages)

        async def enqueue(conn: Conn) -> None:
            await _insert_outbox(conn, rows)

        await self._run(enqueue, idempotent=True)  # ON CONFLICT (id) DO NOTHING: inserting twice is a no-op

    async def claim_outbox(self, limit: int, lease_seconds: float) -> list[OutboxMessage]:
        async def claim(conn: Conn) -> list[OutboxMessage]:
            rows = await _all(conn, _CLAIM_OUTBOX, (limit, float(lease_seconds)))
            return [OutboxMessage(*r) for r in rows]

        return await self._run(claim)

    async def finish_outbox(
        self, message: OutboxMessage, status: str, retry_in: float | None, error: str | None
    ) -> None:
        async def finish(conn: Conn) -> None:
            await conn.execute(
                b"UPDATE tornado_outbox SET status = %s, attempts = %s, last_error = %s,"
                b" lease_until = '-infinity', next_attempt_at = now() + make_interval(secs => %s::float8)"
                b" WHERE id = %s",
                (status, message.attempts, error, float(retry_in or 0), message.id),
            )
            if message.job_id and message.event in _JOB_EVENTS:
                # json, not jsonb (jsonb refuses \u0000 in titles): the merge happens here
                row = await _one(
                    conn, "SELECT data FROM tornado_jobs WHERE id = %s FOR UPDATE", (message.job_id,)
                )
                if row is not None:
                    data = {**row[0], "webhook_status": status, "webhook_attempts": message.attempts}
                    await _exec(
                        conn, "UPDATE tornado_jobs SET data = %s WHERE id = %s", (Json(data), message.job_id)
                    )

        await self._run(finish, idempotent=True)

    # -- workers ----------------------------------------------------------------------------------------

    async def claim(self, worker_id: str, limit: int, lease_seconds: float) -> list[Claim]:
        async def claim(conn: Conn) -> list[Claim]:
            rows = await _all(conn, _CLAIM, (limit, worker_id, float(lease_seconds)))
            rows.sort(key=lambda r: (r[2], r[3]))  # oldest first, as submitted
            return [Claim(_job(Status.PROCESSING.value, r[1]), r[0]) for r in rows]

        return await self._run(claim)

    async def save(self, job: Job, token: int, outbox: Sequence[OutboxMessage] = ()) -> None:
        status, stored, reserved, data = _plain_columns(job)
        terminal = job.is_terminal
        rows = _outbox_rows(outbox) if terminal else []
        await self._saves.submit(
            _Save(job.id, token, status, stored, reserved, data, terminal, job.batch_id, rows)
        )

    async def _flush_saves(self, saves: list[_Save]) -> list[Exception | None]:
        """One transaction for the group. Fenced by their tokens, saves can be retried when the COMMIT was
        cut (a server restart): a Processing write is applied again as it was, a terminal one is found in
        place; never reported as "may or may not have been applied", which the runner would take for the
        job's own failure. Should the statement fail for a row's sake, each save is made alone, so that
        only that one fails."""
        try:
            return await self._run(lambda conn: _save_group(conn, saves), idempotent=True)
        except _StatementError:
            if len(saves) == 1:
                raise
        outcomes: list[Exception | None] = []
        for save in saves:

            async def alone(conn: Conn, one: _Save = save) -> list[Exception | None]:
                return await _save_group(conn, [one])

            try:
                outcomes += await self._run(alone, idempotent=True)
            except StoreError as exc:
                outcomes.append(exc)
        return outcomes

    async def heartbeat(self, worker_id: str, tokens: dict[str, int], lease_seconds: float) -> Heartbeat:
        if not tokens:
            return Heartbeat(set(), set())
        ids, fences = list(tokens), list(tokens.values())

        async def beat(conn: Conn) -> Heartbeat:
            rows = await _all(conn, _HEARTBEAT, (ids, fences, worker_id, float(lease_seconds)))
            return Heartbeat(set(ids) - {r[0] for r in rows}, {r[0] for r in rows if r[1]})

        # one statement; extending a lease twice is harmless
        return await self._run(beat, idempotent=True, transaction=False)

    async def release(self, job: Job, token: int, delay_seconds: float = 0.0) -> None:
        job.status = Status.PENDING
        _, _, reserved, data = _columns(job)

        async def release(conn: Conn) -> None:
            if await _exec(conn, _RELEASE, (float(delay_seconds), reserved, data, job.id, token)) != 1:
                raise LeaseLost(f"job {job.id}: lease lost, release refused")

        await self._run(release)

    async def requeue_expired(self, is_dead_owner: Callable[[str], bool]) -> list[str]:
        async def requeue(conn: Conn) -> list[str]:
            dead = [owner for (owner,) in await _all(conn, _LEASE_OWNERS) if is_dead_owner(owner)]
            return [r[0] for r in await _all(conn, _REQUEUE, (dead,))]

        return await self._run(requeue)
