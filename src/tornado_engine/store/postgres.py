"""The PostgreSQL store: several engine processes, on several machines, share one database.

- Claims take rows with ``FOR UPDATE SKIP LOCKED`` (procrastinate's claim), so concurrent workers neither
  wait for nor double-claim each other's jobs.
- Leases are computed and compared on the database clock (``now()``), never a worker's clock.
- Every write of a running job is fenced by its lease token; Completed is refused with JobCancelled once
  a cancel was requested, exactly as in the SQLite store.
- Each operation is one transaction, on a pool that reconnects quickly and retries only what cannot
  have been applied twice (:mod:`.pg_pool`).
- Group commit: saves made while one is in flight queue up, and the next flush writes all of them in one
  transaction (:mod:`.pg_saves`); should the group's statement fail (a bad row), each save runs alone
  instead. Tenant lookups are grouped the same way (one query for all owners asked for at once).
- The schema is versioned SQL in ``sql/postgres/`` (:mod:`.pg_schema`); the queries are
  ``sql/postgres/queries.sql`` (:mod:`.pg_sql`); what they write is decided in :mod:`.rules`.
- Idle workers are woken by LISTEN/NOTIFY (:mod:`.pg_listen`): the transactions that make jobs claimable
  notify, in the same transaction; polling stays the fallback.
- The DSN's password never appears in a repr, a log line or an error (:func:`redact_dsn`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from psycopg.types.json import Json

from ..errors import LeaseLost, StoreError
from ..models import Job
from ..states import Status
from .base import BatchRecord, Claim, Heartbeat, OutboxMessage, TopRows, UsageTotals, WorkerRow
from .group_commit import GroupCommit
from .pg_listen import JobsListener
from .pg_pool import Conn, Connections, _StatementError, redact_dsn
from .pg_saves import Save, save_group
from .pg_schema import Migration, load_migrations, migrate
from .pg_sql import (
    Q,
    after_jobs_ended,
    columns,
    execute,
    fetch_all,
    fetch_one,
    insert_outbox,
    job_row,
    lock_batch,
)
from .rules import (
    job_columns,
    job_from_record,
    marks_job,
    now_ms,
    outbox_rows,
    released,
    started,
    webhook_fields,
)

__all__ = ["Migration", "PostgresStore", "load_migrations", "migrate", "redact_dsn"]


def _job(status: str, data: dict[str, Any], progress: dict[str, Any] | None = None) -> Job:
    return job_from_record(status, data, progress)


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
        create: bool = True,
    ) -> None:
        """``idle_in_transaction_timeout``: seconds a session may sit idle inside a transaction before the
        server ends it (releasing its locks); None leaves the server's setting (also when the DSN sets
        ``idle_in_transaction_session_timeout`` through ``options``). ``group_size``: saves per group
        commit; ``group_flushes``: group transactions in flight at once (each on its own connection).
        ``create=False`` (read-only commands): a database without the job tables is a StoreError, and
        nothing is created in it."""
        self._create = create
        self._db = Connections(
            dsn, min_size=min_size, max_size=max_size, connect_timeout=connect_timeout, timeout=timeout,
            idle_in_transaction_timeout=idle_in_transaction_timeout,
        )  # fmt: skip
        self._run = self._db.run
        self._saves: GroupCommit[Save] = GroupCommit(
            self._flush_saves, limit=group_size, parallel=group_flushes, key=lambda save: save.job_id
        )
        self._tenants: GroupCommit[str] = GroupCommit(self._read_tenants, limit=group_size, parallel=2)
        self.listener: JobsListener | None = None

    def __repr__(self) -> str:
        return f"PostgresStore({self._db.safe_dsn!r})"

    async def open(self) -> None:
        await self._db.open(functools.partial(migrate, create=self._create))

    async def close(self) -> None:
        if self.listener is not None:
            await self.listener.stop()
            self.listener = None
        await self._saves.wait_idle()  # saves already queued are written first
        await self._tenants.wait_idle()
        await self._db.close()

    # -- submit and read ----------------------------------------------------------------------------

    async def insert_jobs(
        self, jobs: list[Job], batch: BatchRecord | None = None, idempotency_key: str | None = None
    ) -> list[Job]:
        paused = bool(batch and batch.paused)

        async def insert(conn: Conn) -> list[Job]:
            rest = jobs
            if idempotency_key is not None and jobs:
                # ON CONFLICT: of two submits racing with one key, the second gets the first's job
                if (
                    await fetch_one(conn, Q["insert_keyed_job"], job_row(jobs[0], paused, idempotency_key))
                    is None
                ):
                    row = await fetch_one(conn, Q["job_by_key"], (jobs[0].owner, idempotency_key))
                    if row is None:
                        raise StoreError("idempotency key conflict, but no job holds the key")
                    return [_job(*row)]
                rest = jobs[1:]
            # one round trip for the batch, the jobs and the notification (the COMMIT wakes the workers)
            async with conn.pipeline(), conn.cursor() as cur:
                if batch is not None:
                    await cur.execute(Q["insert_batch"], (batch.id, batch.owner, batch.created_at,
                                                          batch.paused, Json(batch.to_data())))  # fmt: skip
                if rest:
                    await cur.executemany(Q["insert_job"], [job_row(j, paused, None) for j in rest])
                if not paused:
                    await cur.execute(Q["notify_jobs"])
            return jobs

        return await self._run(insert)

    async def get_job(self, job_id: str, owner: str | None = None) -> Job | None:
        async def get(conn: Conn) -> Job | None:
            row = await fetch_one(conn, Q["get_job"], (job_id, owner, owner))
            return _job(*row) if row else None

        return await self._run(get, idempotent=True, transaction=False)

    async def list_jobs(
        self, owner: str | None, limit: int, offset: int, status: Status | None = None
    ) -> list[Job]:
        value = status.value if status else None

        async def select(conn: Conn) -> list[Job]:
            rows = await fetch_all(conn, Q["list_jobs"], (owner, owner, value, value, limit, offset))
            return [_job(*r) for r in rows]

        return await self._run(select, idempotent=True, transaction=False)

    async def get_batch(self, batch_id: str, owner: str | None = None) -> BatchRecord | None:
        async def get(conn: Conn) -> BatchRecord | None:
            row = await fetch_one(conn, Q["get_batch"], (batch_id, owner, owner))
            if row is None:
                return None
            completed, failed = await fetch_one(conn, Q["batch_counts"], (batch_id,)) or (0, 0)
            return BatchRecord.from_row(batch_id, row[0], row[1], row[2], row[3], (completed, failed))

        return await self._run(get, idempotent=True)

    async def set_batch_paused(self, batch_id: str, paused: bool) -> None:
        async def update(conn: Conn) -> None:
            await conn.execute(Q["pause_batch"], (paused, batch_id))
            await conn.execute(Q["pause_batch_jobs"], (paused, batch_id))
            if not paused:
                await conn.execute(Q["notify_jobs"])

        await self._run(update, idempotent=True)

    async def usage(self, owner: str | None) -> UsageTotals:
        async def totals(conn: Conn) -> UsageTotals:
            rows = await fetch_all(conn, Q["usage"], (owner, owner))
            backends = await fetch_all(conn, Q["usage_by_backend"], (owner, owner))
            waits = await fetch_all(conn, Q["usage_host_waits"], (owner, owner))
            return UsageTotals(
                {r[0]: r[1] for r in rows}, sum(int(r[2]) for r in rows), sum(int(r[3]) for r in rows),
                {str(b or "unknown"): int(n) for b, n in backends}, int(waits[0][0] or 0),
            )  # fmt: skip

        return await self._run(totals, idempotent=True)

    async def live_workers(self, exclude: str) -> int:
        async def count(conn: Conn) -> int:
            return int((await fetch_all(conn, Q["live_workers"], (exclude,)))[0][0])

        return await self._run(count, idempotent=True)

    async def get_tenant(self, owner: str) -> dict[str, object] | None:
        found: dict[str, object] | None = await self._tenants.submit(owner)
        return dict(found) if found is not None else None

    async def _read_tenants(self, owners: list[str]) -> list[dict[str, object] | None]:
        """Every job looks its tenant up as it starts: one query for all the owners asked for at once."""

        async def read(conn: Conn) -> dict[str, dict[str, object]]:
            return {r[0]: r[1] for r in await fetch_all(conn, Q["tenants"], (sorted(set(owners)),))}

        found = await self._run(read, idempotent=True, transaction=False)
        return [found.get(owner) for owner in owners]

    async def put_tenant(self, owner: str, data: dict[str, object]) -> None:
        async def put(conn: Conn) -> None:
            await conn.execute(Q["put_tenant"], (owner, Json(data)))

        await self._run(put, idempotent=True)

    async def get_tenant_sources(self, owner: str) -> dict[str, str]:
        async def read(conn: Conn) -> dict[str, str]:
            return {str(r[0]): str(r[1]) for r in await fetch_all(conn, Q["tenant_sources"], (owner,))}

        return await self._run(read, idempotent=True, transaction=False)

    async def reusable(
        self, owner: str, source_key: str, output_key: str, since_ms: int, limit: int
    ) -> list[Job]:
        args = (owner, source_key, output_key, since_ms, limit)

        async def select(conn: Conn) -> list[Job]:
            return [_job(*r) for r in await fetch_all(conn, Q["reusable"], args)]

        return await self._run(select, idempotent=True, transaction=False)

    async def lead_reuse(self, owner: str, source_key: str, output_key: str, job_id: str) -> str:
        async def lead(conn: Conn) -> str:
            await conn.execute(Q["lead_reuse"], (owner, source_key, output_key, job_id))
            row = await fetch_one(conn, Q["reuse_leader"], (owner, source_key, output_key))
            return str(row[0]) if row else job_id

        return await self._run(lead, idempotent=True)

    async def end_reuse_lead(self, job_id: str) -> None:
        async def end(conn: Conn) -> None:
            await conn.execute(Q["end_reuse_lead"], (job_id,))

        await self._run(end, idempotent=True)

    async def put_tenant_source(self, owner: str, kind: str, sealed: str | None) -> None:
        async def put(conn: Conn) -> None:
            if sealed is None:
                await conn.execute(Q["delete_tenant_source"], (owner, kind))
            else:
                await conn.execute(Q["put_tenant_source"], (owner, kind, sealed))

        await self._run(put, idempotent=True)

    # -- changes outside a lease ----------------------------------------------------------------------

    async def update_pending(self, job: Job) -> bool:
        data = columns(job)[3]

        async def update(conn: Conn) -> bool:
            return await execute(conn, Q["update_pending"], (data, job.id)) == 1

        return await self._run(update)

    async def update_finished(self, job: Job) -> bool:
        _, stored, _, data = columns(job)

        async def update(conn: Conn) -> bool:
            return await execute(conn, Q["update_finished"], (stored, data, job.id)) == 1

        return await self._run(update)

    async def request_cancel(
        self, job_id: str, owner: str | None, finished: Job | None, outbox: Sequence[OutboxMessage] = ()
    ) -> Job | None:
        rows = outbox_rows(outbox)

        async def cancel(conn: Conn) -> Job | None:
            row = await fetch_one(conn, Q["get_job"], (job_id, owner, owner))
            if row is None:
                return None
            if row[0] == Status.PENDING.value and finished is not None:
                await lock_batch(conn, finished.batch_id)
                status, stored, reserved, data = columns(finished)
                if await execute(conn, Q["cancel_pending"], (status, stored, reserved, data, job_id)) == 1:
                    await insert_outbox(conn, rows)
                    if finished.batch_id is not None:
                        await after_jobs_ended(conn, [finished.batch_id])
                    return _job(status, json.loads(data.obj))
            # Processing (perhaps claimed a moment ago): flagged for its worker's next heartbeat
            row = await fetch_one(conn, Q["flag_cancel"], (job_id,)) or await fetch_one(
                conn, Q["get_job"], (job_id, None, None)
            )
            return _job(*row) if row else None

        return await self._run(cancel)

    # -- webhook outbox ---------------------------------------------------------------------------------

    async def enqueue(self, messages: Sequence[OutboxMessage]) -> None:
        rows = outbox_rows(messages)

        async def enqueue(conn: Conn) -> None:
            await insert_outbox(conn, rows)

        await self._run(enqueue, idempotent=True)  # ON CONFLICT (id) DO NOTHING: inserting twice is a no-op

    async def claim_outbox(self, limit: int, lease_seconds: float) -> list[OutboxMessage]:
        async def claim(conn: Conn) -> list[OutboxMessage]:
            return [
                OutboxMessage(*r)
                for r in await fetch_all(conn, Q["claim_outbox"], (limit, float(lease_seconds)))
            ]

        return await self._run(claim)

    async def finish_outbox(
        self, message: OutboxMessage, status: str, retry_in: float | None, error: str | None
    ) -> None:
        params = (status, message.attempts, error, float(retry_in or 0), message.id)
        noted = webhook_fields(status, message.attempts) if marks_job(message) else None

        async def finish(conn: Conn) -> None:
            await conn.execute(Q["finish_outbox"], params)
            if noted is not None:
                # json, not jsonb (jsonb refuses \u0000 in titles): the merge happens here
                row = await fetch_one(conn, Q["job_data_for_update"], (message.job_id,))
                if row is not None:
                    await execute(conn, Q["set_job_data"], (Json({**row[0], **noted}), message.job_id))

        await self._run(finish, idempotent=True)

    # -- workers ----------------------------------------------------------------------------------------

    async def claim(
        self, worker_id: str, limit: int, lease_seconds: float, only: Collection[str] | None = None
    ) -> list[Claim]:
        params: tuple[Any, ...] = (limit, worker_id, float(lease_seconds))

        async def claim(conn: Conn) -> list[Claim]:
            if only is None:
                rows = await fetch_all(conn, Q["claim"], params)
            else:
                rows = await fetch_all(conn, Q["claim_listed"], (sorted(only), *params))
            rows.sort(key=lambda r: (r[2], r[3]))  # oldest first, as submitted
            # the record comes as text (json keeps it as written): its request's part is used again
            claims = [Claim(job_from_record(Status.PROCESSING.value, json.loads(r[1]), None, r[1]), r[0])
                      for r in rows]  # fmt: skip
            if claims:  # each attempt counted and its first step written in the claim's transaction
                await save_group(conn, [_started(c, now_ms()) for c in claims])
            return claims

        return await self._run(claim)

    async def save(self, job: Job, token: int, outbox: Sequence[OutboxMessage] = ()) -> None:
        status, stored, reserved, data = job_columns(job)
        terminal = job.is_terminal
        rows = outbox_rows(outbox) if terminal else []
        await self._saves.submit(
            Save(job.id, token, status, stored, reserved, data, terminal, job.batch_id, rows)
        )

    async def _flush_saves(self, saves: list[Save]) -> list[Exception | None]:
        """One transaction for the group. Fenced by their tokens, saves can be retried when the COMMIT was
        cut (a server restart): a Processing write is applied again as it was, a terminal one is found in
        place; never reported as "may or may not have been applied", which the runner would take for the
        job's own failure. Should the statement fail for a row's sake, each save is made alone, so that
        only that one fails. A group that ends no batch's job is one statement (atomic by itself): no
        BEGIN and COMMIT round trips."""
        ends_batch = any(s.terminal and s.batch_id is not None for s in saves)
        try:
            return await self._run(
                lambda conn: save_group(conn, saves), idempotent=True, transaction=ends_batch
            )
        except _StatementError:
            if len(saves) == 1:
                raise
        outcomes: list[Exception | None] = []
        for save in saves:

            async def alone(conn: Conn, one: Save = save) -> list[Exception | None]:
                return await save_group(conn, [one])

            try:
                outcomes += await self._run(alone, idempotent=True)
            except StoreError as exc:
                outcomes.append(exc)
        return outcomes

    async def heartbeat(
        self,
        worker_id: str,
        tokens: dict[str, int],
        lease_seconds: float,
        progress: Mapping[str, str] | None = None,
    ) -> Heartbeat:
        if not tokens:
            return Heartbeat(set(), set())
        ids, fences = list(tokens), list(tokens.values())
        changed = [(progress or {}).get(job_id) for job_id in ids]  # None: the stored one stands
        params = (ids, fences, changed, worker_id, float(lease_seconds))

        async def beat(conn: Conn) -> Heartbeat:
            rows = await fetch_all(conn, Q["heartbeat"], params)
            return Heartbeat(set(ids) - {r[0] for r in rows}, {r[0] for r in rows if r[1]})

        # one statement; extending a lease twice is harmless
        return await self._run(beat, idempotent=True, transaction=False)

    async def release(self, job: Job, token: int, delay_seconds: float = 0.0) -> None:
        reserved, text = released(job)
        data = Json(text, dumps=lambda raw: raw)

        async def release(conn: Conn) -> None:
            if await execute(conn, Q["release"], (float(delay_seconds), reserved, data, job.id, token)) != 1:
                raise LeaseLost(f"job {job.id}: lease lost, release refused")
            if delay_seconds <= 0:  # one due later is found by a poll then
                await conn.execute(Q["notify_jobs"])

        await self._run(release)

    async def requeue_expired(self, is_dead_owner: Callable[[str], bool]) -> list[str]:
        async def requeue(conn: Conn) -> list[str]:
            dead = [owner for (owner,) in await fetch_all(conn, Q["lease_owners"]) if is_dead_owner(owner)]
            requeued = [r[0] for r in await fetch_all(conn, Q["requeue"], (dead,))]
            if requeued:
                await conn.execute(Q["notify_jobs"])
            return requeued

        return await self._run(requeue)

    def on_new_jobs(self, wake: Callable[[], None]) -> None:
        """Call ``wake()`` whenever any process makes jobs claimable: LISTEN on a connection of its own,
        reconnected when lost (:mod:`.pg_listen`), until :meth:`close`."""
        if self.listener is None:
            self.listener = JobsListener(self._db.connect, wake, redact=self._db.redact)
            self.listener.start()

    # -- live views -------------------------------------------------------------------------------------

    async def top_rows(self, since_ms: int, limit: int) -> TopRows:
        async def read(conn: Conn) -> TopRows:
            running = await fetch_all(conn, Q["top_running"], (limit,))
            workers = await fetch_all(conn, Q["top_workers"])
            finished = await fetch_all(conn, Q["top_finished"], (since_ms,))
            return TopRows(
                counts={r[0]: r[1] for r in await fetch_all(conn, Q["usage"], (None, None))},
                running=[(_job(r[0], r[1], r[2]), r[3]) for r in running],
                workers=[WorkerRow(r[0], int(r[1]), r[2], r[3]) for r in workers],
                finished={r[0]: (int(r[1]), int(r[2] or 0)) for r in finished},
                errors=[_job(*r) for r in await fetch_all(conn, Q["top_errors"], (limit,))],
            )

        return await self._run(read, idempotent=True)


def _started(claim: Claim, now: int) -> Save:
    """The claim's write of the attempt it starts (see ``rules.started``): rows it holds locked."""
    claim.stepped = started(claim.job, now)
    status, stored, reserved, data = job_columns(claim.job)
    return Save(claim.job.id, claim.token, status, stored, reserved, data, False, claim.job.batch_id, [])
