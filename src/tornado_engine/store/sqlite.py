"""The embedded default store: one SQLite file in WAL mode.

One connection lives on one dedicated thread, so the event loop never blocks on disk and sqlite3 is
never shared across threads. Writes use ``BEGIN IMMEDIATE`` so several processes on one machine can
share the file; ``busy_timeout`` absorbs their short write locks.

Group commit: operations queue up while the thread is busy, and the next hop to the thread runs every
one waiting, writes in one transaction (one fsync of the WAL, one lock). Each operation runs in a
savepoint of its own, so one that fails (a stale lease token, a cancelled job) is rolled back alone and
raises for its caller only; the others commit, and none returns before the COMMIT that made it durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..errors import JobCancelled, StoreError
from ..models import Job
from ..states import TERMINAL, Status
from ..webhooks import batch_payload
from .base import BatchRecord, Claim, Heartbeat, LeaseLost, OutboxMessage, UsageTotals

__all__ = ["SQLiteStore"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id               TEXT PRIMARY KEY,
    owner            TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    available_at     INTEGER NOT NULL,
    idempotency_key  TEXT,
    lease_owner      TEXT,
    lease_token      INTEGER NOT NULL DEFAULT 0,
    lease_expires_at INTEGER,
    batch_id         TEXT,
    paused           INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    stored_bytes     INTEGER NOT NULL DEFAULT 0,
    reserved_bytes   INTEGER NOT NULL DEFAULT 0,
    data             TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (status, paused, available_at, created_at);
CREATE INDEX IF NOT EXISTS jobs_batch ON jobs (batch_id);
CREATE TABLE IF NOT EXISTS batches (
    id         TEXT PRIMARY KEY,
    owner      TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    paused     INTEGER NOT NULL DEFAULT 0,
    notified   INTEGER NOT NULL DEFAULT 0,
    data       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id              TEXT PRIMARY KEY,
    owner           TEXT NOT NULL DEFAULT '',
    job_id          TEXT,
    url             TEXT NOT NULL,
    event           TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS tenants (
    owner TEXT PRIMARY KEY,
    data  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_owner_created ON jobs (owner, created_at DESC);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency
    ON jobs (owner, idempotency_key) WHERE idempotency_key IS NOT NULL;
"""


def _now_ms() -> int:
    return int(time.time() * 1000)


def _row_to_job(status: str, data: str) -> Job:
    job = Job.from_record(json.loads(data))
    job.status = Status(status)  # the column is the truth; data is rewritten on every write
    return job


def _job_columns(job: Job) -> tuple[str, int, int, str]:
    """status, stored_bytes, reserved_bytes, data: the columns each write of a job sets together."""
    stored = job.file_size or 0 if job.status is Status.COMPLETED and not job.file_deleted_at else 0
    reserved = job.reserved_bytes if job.status in (Status.PENDING, Status.PROCESSING) else 0
    return job.status.value, stored, reserved, _dumps(job.to_record())


# records are written several times per job: compact, and without the circular-reference bookkeeping
_dumps = json.JSONEncoder(check_circular=False, separators=(",", ":")).encode


_TERMINAL_SQL = ", ".join(f"'{s.value}'" for s in TERMINAL)
_JOB_EVENTS = ("job_completed", "job_failed", "job_skipped", "job_cancelled")


_OutboxRow = tuple[str, str, str | None, str, str, str, int, int]


def _outbox_rows(messages: Sequence[OutboxMessage]) -> list[_OutboxRow]:
    """Encoded when the call is made, on the event loop: the thread gets plain values only."""
    now = _now_ms()
    return [(m.id, m.owner, m.job_id, m.url, m.event, _dumps(m.payload), now, m.created_at or now)
            for m in messages]  # fmt: skip


