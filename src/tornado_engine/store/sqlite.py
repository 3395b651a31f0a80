"""The embedded default store: one SQLite file in WAL mode.

One connection lives on one dedicated thread, so the event loop never blocks on disk and sqlite3 is
never shared across threads. Writes use ``BEGIN IMMEDIATE`` so several processes on one machine can
share the file; ``busy_timeout`` absorbs their short write locks.

Group commit (:mod:`.sqlite_group`): operations queue up while the thread is busy, and the next hop to
the thread runs every one waiting, writes in one transaction, each in a savepoint of its own; none
returns before the COMMIT that made it durable. The schema is migrated at open (:mod:`.sqlite_schema`);
the queries are ``sql/sqlite/queries.sql``; what they write is decided in :mod:`.rules`.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ..errors import JobCancelled, LeaseLost, StoreError
from ..models import Job
from ..states import Status
from ..telemetry import instruments
from .base import BatchRecord, Claim, Heartbeat, OutboxMessage, TopRows, UsageTotals, WorkerRow
from .rules import (
    batch_counts,
    dumps,
    job_columns,
    marks_job,
    now_ms,
    released,
    started,
    webhook_fields,
)
from .sqlite_group import MAX_GROUP, Op, run_group
from .sqlite_rows import (
    Q,
    after_job_ended,
    insert_outbox,
    outbox_rows_due,
    row_to_job,
    status_counts,
)
from .sqlite_schema import migrate

__all__ = ["SQLiteStore"]

_BACKEND = {"tornado.store.backend": "sqlite"}

_T = TypeVar("_T")
_MISSING = (
    "no job store there: the SQLite file does not exist, and this command does not create one. A relative "
    "path (sqlite:///x.db, three slashes) is taken from the current folder; an absolute one is "
    "sqlite:////abs/path/jobs.db or a plain /abs/path/jobs.db"
)


class SQLiteStore:
    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        """``create=False``: a read-only caller (``jobs list``) refuses a missing file, never makes one."""
        self.path = str(path)
        self._create = create
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tornado-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._queue: list[Op] = []
        self._flusher: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    async def _run(
        self, fn: Callable[[sqlite3.Connection], _T], *, write: bool = True, savepoint: bool = True
    ) -> _T:
        """Queue ``fn`` for the store's thread; it runs in the next group (see the module's doc).
        ``savepoint=False``: ``fn`` changes the database in one statement at most (see ``Op``)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        self._queue.append(Op(fn, future, write, savepoint))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush(), name="tornado-sqlite-flush")
        return await future

    async def _flush(self) -> None:
        """Hands the waiting operations to the thread, a group at a time, until none wait."""
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                group = [op for op in self._queue[:MAX_GROUP] if not op.future.done()]  # done: cancelled
                del self._queue[:MAX_GROUP]
                if not group:
                    continue
                started = time.perf_counter()
                try:
                    outcomes = await loop.run_in_executor(self._executor, run_group, self._conn, group)
                except BaseException as exc:  # the executor shut down, or this task was cancelled
                    for op in group:
                        if not op.future.done():
                            op.future.set_exception(StoreError(f"SQLite store unavailable: {exc!r}"))
                    raise
                # one group, one round trip: timed once (a measurement per operation costs more)
                instruments.store_duration.record(time.perf_counter() - started, _BACKEND)
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
            if self.path != ":memory:" and not self._create and not Path(self.path).is_file():
                raise StoreError(_MISSING)
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            try:
                conn.execute("PRAGMA busy_timeout = 30000")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")  # durable across process crashes in WAL mode
                migrate(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, connect)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store: {exc}") from exc
        except OSError as exc:  # its folder cannot be made (a file on the way, no permission)
            raise StoreError(f"cannot open SQLite store: {exc.strerror or type(exc).__name__}") from None

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
        paused = int(batch.paused) if batch else 0
        rows = [(job.id, job.owner, *job_columns(job), job.created_at, job.created_at, job.batch_id,
                 paused) for job in jobs]  # fmt: skip
        key = idempotency_key if jobs else None

        def insert(conn: sqlite3.Connection) -> list[Job]:
            if key is not None:
                row = conn.execute(Q["job_by_key"], (jobs[0].owner, key)).fetchone()
                if row:
                    return [row_to_job(*row)]
            if batch is not None:
                conn.execute(Q["insert_batch"], (batch.id, batch.owner, batch.created_at, int(batch.paused),
                                                 json.dumps(batch.to_data())))  # fmt: skip
            conn.executemany(Q["insert_job"], rows)
            if key is not None:
                conn.execute(Q["set_idempotency_key"], (key, jobs[0].id))
            return jobs

        return await self._run(insert)

    async def get_job(self, job_id: str, owner: str | None = None) -> Job | None:
        def get(conn: sqlite3.Connection) -> Job | None:
            row = conn.execute(Q["get_job"], (job_id, owner)).fetchone()
            return row_to_job(*row) if row else None

        return await self._run(get, write=False)

    async def list_jobs(
        self, owner: str | None, limit: int, offset: int, status: Status | None = None
    ) -> list[Job]:
        value = status.value if status else None

        def select(conn: sqlite3.Connection) -> list[Job]:
            return [row_to_job(*r) for r in conn.execute(Q["list_jobs"], (owner, value, limit, offset))]

        return await self._run(select, write=False)

    async def get_batch(self, batch_id: str, owner: str | None = None) -> BatchRecord | None:
        def get(conn: sqlite3.Connection) -> BatchRecord | None:
            row = conn.execute(Q["get_batch"], (batch_id, owner)).fetchone()
            if row is None:
                return None
            counts = batch_counts(status_counts(conn, batch_id))
            return BatchRecord.from_row(batch_id, row[0], row[1], row[2], json.loads(row[3]), counts)

        return await self._run(get, write=False)

    async def set_batch_paused(self, batch_id: str, paused: bool) -> None:
        def update(conn: sqlite3.Connection) -> None:
            conn.execute(Q["pause_batch"], (int(paused), batch_id))
            conn.execute(Q["pause_batch_jobs"], (int(paused), batch_id))

        await self._run(update)

    async def usage(self, owner: str | None) -> UsageTotals:
        def totals(conn: sqlite3.Connection) -> UsageTotals:
            rows = conn.execute(Q["usage"], (owner,)).fetchall()
            backends = conn.execute(Q["usage_by_backend"], (owner,)).fetchall()
            waits = conn.execute(Q["usage_host_waits"], (owner,)).fetchone()[0]
            return UsageTotals(
                {r[0]: r[1] for r in rows}, sum(r[2] or 0 for r in rows), sum(r[3] or 0 for r in rows),
                {str(b or "unknown"): int(n) for b, n in backends}, int(waits or 0),
            )  # fmt: skip

        return await self._run(totals, write=False)

    async def live_workers(self, exclude: str) -> int:
        def count(conn: sqlite3.Connection) -> int:
            return int(conn.execute(Q["live_workers"], (now_ms(), exclude)).fetchone()[0])

        return await self._run(count, write=False)

    async def get_tenant(self, owner: str) -> dict[str, object] | None:
        def get(conn: sqlite3.Connection) -> dict[str, object] | None:
            row = conn.execute(Q["get_tenant"], (owner,)).fetchone()
            return json.loads(row[0]) if row else None

        return await self._run(get, write=False)

    async def put_tenant(self, owner: str, data: dict[str, object]) -> None:
        text = json.dumps(data)

        def put(conn: sqlite3.Connection) -> None:
            conn.execute(Q["put_tenant"], (owner, text))

        await self._run(put)

    async def get_tenant_sources(self, owner: str) -> dict[str, str]:
        def get(conn: sqlite3.Connection) -> dict[str, str]:
            return {str(k): str(v) for k, v in conn.execute(Q["tenant_sources"], (owner,)).fetchall()}

        return await self._run(get, write=False)

    async def reusable(
        self, owner: str, source_key: str, output_key: str, since_ms: int, limit: int
    ) -> list[Job]:
        args = (owner, source_key, output_key, since_ms, limit)

        def select(conn: sqlite3.Connection) -> list[Job]:
            return [row_to_job(*r) for r in conn.execute(Q["reusable"], args)]

        return await self._run(select, write=False)

    async def lead_reuse(self, owner: str, source_key: str, output_key: str, job_id: str) -> str:
        def lead(conn: sqlite3.Connection) -> str:
            conn.execute(Q["lead_reuse"], (owner, source_key, output_key, job_id))
            row = conn.execute(Q["reuse_leader"], (owner, source_key, output_key)).fetchone()
            return str(row[0])

        return await self._run(lead)

    async def end_reuse_lead(self, job_id: str) -> None:
        def end(conn: sqlite3.Connection) -> None:
            conn.execute(Q["end_reuse_lead"], (job_id,))

        await self._run(end)

    async def put_tenant_source(self, owner: str, kind: str, sealed: str | None) -> None:
        def put(conn: sqlite3.Connection) -> None:
            if sealed is None:
                conn.execute(Q["delete_tenant_source"], (owner, kind))
            else:
                conn.execute(Q["put_tenant_source"], (owner, kind, sealed))

        await self._run(put)

    # -- changes outside a lease ----------------------------------------------------------------------

    async def update_pending(self, job: Job) -> bool:
        data = job_columns(job)[3]

        def update(conn: sqlite3.Connection) -> bool:
            return conn.execute(Q["update_pending"], (data, job.id)).rowcount == 1

        return await self._run(update)

    async def update_finished(self, job: Job) -> bool:
        _, stored, _, data = job_columns(job)

        def update(conn: sqlite3.Connection) -> bool:
            return conn.execute(Q["update_finished"], (stored, data, job.id)).rowcount == 1

        return await self._run(update)

    async def request_cancel(
        self, job_id: str, owner: str | None, finished: Job | None, outbox: Sequence[OutboxMessage] = ()
    ) -> Job | None:
        columns = job_columns(finished) if finished is not None else None
        batch_id = finished.batch_id if finished is not None else None
        rows = outbox_rows_due(outbox)

        def cancel(conn: sqlite3.Connection) -> Job | None:
            row = conn.execute(Q["get_job"], (job_id, owner)).fetchone()
            if row is None:
                return None
            if row[0] == Status.PENDING.value and columns is not None:
                conn.execute(Q["cancel_pending"], (*columns, job_id))
                insert_outbox(conn, rows)
                after_job_ended(conn, batch_id)
                return row_to_job(columns[0], columns[3])
            if row[0] == Status.PROCESSING.value:
                conn.execute(Q["flag_cancel"], (job_id,))
            return row_to_job(*row)

        return await self._run(cancel)

    # -- webhook outbox ---------------------------------------------------------------------------------

    async def enqueue(self, messages: Sequence[OutboxMessage]) -> None:
        rows = outbox_rows_due(messages)

        def enqueue(conn: sqlite3.Connection) -> None:
            insert_outbox(conn, rows)

        await self._run(enqueue)

    async def claim_outbox(self, limit: int, lease_seconds: float) -> list[OutboxMessage]:
        def claim(conn: sqlite3.Connection) -> list[OutboxMessage]:
            now = now_ms()
            rows = conn.execute(Q["claim_outbox"], (now, now + int(lease_seconds * 1000), limit)).fetchall()
            return [OutboxMessage(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6], r[7]) for r in rows]

        return await self._run(claim)

    async def finish_outbox(
        self, message: OutboxMessage, status: str, retry_in: float | None, error: str | None
    ) -> None:
        noted = dumps(webhook_fields(status, message.attempts)) if marks_job(message) else None

        def finish(conn: sqlite3.Connection) -> None:
            due = now_ms() + int((retry_in or 0) * 1000)
            conn.execute(Q["finish_outbox"], (status, message.attempts, error, due, message.id))
            if noted is not None:
                conn.execute(Q["note_delivery"], (noted, message.job_id))

        await self._run(finish)

    # -- workers ----------------------------------------------------------------------------------------

    async def claim(
        self, worker_id: str, limit: int, lease_seconds: float, only: Collection[str] | None = None
    ) -> list[Claim]:
        listed = json.dumps(sorted(only)) if only is not None else None

        def claim(conn: sqlite3.Connection) -> list[Claim]:
            now = now_ms()
            params = (worker_id, now + int(lease_seconds * 1000), now, limit)
            if listed is None:
                rows = conn.execute(Q["claim"], params).fetchall()
            else:
                rows = conn.execute(Q["claim_listed"], (*params, listed)).fetchall()
            claims = [Claim(row_to_job(Status.PROCESSING.value, data), token) for token, data in rows]
            claims.sort(key=lambda c: c.job.created_at)
            # each attempt counted and its first step written in the claim's own savepoint: one fenced
            # write per job less than a separate save (the row is ours: its token was just handed out)
            writes = []
            for c in claims:
                c.stepped = started(c.job, now)
                _, _, reserved, record = job_columns(c.job)
                writes.append((reserved, record, c.job.id, c.token))
            conn.executemany(Q["save_step"], writes)
            return claims

        return await self._run(claim)

    async def save(self, job: Job, token: int, outbox: Sequence[OutboxMessage] = ()) -> None:
        columns = job_columns(job)
        terminal, batch_id = job.is_terminal, job.batch_id
        rows = outbox_rows_due(outbox) if terminal else []
        params: tuple[object, ...]
        if job.status is Status.PROCESSING:  # its step's write: status, stored bytes and owner stay
            query, params = Q["save_step"], (columns[2], columns[3], job.id, token)
        else:
            query, params = Q["save"], (*columns, job.id, token)

        def save(conn: sqlite3.Connection) -> None:
            if conn.execute(query, params).rowcount != 1:
                row = conn.execute(Q["cancel_requested"], (job.id, token)).fetchone()
                if row and row[0]:
                    raise JobCancelled(f"job {job.id} cancelled")
                raise LeaseLost(f"job {job.id}: lease lost, write refused")
            if terminal:  # in the same transaction (savepoint) as the record
                insert_outbox(conn, rows)
                after_job_ended(conn, batch_id)

        # a write that is one UPDATE (a step's; an end without webhook events or batch): a refused one
        # changes nothing, so it needs no savepoint
        await self._run(save, savepoint=bool(rows) or (terminal and batch_id is not None))

    async def heartbeat(
        self,
        worker_id: str,
        tokens: dict[str, int],
        lease_seconds: float,
        progress: Mapping[str, str] | None = None,
    ) -> Heartbeat:
        if not tokens:
            return Heartbeat(set(), set())
        held = json.dumps(tokens)
        changed = dict(progress or {})

        def beat(conn: sqlite3.Connection) -> Heartbeat:
            now = now_ms()
            params = (now + int(lease_seconds * 1000), now, held, worker_id)
            rows = conn.execute(Q["heartbeat"], params).fetchall()
            kept = {job_id for job_id, _ in rows}
            if writes := {job_id: text for job_id, text in changed.items() if job_id in kept}:
                # in the same transaction: progress costs the renewal no extra commit
                body = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in writes.items()) + "}"
                conn.execute(Q["save_progress"], (body, worker_id))
            return Heartbeat(set(tokens) - kept, {job_id for job_id, cancel in rows if cancel})

        return await self._run(beat)

    async def release(self, job: Job, token: int, delay_seconds: float = 0.0) -> None:
        reserved, data = released(job)

        def release(conn: sqlite3.Connection) -> None:
            available = now_ms() + int(delay_seconds * 1000)
            if conn.execute(Q["release"], (available, reserved, data, job.id, token)).rowcount != 1:
                raise LeaseLost(f"job {job.id}: lease lost, release refused")

        await self._run(release)

    async def requeue_expired(self, is_dead_owner: Callable[[str], bool]) -> list[str]:
        def requeue(conn: sqlite3.Connection) -> list[str]:
            now = now_ms()
            stale = [job_id for job_id, owner, expires in conn.execute(Q["leases"]).fetchall()
                     if (expires or 0) < now or (owner and is_dead_owner(owner))]  # fmt: skip
            conn.executemany(Q["requeue"], [(now, job_id) for job_id in stale])
            return stale

        return await self._run(requeue)

    def on_new_jobs(self, wake: Callable[[], None]) -> None:
        """SQLite has no channel between processes: a submit in this process wakes its scheduler directly
        (``Runtime.submitted``); jobs queued by another process on the same file are found by the next poll
        (``poll_interval``)."""

    # -- live views -------------------------------------------------------------------------------------

    async def top_rows(self, since_ms: int, limit: int) -> TopRows:
        def read(conn: sqlite3.Connection) -> TopRows:
            running = [(row_to_job(status, data, progress), owner) for status, data, progress, owner
                       in conn.execute(Q["top_running"], (limit,))]  # fmt: skip
            return TopRows(
                counts={r[0]: r[1] for r in conn.execute(Q["usage"], (None,))},
                running=running,
                workers=[WorkerRow(*r) for r in conn.execute(Q["top_workers"])],
                finished={r[0]: (r[1], r[2] or 0) for r in conn.execute(Q["top_finished"], (since_ms,))},
                errors=[row_to_job(*r) for r in conn.execute(Q["top_errors"], (limit,))],
            )

        return await self._run(read, write=False)
