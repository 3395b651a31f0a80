"""The embedded default store: one SQLite file in WAL mode.

One connection lives on one dedicated thread, so the event loop never blocks on disk and sqlite3 is
never shared across threads. Claims use ``BEGIN IMMEDIATE`` so several processes on one machine can
share the file; ``busy_timeout`` absorbs their short write locks.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ..errors import StoreError
from ..models import Job
from ..states import Status
from .base import Claim, LeaseLost

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
    data             TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (status, available_at, created_at);
CREATE INDEX IF NOT EXISTS jobs_owner_created ON jobs (owner, created_at DESC);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency
    ON jobs (owner, idempotency_key) WHERE idempotency_key IS NOT NULL;
"""


def _now_ms() -> int:
    return int(time.time() * 1000)


def _row_to_job(status: str, data: str) -> Job:
    job = Job.from_record(json.loads(data))
    job.status = Status(status)  # the column is the truth; data is rewritten on fenced saves
    return job


class SQLiteStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tornado-sqlite")
        self._conn: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._conn is None:
                raise StoreError("the store is not open")
            try:
                return fn(self._conn)
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store error: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

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
        def disconnect() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, disconnect)
        self._executor.shutdown(wait=True)

    async def insert_job(self, job: Job, idempotency_key: str | None = None) -> Job:
        record = json.dumps(job.to_record())

        def insert(conn: sqlite3.Connection) -> Job:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if idempotency_key is not None:
                    row = conn.execute(
                        "SELECT status, data FROM jobs WHERE owner = ? AND idempotency_key = ?",
                        (job.owner, idempotency_key),
                    ).fetchone()
                    if row:
                        conn.execute("COMMIT")
                        return _row_to_job(*row)
                conn.execute(
                    "INSERT INTO jobs (id, owner, status, created_at, available_at, idempotency_key, data)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        job.id,
                        job.owner,
                        job.status.value,
                        job.created_at,
                        job.created_at,
                        idempotency_key,
                        record,
                    ),
                )
                conn.execute("COMMIT")
                return job
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        return await self._run(insert)

    async def get_job(self, job_id: str, owner: str | None = None) -> Job | None:
        def get(conn: sqlite3.Connection) -> Job | None:
            if owner is None:
                row = conn.execute("SELECT status, data FROM jobs WHERE id = ?", (job_id,)).fetchone()
            else:
                row = conn.execute(
                    "SELECT status, data FROM jobs WHERE id = ? AND owner = ?", (job_id, owner)
                ).fetchone()
            return _row_to_job(*row) if row else None

        return await self._run(get)

    async def list_jobs(
        self, owner: str | None, limit: int, offset: int, status: Status | None = None
    ) -> list[Job]:
        clauses, args = [], []
        if owner is not None:
            clauses.append("owner = ?")
            args.append(owner)
        if status is not None:
            clauses.append("status = ?")
            args.append(status.value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT status, data FROM jobs {where} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?"

        def select(conn: sqlite3.Connection) -> list[Job]:
            return [_row_to_job(*r) for r in conn.execute(sql, (*args, limit, offset))]

        return await self._run(select)

    async def claim(self, worker_id: str, limit: int, lease_seconds: float) -> list[Claim]:
        def claim(conn: sqlite3.Connection) -> list[Claim]:
            now = _now_ms()
            rows = conn.execute(
                "UPDATE jobs SET status = 'Processing', lease_owner = ?, lease_token = lease_token + 1,"
                " lease_expires_at = ? WHERE id IN (SELECT id FROM jobs WHERE status = 'Pending'"
                " AND available_at <= ? ORDER BY available_at, created_at LIMIT ?)"
                " RETURNING lease_token, data",
                (worker_id, now + int(lease_seconds * 1000), now, limit),
            ).fetchall()
            claims = [Claim(_row_to_job("Processing", data), token) for token, data in rows]
            claims.sort(key=lambda c: c.job.created_at)
            return claims

        return await self._run(claim)

    async def save(self, job: Job, token: int) -> None:
        record = json.dumps(job.to_record())

        def save(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE jobs SET status = ?, data = ? WHERE id = ? AND lease_token = ?"
                " AND status = 'Processing'",
                (job.status.value, record, job.id, token),
            )
            if cur.rowcount != 1:
                raise LeaseLost(f"job {job.id}: lease lost, write refused")

        await self._run(save)

    async def heartbeat(self, worker_id: str, tokens: dict[str, int], lease_seconds: float) -> set[str]:
        def beat(conn: sqlite3.Connection) -> set[str]:
            expires = _now_ms() + int(lease_seconds * 1000)
            lost = set()
            conn.execute("BEGIN IMMEDIATE")
            try:
                for job_id, token in tokens.items():
                    cur = conn.execute(
                        "UPDATE jobs SET lease_expires_at = ? WHERE id = ? AND lease_token = ?"
                        " AND lease_owner = ? AND status = 'Processing'",
                        (expires, job_id, token, worker_id),
                    )
                    if cur.rowcount != 1:
                        lost.add(job_id)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return lost

        return await self._run(beat)

    async def release(self, job: Job, token: int, delay_seconds: float = 0.0) -> None:
        job.status = Status.PENDING
        record = json.dumps(job.to_record())

        def release(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                "UPDATE jobs SET status = 'Pending', lease_owner = NULL, lease_expires_at = NULL,"
                " available_at = ?, data = ? WHERE id = ? AND lease_token = ? AND status = 'Processing'",
                (_now_ms() + int(delay_seconds * 1000), record, job.id, token),
            )
            if cur.rowcount != 1:
                raise LeaseLost(f"job {job.id}: lease lost, release refused")

        await self._run(release)

    async def requeue_expired(self, is_dead_owner: Callable[[str], bool]) -> list[str]:
        def requeue(conn: sqlite3.Connection) -> list[str]:
            now = _now_ms()
            conn.execute("BEGIN IMMEDIATE")
            try:
                rows = conn.execute(
                    "SELECT id, lease_owner, lease_expires_at FROM jobs WHERE status = 'Processing'"
                ).fetchall()
                stale = [
                    job_id
                    for job_id, owner, expires in rows
                    if (expires or 0) < now or (owner and is_dead_owner(owner))
                ]
                for job_id in stale:
                    conn.execute(
                        "UPDATE jobs SET status = 'Pending', lease_owner = NULL, lease_expires_at = NULL,"
                        " available_at = ? WHERE id = ?",
                        (now, job_id),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return stale

        return await self._run(requeue)