def _insert_outbox(conn: sqlite3.Connection, rows: Sequence[_OutboxRow]) -> None:
    if rows:
        conn.executemany(
            "INSERT OR IGNORE INTO outbox (id, owner, job_id, url, event, payload, next_attempt_at,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def _after_job_ended(conn: sqlite3.Connection, batch_id: str | None) -> None:
    """The last job of a batch to end queues the batch's ``batch_completed`` event, exactly once."""
    if batch_id is None:
        return
    open_jobs = conn.execute(
        f"SELECT EXISTS (SELECT 1 FROM jobs WHERE batch_id = ? AND status NOT IN ({_TERMINAL_SQL}))",
        (batch_id,),
    ).fetchone()[0]
    if open_jobs:
        return
    row = conn.execute(
        "UPDATE batches SET notified = 1 WHERE id = ? AND notified = 0 RETURNING owner, data", (batch_id,)
    ).fetchone()
    if row is None or not json.loads(row[1]).get("webhook_url"):
        return
    counts = dict(
        conn.execute("SELECT status, COUNT(*) FROM jobs WHERE batch_id = ? GROUP BY status", (batch_id,))
    )
    completed = counts.get(Status.COMPLETED.value, 0)
    total = sum(counts.values())
    message = OutboxMessage(
        id=f"msg_batch_{batch_id}", owner=row[0], url=json.loads(row[1])["webhook_url"],
        event="batch_completed", payload=batch_payload(batch_id, completed, total - completed, total),
    )  # fmt: skip
    _insert_outbox(conn, _outbox_rows([message]))


# -- group commit ---------------------------------------------------------------------------------------

_MAX_GROUP = 512  # operations per hop to the thread (and per transaction)


@dataclass(eq=False, slots=True)
class _Op:
    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    write: bool


def _failure(exc: Exception) -> Exception:
    if isinstance(exc, sqlite3.Error):
        error = StoreError(f"SQLite store error: {exc}")
        error.__cause__ = exc
        return error
    return exc


def _run_group(conn: sqlite3.Connection | None, ops: Sequence[_Op]) -> list[tuple[bool, Any]]:
    """On the store's thread: every operation of ``ops``, in order; ``(True, result)`` or ``(False,
    exception)`` for each. Writes share one transaction, each in a savepoint of its own; when the
    transaction itself fails (BEGIN, COMMIT, or an error that rolled it back) every operation fails."""
    if conn is None:
        return [(False, StoreError("the store is not open"))] * len(ops)
    if not any(op.write for op in ops):  # reads only: no transaction, no write lock
        outcomes: list[tuple[bool, Any]] = []
        for op in ops:
            try:
                outcomes.append((True, op.fn(conn)))
            except Exception as exc:
                outcomes.append((False, _failure(exc)))
        return outcomes
    outcomes = []
    try:
        conn.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlocks between processes
        for op in ops:
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


class SQLiteStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tornado-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._queue: list[_Op] = []
        self._flusher: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    async def _run(self, fn: Callable[[sqlite3.Connection], T], *, write: bool = True) -> T:
        """Queue ``fn`` for the store's thread; it runs in the next group (see the module's doc)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.append(_Op(fn, future, write))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush(), name="tornado-sqlite-flush")
        return await future

    async def _flush(self) -> None:
        """Hands the waiting operations to the thread, a group at a time, until none wait."""
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                group = [op for op in self._queue[:_MAX_GROUP] if not op.future.done()]  # done: cancelled
                del self._queue[:_MAX_GROUP]
                if not group:
                    continue
                try:
                    outcomes = await loop.run_in_executor(self._executor, _run_group, self._conn, group)
                except BaseException as exc:  # the executor shut down, or this task was cancelled
                    for op in group:
                        if not op.future.done():
                            op.future.set_exception(StoreError(f"SQLite store unavailable: {exc!r}"))
                    raise
                for op, (ok, value) in zip(group, outcomes, strict=True):
                    if op.future.done():  # its caller was cancelled meanwhile
                        continue
                    if ok:
                        op.future.set_result(value)
                    else:
                        op.future.set_exception(value)
        finally:
            self._flusher = None

    async def open(self) -> None:
        def connect() -> None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # durable across process crashes in WAL mode
            conn.executescript(_SCHEMA)
            self._conn = conn

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, connect)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store: {exc}") from exc

    async def close(self) -> None:
        while self._flusher is not None:  # operations already queued still run
            await asyncio.shield(self._flusher)

        def disconnect() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, disconnect)
        self._executor.shutdown(wait=True)

    # -- submit and read ----------------------------------------------------------------------------

    async def insert_jobs(
        self, jobs: list[Job], batch: BatchRecord | None = None, idempotency_key: str | None = None
    ) -> list[Job]:
        rows = [
            (job.id, job.owner, *_job_columns(job), job.created_at, job.created_at, job.batch_id,
             int(batch.paused) if batch else 0)
            for job in jobs
        ]  # fmt: skip

        def insert(conn: sqlite3.Connection) -> list[Job]:
            if idempotency_key is not None and jobs:
                row = conn.execute(
                    "SELECT status, data FROM jobs WHERE owner = ? AND idempotency_key = ?",
                    (jobs[0].owner, idempotency_key),
                ).fetchone()
                if row:
                    return [_row_to_job(*row)]
            if batch is not None:
                conn.execute(
                    "INSERT INTO batches (id, owner, created_at, paused, data) VALUES (?, ?, ?, ?, ?)",
                    (batch.id, batch.owner, batch.created_at, int(batch.paused),
                     json.dumps(batch.to_data())),
                )  # fmt: skip
            conn.executemany(
                "INSERT INTO jobs (id, owner, status, stored_bytes, reserved_bytes, data, created_at,"
                " available_at, batch_id, paused) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            if idempotency_key is not None and jobs:
                conn.execute(
                    "UPDATE jobs SET idempotency_key = ? WHERE id = ?", (idempotency_key, jobs[0].id)
                )
            return jobs

        return await self._run(insert)

    async def get_job(self, job_id: str, owner: str | None = None) -> Job | None:
        def get(conn: sqlite3.Connection) -> Job | None:
            row = conn.execute(
                "SELECT status, data FROM jobs WHERE id = ? AND (? IS NULL OR owner = ?)",
                (job_id, owner, owner),
            ).fetchone()
            return _row_to_job(*row) if row else None

        return await self._run(get, write=False)

    async def list_jobs(
        self, owner: str | None, limit: int, offset: int, status: Status | None = None
    ) -> list[Job]:
        value = status.value if status else None

        def select(conn: sqlite3.Connection) -> list[Job]:
            rows = conn.execute(
                "SELECT status, data FROM jobs WHERE (? IS NULL OR owner = ?) AND (? IS NULL OR status = ?)"
                " ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
                (owner, owner, value, value, limit, offset),
            )
            return [_row_to_job(*r) for r in rows]

        return await self._run(select, write=False)

    async def get_batch(self, batch_id: str, owner: str | None = None) -> BatchRecord | None:
        def get(conn: sqlite3.Connection) -> BatchRecord | None:
            row = conn.execute(
                "SELECT owner, created_at, paused, data FROM batches"
                " WHERE id = ? AND (? IS NULL OR owner = ?)",
                (batch_id, owner, owner),
            ).fetchone()
            if row is None:
                return None
            data: dict[str, Any] = json.loads(row[3])
            counts = dict(
                conn.execute(
                    "SELECT status, COUNT(*) FROM jobs WHERE batch_id = ? GROUP BY status", (batch_id,)
                )
            )
            completed = counts.pop(Status.COMPLETED.value, 0)
            failed = sum(n for st, n in counts.items() if st in {s.value for s in TERMINAL})
            return BatchRecord(batch_id, row[0], row[1], bool(row[2]), data.get("show_url"),
                               data.get("folder"), list(data["job_ids"]), completed, failed)  # fmt: skip

        return await self._run(get, write=False)

    async def set_batch_paused(self, batch_id: str, paused: bool) -> None:
        def update(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE batches SET paused = ? WHERE id = ?", (int(paused), batch_id))
            conn.execute("UPDATE jobs SET paused = ? WHERE batch_id = ?", (int(paused), batch_id))

        await self._run(update)

    async def usage(self, owner: str | None) -> UsageTotals:
        def totals(conn: sqlite3.Connection) -> UsageTotals:
            rows = conn.execute(
                "SELECT status, COUNT(*), SUM(stored_bytes), SUM(reserved_bytes) FROM jobs"
                " WHERE (? IS NULL OR owner = ?) GROUP BY status",
                (owner, owner),
            ).fetchall()
            counts = {r[0]: r[1] for r in rows}
            backends = conn.execute(
                "SELECT substr(url, 1, instr(url, ':') - 1), SUM(stored_bytes) FROM (SELECT stored_bytes,"
                " json_extract(data, '$.storage_url') AS url FROM jobs WHERE (? IS NULL OR owner = ?)"
                " AND stored_bytes > 0) GROUP BY 1",
                (owner, owner),
            ).fetchall()
            return UsageTotals(
                counts, sum(r[2] or 0 for r in rows), sum(r[3] or 0 for r in rows),
                {str(b or "unknown"): int(n) for b, n in backends},
            )  # fmt: skip

        return await self._run(totals, write=False)

    async def get_tenant(self, owner: str) -> dict[str, object] | None:
        def get(conn: sqlite3.Connection) -> dict[str, object] | None:
            row = conn.execute("SELECT data FROM tenants WHERE owner = ?", (owner,)).fetchone()
            return json.loads(row[0]) if row else None

        return await self._run(get, write=False)

    async def put_tenant(self, owner: str, data: dict[str, object]) -> None:
        def put(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO tenants (owner, data) VALUES (?, ?)"
                " ON CONFLICT (owner) DO UPDATE SET data = excluded.data",
                (owner, json.dumps(data)),
            )

        await self._run(put)

    # -- changes outside a lease ----------------------------------------------------------------------

    async def update_pending(self, job: Job) -> bool:
        data = _job_columns(job)[3]

        def update(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("UPDATE jobs SET data = ? WHERE id = ? AND status = 'Pending'", (data, job.id))
            return cur.rowcount == 1

        return await self._run(update)

    async def update_finished(self, job: Job) -> bool:
        _, stored, _, data = _job_columns(job)

        def update(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                f"UPDATE jobs SET stored_bytes = ?, data = ? WHERE id = ? AND status IN ({_TERMINAL_SQL})",
                (stored, data, job.id),
            )
            return cur.rowcount == 1

        return await self._run(update)

    async def request_cancel(
        self, job_id: str, owner: str | None, finished: Job | None, outbox: Sequence[OutboxMessage] = ()
    ) -> Job | None:
        columns = _job_columns(finished) if finished is not None else None
        rows = _outbox_rows(outbox)

        def cancel(conn: sqlite3.Connection) -> Job | None:
            row = conn.execute(
                "SELECT status, data FROM jobs WHERE id = ? AND (? IS NULL OR owner = ?)",
                (job_id, owner, owner),
            ).fetchone()
            if row is None:
                return None
            if row[0] == Status.PENDING.value and columns is not None and finished is not None:
                conn.execute(
                    "UPDATE jobs SET status = ?, stored_bytes = ?, reserved_bytes = ?, data = ? WHERE id = ?",
                    (*columns, job_id),
                )
                _insert_outbox(conn, rows)
                _after_job_ended(conn, finished.batch_id)
                return _row_to_job(columns[0], columns[3])
            if row[0] == Status.PROCESSING.value:
                conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
            return _row_to_job(*row)

        return await self._run(cancel)

    # -- webhook outbox ---------------------------------------------------------------------------------

    async def enqueue(self, messages: Sequence[OutboxMessage]) -> None:
        rows = _outbox_rows(messages)

        def enqueue(conn: sqlite3.Connection) -> None:
            _insert_outbox(conn, rows)

        await self._run(enqueue)

    async def claim_outbox(self, limit: int, lease_seconds: float) -> list[OutboxMessage]:
        def claim(conn: sqlite3.Connection) -> list[OutboxMessage]:
            now = _now_ms()
            rows = conn.execute(
                "UPDATE outbox SET lease_until = ? WHERE id IN (SELECT id FROM outbox"
                " WHERE status = 'pending' AND next_attempt_at <= ? AND lease_until <= ?"
                " ORDER BY next_attempt_at LIMIT ?)"
                " RETURNING id, owner, url, event, payload, job_id, attempts, created_at",
                (now + int(lease_seconds * 1000), now, now, limit),
            ).fetchall()
            return [OutboxMessage(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6], r[7]) for r in rows]

        return await self._run(claim)

    async def finish_outbox(
        self, message: OutboxMessage, status: str, retry_in: float | None, error: str | None
    ) -> None:
        def finish(conn: sqlite3.Connection) -> None:
            now = _now_ms()
            conn.execute(
                "UPDATE outbox SET status = ?, attempts = ?, last_error = ?, lease_until = 0,"
                " next_attempt_at = ? WHERE id = ?",
                (status, message.attempts, error, now + int((retry_in or 0) * 1000), message.id),
            )
            if message.job_id and message.event in _JOB_EVENTS:
                conn.execute(
                    "UPDATE jobs SET data = json_set(data, '$.webhook_status', ?,"
                    " '$.webhook_attempts', ?) WHERE id = ?",
                    (status, message.attempts, message.job_id),
                )

        await self._run(finish)

    # -- workers ----------------------------------------------------------------------------------------

    async def claim(self, worker_id: str, limit: int, lease_seconds: float) -> list[Claim]:
        def claim(conn: sqlite3.Connection) -> list[Claim]:
            now = _now_ms()
            rows = conn.execute(
                "UPDATE jobs SET status = 'Processing', lease_owner = ?, lease_token = lease_token + 1,"
                " lease_expires_at = ? WHERE id IN (SELECT id FROM jobs WHERE status = 'Pending'"
                " AND paused = 0 AND available_at <= ? ORDER BY available_at, created_at LIMIT ?)"
                " RETURNING lease_token, data",
                (worker_id, now + int(lease_seconds * 1000), now, limit),
            ).fetchall()
            claims = [Claim(_row_to_job("Processing", data), token) for token, data in rows]
            claims.sort(key=lambda c: c.job.created_at)
            return claims

        return await self._run(claim)

    async def save(self, job: Job, token: int, outbox: Sequence[OutboxMessage] = ()) -> None:
        status, stored, reserved, data = _job_columns(job)
        terminal, batch_id = job.is_terminal, job.batch_id
        rows = _outbox_rows(outbox) if terminal else []

        def save(conn: sqlite3.Connection) -> None:
            write(conn)
            if terminal:  # in the same transaction (savepoint) as the record
                _insert_outbox(conn, rows)
                _after_job_ended(conn, batch_id)

        def write(conn: sqlite3.Connection) -> None:
            # Completed never lands on a job whose cancel was accepted: that cancel would be a lie.
            cur = conn.execute(
                "UPDATE jobs SET status = ?, stored_bytes = ?, reserved_bytes = ?, data = ?,"
                " lease_owner = CASE WHEN ? = 'Processing' THEN lease_owner END"
                " WHERE id = ? AND lease_token = ? AND status = 'Processing'"
                " AND (? != 'Completed' OR cancel_requested = 0)",
                (status, stored, reserved, data, status, job.id, token, status),
            )
            if cur.rowcount == 1:
                return
            row = conn.execute(
                "SELECT cancel_requested FROM jobs"
                " WHERE id = ? AND lease_token = ? AND status = 'Processing'",
                (job.id, token),
            ).fetchone()
            if row and row[0]:
                raise JobCancelled(f"job {job.id} cancelled")
            raise LeaseLost(f"job {job.id}: lease lost, write refused")

        await self._run(save)

    async def heartbeat(self, worker_id: str, tokens: dict[str, int], lease_seconds: float) -> Heartbeat:
        if not tokens:
            return Heartbeat(set(), set())
        held = json.dumps(tokens)

        def beat(conn: sqlite3.Connection) -> Heartbeat:
            # one statement for all of this worker's leases: {job id: token} as a JSON object; the unary
            # + keeps the planner on the primary key (one lookup per lease), not on the status index
            rows = conn.execute(
                "UPDATE jobs SET lease_expires_at = ? FROM json_each(?) AS held"
                " WHERE jobs.id = held.key AND jobs.lease_token = held.value AND jobs.lease_owner = ?"
                " AND +jobs.status = 'Processing' RETURNING jobs.id, jobs.cancel_requested",
                (_now_ms() + int(lease_seconds * 1000), held, worker_id),
            ).fetchall()
            kept = {job_id for job_id, _ in rows}
            return Heartbeat(set(tokens) - kept, {job_id for job_id, cancel in rows if cancel})

        return await self._run(beat)

    async def release(self, job: Job, token: int, delay_seconds: float = 0.0) -> None:
        job.status = Status.PENDING
        _, _, reserved, data = _job_columns(job)

        def release(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE jobs SET status = 'Pending', lease_owner = NULL, lease_expires_at = NULL,"
                " available_at = ?, reserved_bytes = ?, data = ?"
                " WHERE id = ? AND lease_token = ? AND status = 'Processing'",
                (_now_ms() + int(delay_seconds * 1000), reserved, data, job.id, token),
            )
            if cur.rowcount != 1:
                raise LeaseLost(f"job {job.id}: lease lost, release refused")

        await self._run(release)

    async def requeue_expired(self, is_dead_owner: Callable[[str], bool]) -> list[str]:
        def requeue(conn: sqlite3.Connection) -> list[str]:
            now = _now_ms()
            rows = conn.execute(
                "SELECT id, lease_owner, lease_expires_at FROM jobs WHERE status = 'Processing'"
            ).fetchall()
            stale = [
                job_id
                for job_id, owner, expires in rows
                if (expires or 0) < now or (owner and is_dead_owner(owner))
            ]
            conn.executemany(
                "UPDATE jobs SET status = 'Pending', lease_owner = NULL, lease_expires_at = NULL,"
                " available_at = ? WHERE id = ? AND status = 'Processing'",
                [(now, job_id) for job_id in stale],
            )
            return stale

        return await self._run(requeue)
