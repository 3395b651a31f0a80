"""One suite, every store (River's driver conformance idea): SQLite in tmp_path and PostgreSQL in a database
of its own on the server at 127.0.0.1:5432, created for this session and dropped at its end.

PostgreSQL tests need that server: without it they fail when ``$CI`` is set (CI must not go green
without them) and are skipped otherwise. ``$TORNADO_TEST_POSTGRES`` names another server's admin DSN.
The last tests are PostgreSQL's own: schema migrations, reconnects, redaction, and a real job end to end.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sqlite3
import sys
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tornado_engine import Engine, JobRequest, Status, Step
from tornado_engine.attempt import StageRun
from tornado_engine.errors import JobCancelled, LeaseLost, StoreError
from tornado_engine.models import Job, JobCreated, now_ms
from tornado_engine.progress import LiveProgress
from tornado_engine.storage import StoredObject
from tornado_engine.store import open_store
from tornado_engine.store.base import BatchRecord, JobStore, OutboxMessage
from tornado_engine.store.sqlite import SQLiteStore
from tornado_engine.testing import MediaServer, MediaSet
from tornado_engine.testing.noop import NoopStages, noop_engine

pytestmark = pytest.mark.integration

ADMIN_DSN = os.environ.get("TORNADO_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
URL = "https://media.example/v.mp4"
TABLES = "tornado_jobs, tornado_batches, tornado_tenants, tornado_outbox, tornado_reuse_leaders"


# -- PostgreSQL databases for this session ------------------------------------------------------------


def _dsn_for(database: str) -> str:
    """The admin URL with another database: a ``postgresql://`` URL, as users write them."""
    return urllib.parse.urlsplit(ADMIN_DSN)._replace(path=f"/{database}").geturl()


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.encode())


def _sql(dsn: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(sql.encode(), params)
        return cur.fetchall() if cur.description else []


def _unavailable(message: str) -> NoReturn:
    if os.environ.get("CI"):  # CI must fail, never go green without the PostgreSQL tier
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_server() -> str:
    try:
        import psycopg
    except ImportError:
        _unavailable("psycopg is not installed: pip install -e . --group dev (or 'tornado-engine[postgres]')")
    try:
        psycopg.connect(ADMIN_DSN, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        _unavailable(
            f"PostgreSQL is not reachable at {ADMIN_DSN.split('@')[-1]} ({exc}).\n"
            "Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
            " (install: apt-get install -y postgresql)"
        )
    return ADMIN_DSN


@pytest.fixture(scope="session")
def new_database(pg_server: str) -> Iterator[Callable[[], str]]:
    """Creates empty databases ``tornado_test_<random>`` (DSN returned); drops them all at the end."""
    made: list[str] = []

    def create() -> str:
        name = f"tornado_test_{uuid.uuid4().hex[:12]}"
        _admin(f'CREATE DATABASE "{name}"')
        made.append(name)
        return _dsn_for(name)

    yield create
    for name in made:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_database(new_database: Callable[[], str]) -> str:
    return new_database()


# -- one fixture, every store -------------------------------------------------------------------------


@dataclass
class Backend:
    kind: str
    store: JobStore
    make: Callable[[], JobStore]  # another store on the same data (another process, in effect)
    backdate: Callable[[str], None]  # move a job's lease expiry into the past (a crash, River's way)
    sql: Callable[[dict[str, str]], None]  # run {"sqlite": script, "postgres": script} on the data


@pytest.fixture(params=["sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "jobs.db"

        def backdate_sqlite(job_id: str) -> None:
            with sqlite3.connect(path) as conn:
                conn.execute("UPDATE jobs SET lease_expires_at = 1 WHERE id = ?", (job_id,))

        def sql_sqlite(scripts: dict[str, str]) -> None:
            with sqlite3.connect(path) as conn:
                conn.executescript(scripts["sqlite"])

        made: JobStore = SQLiteStore(path)
        result = Backend("sqlite", made, lambda: SQLiteStore(path), backdate_sqlite, sql_sqlite)
    else:
        from tornado_engine.store.postgres import PostgresStore

        dsn: str = request.getfixturevalue("pg_database")

        def backdate_pg(job_id: str) -> None:
            _sql(dsn, "UPDATE tornado_jobs SET lease_expires_at = now() - interval '1 hour' WHERE id = %s",
                 (job_id,))  # fmt: skip

        made = PostgresStore(dsn)
        result = Backend("postgres", made, lambda: PostgresStore(dsn), backdate_pg,
                         lambda scripts: _sql(dsn, scripts["postgres"]))  # fmt: skip
    await result.store.open()
    if result.kind == "postgres":
        _sql(_dsn_of(result.store), f"TRUNCATE {TABLES}")
    try:
        yield result
    finally:
        await result.store.close()


def _dsn_of(store: JobStore) -> str:
    return str(store._db.dsn)  # type: ignore[attr-defined]


def _job(*, owner: str = "", created_at: int | None = None, batch_id: str | None = None,
         reserved: int = 0, filename: str | None = None) -> Job:  # fmt: skip
    job = Job(id=str(uuid.uuid4()), url=URL, request=JobRequest(url=URL, filename=filename), owner=owner,
              batch_id=batch_id, reserved_bytes=reserved)  # fmt: skip
    if created_at is not None:
        job.created_at = created_at
    return job


def _ended(job: Job, status: Status = Status.COMPLETED, size: int | None = None) -> Job:
    job.status, job.step, job.finished_at = status, Step.FINISHED, now_ms()
    job.file_size = size
    return job


async def _claim_one(store: JobStore, worker: str = "w1") -> tuple[Job, int]:
    claims = await store.claim(worker, 1, 30)
    assert len(claims) == 1
    return claims[0].job, claims[0].token


# -- submit and read --------------------------------------------------------------------------------


async def test_insert_get_roundtrip_and_owner_scope(backend: Backend) -> None:
    store = backend.store
    job = _job(owner="alice", filename="clip")
    assert await store.insert_jobs([job]) == [job]
    got = await store.get_job(job.id)
    assert got is not None and got.to_record() == job.to_record()
    assert (await store.get_job(job.id, "alice")) is not None
    assert await store.get_job(job.id, "bob") is None  # another tenant's id is simply not found
    assert await store.get_job("no-such-job") is None


async def test_list_newest_first_with_filters(backend: Backend) -> None:
    store = backend.store
    a1, a2, b1 = (
        _job(owner="a", created_at=1000),
        _job(owner="a", created_at=3000),
        _job(owner="b", created_at=2000),
    )
    tie1, tie2 = _job(owner="a", created_at=5000), _job(owner="a", created_at=5000)
    for job in (a1, a2, b1, tie1, tie2):
        await store.insert_jobs([job])
    ids = [j.id for j in await store.list_jobs(None, 10, 0)]
    assert ids == [tie2.id, tie1.id, a2.id, b1.id, a1.id]  # equal times: the later submit first
    assert [j.id for j in await store.list_jobs("a", 2, 1)] == [tie1.id, a2.id]
    assert [j.id for j in await store.list_jobs("b", 10, 0)] == [b1.id]
    claimed, _ = await _claim_one(store)
    assert claimed.id == a1.id  # the oldest
    processing = await store.list_jobs(None, 10, 0, Status.PROCESSING)
    assert [(j.id, j.status) for j in processing] == [(a1.id, Status.PROCESSING)]
    assert len(await store.list_jobs("a", 10, 0, Status.PENDING)) == 3


async def test_idempotency_key_returns_the_first_job(backend: Backend) -> None:
    store, other = backend.store, backend.make()
    await other.open()
    try:
        first = _job(owner="t")
        assert (await store.insert_jobs([first], None, "key-1"))[0].id == first.id
        again = await store.insert_jobs([_job(owner="t")], None, "key-1")
        assert [j.id for j in again] == [first.id]
        elsewhere = _job(owner="u")  # keys are per tenant
        assert (await store.insert_jobs([elsewhere], None, "key-1"))[0].id == elsewhere.id
        # submits racing with one key, from two "processes": every one gets the same single job
        racers = [(store if i % 2 else other).insert_jobs([_job(owner="t")], None, "key-2") for i in range(6)]
        results = await asyncio.gather(*racers)
        assert len({r[0].id for r in results}) == 1
        assert len(await store.list_jobs("t", 100, 0)) == 2
    finally:
        await other.close()


async def test_batch_counts_and_scope(backend: Backend) -> None:
    store = backend.store
    batch_id = str(uuid.uuid4())
    jobs = [_job(owner="o", batch_id=batch_id, created_at=1000 + i) for i in range(4)]
    record = BatchRecord(
        batch_id, "o", now_ms(), False, "https://media.example/feed", "show", [j.id for j in jobs]
    )
    await store.insert_jobs(jobs, record)
    got = await store.get_batch(batch_id)
    assert got is not None
    assert (got.job_ids, got.show_url, got.folder, got.paused, got.completed, got.failed) == (
        [j.id for j in jobs], "https://media.example/feed", "show", False, 0, 0)  # fmt: skip
    assert await store.get_batch(batch_id, "someone-else") is None
    claims = await store.claim("w1", 10, 30)
    assert [c.job.id for c in claims] == [j.id for j in jobs]
    for claim, status in zip(claims, (Status.COMPLETED, Status.FAILED, Status.SKIPPED), strict=False):
        await store.save(_ended(claim.job, status), claim.token)
    got = await store.get_batch(batch_id, "o")
    assert got is not None and (got.completed, got.failed) == (1, 2)  # the fourth is still running


async def test_paused_batch_is_not_claimed_until_started(backend: Backend) -> None:
    store = backend.store
    batch_id = str(uuid.uuid4())
    jobs = [_job(batch_id=batch_id) for _ in range(3)]
    await store.insert_jobs(jobs, BatchRecord(batch_id, "", now_ms(), True, None, None, [j.id for j in jobs]))
    assert await store.claim("w1", 10, 30) == []
    await store.set_batch_paused(batch_id, False)
    got = await store.get_batch(batch_id)
    assert got is not None and not got.paused
    assert {c.job.id for c in await store.claim("w1", 10, 30)} == {j.id for j in jobs}


# -- claims, leases, fencing ----------------------------------------------------------------------


async def test_claim_oldest_first_and_once(backend: Backend) -> None:
    store = backend.store
    late, early, middle = _job(created_at=3000), _job(created_at=1000), _job(created_at=2000)
    for job in (late, early, middle):
        await store.insert_jobs([job])
    first = await store.claim("w1", 2, 30)
    assert [c.job.id for c in first] == [early.id, middle.id]
    assert all(c.job.status is Status.PROCESSING and c.token >= 1 for c in first)
    assert [c.job.id for c in await store.claim("w1", 2, 30)] == [late.id]
    assert await store.claim("w1", 2, 30) == []


async def test_the_claim_counts_the_attempt_and_writes_its_first_step(backend: Backend) -> None:
    """Seen from another store at once: the attempt counted, started, Downloading, unless the job
    resumes from a checkpoint (its step stays for the runner to enter); a title with NUL survives."""
    store = backend.store
    fresh, resumed = _job(created_at=1000), _job(created_at=2000)
    fresh.title = "a\x00b"
    resumed.step, resumed.checkpoint, resumed.attempts = Step.MUXING, {"stage": "downloaded"}, 1
    await store.insert_jobs([fresh, resumed])
    claims = await store.claim("w1", 2, 30)
    assert [(c.job.attempts, c.job.step, c.stepped) for c in claims] == [
        (1, Step.DOWNLOADING, True), (2, Step.MUXING, False)]  # fmt: skip
    other = backend.make()
    await other.open()
    try:
        got = await other.get_job(fresh.id)
        assert got is not None and got.status is Status.PROCESSING
        assert (got.step, got.attempts) == (Step.DOWNLOADING, 1)
        assert got.title == "a\x00b" and got.requested_quality == "best"
        assert got.started_at is not None and got.queue_wait_ms == got.started_at - 1000
        got = await other.get_job(resumed.id)
        assert got is not None and (got.step, got.attempts) == (Step.MUXING, 2)
        assert got.checkpoint == resumed.checkpoint
        await store.release(claims[0].job, claims[0].token)
        [again] = await store.claim("w2", 1, 30)
        first_wait = claims[0].job.queue_wait_ms
        assert first_wait is not None and (again.job.attempts, again.job.queue_wait_ms) == (2, first_wait)
    finally:
        await other.close()


async def test_a_listed_claim_takes_only_the_listed_jobs_and_touches_no_other(backend: Backend) -> None:
    store = backend.store
    theirs, mine, later = _job(created_at=1000), _job(created_at=2000), _job(created_at=3000)
    batch_id = str(uuid.uuid4())
    paused = _job(created_at=500, batch_id=batch_id)
    await store.insert_jobs([paused], BatchRecord(batch_id, "", now_ms(), True, None, None, [paused.id]))
    for job in (theirs, mine, later):
        await store.insert_jobs([job])
    before = await store.get_job(theirs.id)
    listed = {mine.id, later.id, paused.id, "no-such-job"}
    assert await store.claim("run", 10, 30, only=set()) == []
    assert [c.job.id for c in await store.claim("run", 1, 30, only=listed)] == [mine.id]  # oldest first
    assert [c.job.id for c in await store.claim("run", 10, 30, only=listed)] == [later.id]
    assert await store.claim("run", 10, 30, only=listed) == []  # a paused batch's job waits for its start
    assert await store.get_job(theirs.id) == before  # not claimed, not written
    assert [c.job.id for c in await store.claim("worker", 10, 30)] == [theirs.id]


async def test_two_claimers_never_claim_one_job_twice(backend: Backend) -> None:
    jobs = [_job(created_at=1000 + i) for i in range(40)]
    await backend.store.insert_jobs(jobs)
    other = backend.make()
    await other.open()
    seen: list[str] = []

    async def drain(store: JobStore, worker: str) -> None:
        while claims := await store.claim(worker, 3, 30):
            seen.extend(c.job.id for c in claims)
            await asyncio.sleep(0)

    try:
        await asyncio.gather(drain(backend.store, "w1"), drain(other, "w2"), drain(backend.store, "w3"))
    finally:
        await other.close()
    assert sorted(seen) == sorted(j.id for j in jobs)  # each exactly once


async def test_stale_token_is_fenced_everywhere(backend: Backend) -> None:
    store = backend.store
    await store.insert_jobs([_job()])
    job, old = await _claim_one(store, "w1")
    await store.release(job, old)  # e.g. a graceful shutdown
    assert (await store.get_job(job.id)).status is Status.PENDING  # type: ignore[union-attr]
    job2, new = await _claim_one(store, "w2")
    assert new > old
    job.status, job.step = Status.PROCESSING, Step.DOWNLOADING  # the first attempt, still going
    with pytest.raises(LeaseLost):
        await store.save(job, old)
    with pytest.raises(LeaseLost):
        await store.save(_ended(job), old)
    with pytest.raises(LeaseLost):
        await store.release(job, old)
    beat = await store.heartbeat("w1", {job.id: old}, 30)
    assert beat.lost == {job.id}
    assert (await store.heartbeat("w1", {job.id: new}, 30)).lost == {job.id}  # right token, wrong owner
    assert (await store.heartbeat("w2", {job.id: new}, 30)).lost == set()
    await store.save(_ended(job2, size=10), new)
    got = await store.get_job(job.id)
    assert got is not None and got.status is Status.COMPLETED
    with pytest.raises(LeaseLost):  # terminal: no token writes it again
        await store.save(_ended(job2, Status.FAILED), new)


async def test_requeue_expired_backdated_lease(backend: Backend) -> None:
    store = backend.store
    await store.insert_jobs([_job(created_at=1000), _job(created_at=2000)])
    (crashed, old), (alive, _) = [(c.job, c.token) for c in await store.claim("w1", 2, 30)]
    assert await store.requeue_expired(lambda owner: False) == []  # leases still valid
    backend.backdate(crashed.id)
    assert await store.requeue_expired(lambda owner: False) == [crashed.id]
    got = await store.get_job(crashed.id)
    assert got is not None and got.status is Status.PENDING
    with pytest.raises(LeaseLost):  # the crashed attempt, should it wake up, cannot write
        await store.save(_ended(crashed), old)
    again, new = await _claim_one(store, "w2")
    assert again.id == crashed.id and new > old
    assert await store.requeue_expired(lambda owner: owner == "w1") == [alive.id]  # its process is gone


async def test_heartbeat_keeps_a_short_lease(backend: Backend) -> None:
    store = backend.store
    await store.insert_jobs([_job(), _job()])
    (kept, token), (dropped, _) = [(c.job, c.token) for c in await store.claim("w1", 2, 0.6)]
    for _ in range(3):
        await asyncio.sleep(0.3)
        assert (await store.heartbeat("w1", {kept.id: token}, 0.6)).lost == set()
    assert await store.requeue_expired(lambda owner: False) == [dropped.id]


# -- cancel ---------------------------------------------------------------------------------------


async def test_cancel_pending_at_once(backend: Backend) -> None:
    store = backend.store
    job = _job(owner="o")
    await store.insert_jobs([job])
    cancelled = _ended(Job.from_record(job.to_record()), Status.CANCELLED)
    cancelled.error = "Cancelled by request"
    after = await store.request_cancel(job.id, "o", cancelled)
    assert after is not None and after.status is Status.CANCELLED and after.error == "Cancelled by request"
    assert await store.claim("w1", 10, 30) == []
    assert (await store.request_cancel(job.id, "o", cancelled)).status is Status.CANCELLED  # type: ignore[union-attr]
    assert await store.request_cancel(job.id, "other", cancelled) is None
    assert await store.request_cancel("no-such-job", None, cancelled) is None


async def test_cancel_processing_refuses_completed(backend: Backend) -> None:
    store = backend.store
    await store.insert_jobs([_job()])
    job, token = await _claim_one(store)
    after = await store.request_cancel(
        job.id, None, _ended(Job.from_record(job.to_record()), Status.CANCELLED)
    )
    assert after is not None and after.status is Status.PROCESSING  # flagged for its worker
    beat = await store.heartbeat("w1", {job.id: token}, 30)
    assert beat.cancel_requested == {job.id} and beat.lost == set()
    job.step = Step.UPLOADING
    await store.save(job, token)  # progress writes still land
    with pytest.raises(JobCancelled):
        await store.save(_ended(job, size=100), token)
    assert (await store.get_job(job.id)).status is Status.PROCESSING  # type: ignore[union-attr]
    await store.save(_ended(job, Status.CANCELLED), token)
    assert (await store.get_job(job.id)).status is Status.CANCELLED  # type: ignore[union-attr]


# -- changes outside a lease, usage, tenants ------------------------------------------------------


async def test_update_pending_and_finished(backend: Backend) -> None:
    store = backend.store
    job = _job()
    await store.insert_jobs([job])
    renamed = Job.from_record(job.to_record())
    renamed.request = renamed.request.model_copy(update={"filename": "renamed"})
    assert await store.update_pending(renamed)
    assert await store.update_finished(renamed) is False  # not terminal
    claimed, token = await _claim_one(store)
    assert claimed.request.filename == "renamed"
    assert await store.update_pending(renamed) is False
    await store.save(_ended(claimed, size=1234), token)
    claimed.file_deleted_at = now_ms()
    assert await store.update_finished(claimed)
    got = await store.get_job(job.id)
    assert got is not None and got.file_deleted_at == claimed.file_deleted_at


async def test_usage_totals(backend: Backend) -> None:
    store = backend.store
    done, deleted = _job(owner="a", created_at=1, reserved=999), _job(owner="a", created_at=2)
    running, waiting = (
        _job(owner="b", created_at=3, reserved=300),
        _job(owner="a", created_at=4, reserved=500),
    )
    await store.insert_jobs([done, deleted, running, waiting])
    claims = await store.claim("w1", 3, 30)
    await store.save(_ended(claims[0].job, size=1000), claims[0].token)
    await store.save(_ended(claims[1].job, size=50), claims[1].token)
    totals = await store.usage(None)
    assert totals.counts == {"Completed": 2, "Processing": 1, "Pending": 1}
    assert (totals.stored_bytes, totals.reserved_bytes) == (1050, 800)  # ended jobs reserve nothing
    gone = claims[1].job
    gone.file_deleted_at = now_ms()
    await store.update_finished(gone)
    a = await store.usage("a")
    assert a.counts == {"Completed": 2, "Pending": 1} and (a.stored_bytes, a.reserved_bytes) == (1000, 500)
    assert (await store.usage("nobody")).counts == {}


async def test_tenants_get_put(backend: Backend) -> None:
    store = backend.store
    assert await store.get_tenant("t1") is None
    await store.put_tenant("t1", {"quota": {"storage_bytes": 10}})
    await store.put_tenant("t1", {"quota": {"storage_bytes": 20}, "note": "x"})
    assert await store.get_tenant("t1") == {"quota": {"storage_bytes": 20}, "note": "x"}
    assert await store.get_tenant("t2") is None


async def test_reusable_finds_the_newest_completed_file_of_the_owner(backend: Backend) -> None:
    store = backend.store
    jobs = [_job(owner=owner, created_at=n) for n, owner in enumerate(["a", "a", "a", "b", "a", "a"])]
    await store.insert_jobs(jobs)
    claims = sorted(await store.claim("w1", 6, 30), key=lambda c: c.job.created_at)
    keys = ["youtube:x", "youtube:x", "youtube:x", "youtube:x", "youtube:y", "youtube:x"]
    for claim, source in zip(claims, keys, strict=True):
        claim.job.source_key, claim.job.output_key = source, "opts"
    ended = [Status.COMPLETED, Status.COMPLETED, Status.FAILED, Status.COMPLETED, Status.COMPLETED]
    for claim, status in zip(claims[:5], ended, strict=True):
        await store.save(_ended(claim.job, status, size=10), claim.token)
        await asyncio.sleep(0.002)  # each ends in a later millisecond: "newest first" is well defined
    await store.save(claims[5].job, claims[5].token)  # still running: not a file yet
    found = await store.reusable("a", "youtube:x", "opts", 0, 5)
    assert [j.id for j in found] == [claims[1].job.id, claims[0].job.id]  # newest first; a's, Completed
    assert found[0].source_key == "youtube:x"
    assert await store.reusable("a", "youtube:x", "other", 0, 5) == []
    assert [j.id for j in await store.reusable("a", "youtube:x", "opts", 0, 1)] == [claims[1].job.id]
    assert await store.reusable("a", "youtube:x", "opts", now_ms() + 1000, 5) == []  # out of the window
    deleted = claims[1].job
    deleted.file_deleted_at = now_ms()
    await store.update_finished(deleted)
    assert [j.id for j in await store.reusable("a", "youtube:x", "opts", 0, 5)] == [claims[0].job.id]


async def test_one_running_job_leads_each_file(backend: Backend) -> None:
    store, other = backend.store, backend.make()
    await other.open()
    try:
        first, second = _job(owner="a", created_at=1), _job(owner="a", created_at=2)
        await store.insert_jobs([first, second])
        claims = {c.job.id: c for c in await store.claim("w1", 2, 30)}
        same = ("a", "youtube:x", "opts")
        assert await store.lead_reuse(*same, first.id) == first.id
        assert await other.lead_reuse(*same, second.id) == first.id  # another process: the first leads
        assert await store.lead_reuse(*same, first.id) == first.id  # again (a retry): still
        assert await other.lead_reuse("b", "youtube:x", "opts", second.id) == second.id  # another tenant
        claim = claims[first.id]
        await store.save(_ended(claim.job, Status.FAILED), claim.token)  # ended without its lead ended
        assert await other.lead_reuse(*same, second.id) == second.id  # a row of a job not running: taken
        await other.end_reuse_lead(second.id)
        assert await store.lead_reuse(*same, first.id) == first.id  # gone: anyone may lead
    finally:
        await other.close()


async def test_tenant_sources_get_put_remove(backend: Backend) -> None:
    store = backend.store
    assert await store.get_tenant_sources("t1") == {}
    await store.put_tenant_source("t1", "cookies", "sealed-1")
    await store.put_tenant_source("t1", "cookies", "sealed-2")  # replaced
    await store.put_tenant_source("t1", "proxies", "sealed-p")
    await store.put_tenant_source("t2", "cookies", "other")
    assert await store.get_tenant_sources("t1") == {"cookies": "sealed-2", "proxies": "sealed-p"}
    await store.put_tenant_source("t1", "cookies", None)
    await store.put_tenant_source("t1", "nothing", None)  # removing what is not there is no error
    assert await store.get_tenant_sources("t1") == {"proxies": "sealed-p"}
    assert await store.get_tenant_sources("t2") == {"cookies": "other"}
    assert await store.get_tenant("t1") is None  # apart from the tenant's other data


# -- webhook outbox -------------------------------------------------------------------------------


async def test_outbox_with_terminal_write_and_batch_completed_once(backend: Backend) -> None:
    store, other = backend.store, backend.make()
    await other.open()
    batch_id = str(uuid.uuid4())
    jobs = [_job(batch_id=batch_id, created_at=1000 + i) for i in range(2)]
    record = BatchRecord(batch_id, "", now_ms(), False, None, None, [j.id for j in jobs],
                         webhook_url="https://hooks.example/batch")  # fmt: skip
    try:
        await store.insert_jobs(jobs, record)
        stored = await store.get_batch(batch_id)
        assert stored is not None and stored.webhook_url == "https://hooks.example/batch"
        claims = await store.claim("w1", 2, 30)

        def message(job: Job) -> OutboxMessage:
            return OutboxMessage(f"msg_{job.id}", "", "https://hooks.example/job", "job_completed",
                                 {"job_id": job.id}, job_id=job.id)  # fmt: skip

        # the batch's two jobs end at the same moment in two "processes"
        await asyncio.gather(
            store.save(_ended(claims[0].job, size=1), claims[0].token, [message(claims[0].job)]),
            other.save(_ended(claims[1].job, Status.FAILED), claims[1].token, [message(claims[1].job)]),
        )
        due = await store.claim_outbox(10, 30)
        assert await other.claim_outbox(10, 30) == []  # leased
        by_event: dict[str, list[OutboxMessage]] = {}
        for m in due:
            by_event.setdefault(m.event, []).append(m)
        assert len(by_event["job_completed"]) == 2
        [batch_done] = by_event["batch_completed"]
        # the store keeps a neutral summary; the webhook side renders the payload (test_webhooks.py)
        assert batch_done.payload == {"batch_id": batch_id, "completed": 1, "failed": 1, "total": 2}
        first = by_event["job_completed"][0]
        first.attempts = 1
        await store.finish_outbox(first, "pending", 0, "HTTP 500")
        [retry] = await store.claim_outbox(10, 30)
        assert retry.id == first.id and retry.attempts == 1
        retry.attempts = 2
        await store.finish_outbox(retry, "delivered", None, None)
        got = await store.get_job(str(first.job_id))
        assert got is not None and (got.webhook_status, got.webhook_attempts) == ("delivered", 2)
        await store.enqueue([first])  # the same id again: ignored
        assert await store.claim_outbox(10, 30) == []
    finally:
        await other.close()


# -- group commit: many writes at once, each with its own outcome -----------------------------------


def _message(job: Job) -> OutboxMessage:
    return OutboxMessage(f"msg_{job.id}", "", "https://hooks.example/job", "job_completed",
                         {"job_id": job.id}, job_id=job.id)  # fmt: skip


async def _outbox_job_ids(store: JobStore) -> set[str]:
    return {str(m.job_id) for m in await store.claim_outbox(1000, 30)}


async def test_concurrent_saves_fail_alone_and_the_rest_is_durable(backend: Backend) -> None:
    """Saves made at the same moment (one group, one transaction): the one with a stale token raises
    LeaseLost and the Completed of a job whose cancel was asked raises JobCancelled, and only those; every
    other write is there when read through another store on the same data, terminal ones with their
    webhook events."""
    store = backend.store
    jobs = [_job(created_at=1000 + i) for i in range(40)]
    await store.insert_jobs(jobs)
    claims = await store.claim("w1", 40, 30)
    stale, cancelled = claims[0], claims[1]
    await store.release(stale.job, stale.token)
    [again] = await store.claim("w2", 1, 30)  # the same job, a newer attempt
    assert again.job.id == stale.job.id and again.token > stale.token
    await store.request_cancel(
        cancelled.job.id, None, _ended(Job.from_record(cancelled.job.to_record()), Status.CANCELLED)
    )
    writes, ended, stepped = [], [], []
    for n, claim in enumerate(claims):
        job = claim.job
        if claim is stale:
            job.status, job.step = Status.PROCESSING, Step.MUXING
            writes.append(store.save(job, claim.token))
        elif claim is cancelled:
            writes.append(store.save(_ended(job, size=5), claim.token, [_message(job)]))
        elif n % 2:
            ended.append(job.id)
            writes.append(store.save(_ended(job, size=n), claim.token, [_message(job)]))
        else:
            stepped.append(job.id)
            job.step, job.reserved_bytes = Step.MUXING, n
            writes.append(store.save(job, claim.token))
    results = await asyncio.gather(*writes, return_exceptions=True)
    assert isinstance(results[0], LeaseLost) and isinstance(results[1], JobCancelled)
    assert results[2:] == [None] * (len(claims) - 2)
    other = backend.make()
    await other.open()
    try:
        for job_id in ended:
            got = await other.get_job(job_id)
            assert got is not None and got.status is Status.COMPLETED and got.file_size
        for job_id in stepped:
            got = await other.get_job(job_id)
            assert got is not None and (got.status, got.step) == (Status.PROCESSING, Step.MUXING)
            assert got.reserved_bytes > 0
        got = await other.get_job(stale.job.id)  # the newer attempt's record as its claim wrote it
        assert got is not None and (got.status, got.step) == (Status.PROCESSING, Step.DOWNLOADING)
        assert got.attempts == 2
        got = await other.get_job(cancelled.job.id)
        assert got is not None and got.status is Status.PROCESSING
        assert await _outbox_job_ids(other) == set(ended)  # none for the refused Completed
        # the stale attempt is fenced from its lease too, the others keep theirs, in one heartbeat
        held = {c.job.id: c.token for c in claims if c.job.id in stepped or c is stale or c is cancelled}
        beat = await other.heartbeat("w1", held, 30)
        assert beat.lost == {stale.job.id} and beat.cancel_requested == {cancelled.job.id}
    finally:
        await other.close()


async def test_a_terminal_write_failing_in_a_group_takes_only_its_own_events_down(backend: Backend) -> None:
    """A terminal save whose webhook event cannot be written (a trigger refuses it) fails as a whole: its
    record stays Processing, no event of it is queued; the saves grouped with it all land."""
    store = backend.store
    jobs = [_job(created_at=1000 + i) for i in range(12)]
    await store.insert_jobs(jobs)
    claims = await store.claim("w1", 12, 30)
    victim = claims[5].job.id
    backend.sql({
        "sqlite": f"CREATE TRIGGER refuse BEFORE INSERT ON outbox WHEN NEW.job_id = '{victim}'"
                  " BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        "postgres": "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
                    " $$ BEGIN RAISE EXCEPTION 'refused'; END $$;"
                    " CREATE TRIGGER refuse BEFORE INSERT ON tornado_outbox FOR EACH ROW"
                    f" WHEN (NEW.job_id = '{victim}') EXECUTE FUNCTION refuse();",
    })  # fmt: skip
    try:
        results = await asyncio.gather(
            *(store.save(_ended(c.job, size=1), c.token, [_message(c.job)]) for c in claims),
            return_exceptions=True,
        )
    finally:
        drop = "DROP TRIGGER refuse ON tornado_outbox; DROP FUNCTION refuse();"
        backend.sql({"sqlite": "DROP TRIGGER refuse;", "postgres": drop})
    assert isinstance(results[5], StoreError) and not isinstance(results[5], LeaseLost)
    assert results[:5] + results[6:] == [None] * 11
    got = await store.get_job(victim)
    assert got is not None and got.status is Status.PROCESSING  # the record went with its event
    assert await _outbox_job_ids(store) == {c.job.id for c in claims} - {victim}
    await store.save(_ended(claims[5].job, size=1), claims[5].token, [_message(claims[5].job)])  # again
    assert await _outbox_job_ids(store) == {victim}


async def test_claims_made_at_once_never_hand_out_a_job_twice(backend: Backend) -> None:
    store = backend.store
    await store.insert_jobs([_job(created_at=1000 + i) for i in range(20)])
    claimed = await asyncio.gather(*(store.claim(f"w{i}", 3, 30) for i in range(10)))
    ids = [c.job.id for claims in claimed for c in claims]
    assert len(ids) == len(set(ids)) == 20
    assert all(c.token == 1 for claims in claimed for c in claims)


# -- live views: progress from another process, top ---------------------------------------------------


@dataclass
class TickingStages:
    """No-op stages whose download reports progress 20 times a second for ``seconds``."""

    seconds: float
    total: int = 10_000_000

    async def __call__(self, run: StageRun) -> StoredObject:
        ticks = int(self.seconds * 20)
        for i in range(1, ticks + 1):
            pct = 100.0 * i / (ticks + 1)
            left = (ticks + 1 - i) / 20
            run.emit(Step.DOWNLOADING, pct, bytes_done=int(self.total * pct / 100), bytes_total=self.total,
                     speed_bps=self.total / 100 * 20, eta_seconds=left)  # fmt: skip
            await asyncio.sleep(0.05)
        return await NoopStages(file_size=self.total)(run)


async def test_a_running_jobs_progress_shows_in_another_engine_written_about_once_a_second(
    backend: Backend, tmp_path: Path
) -> None:
    worker_store = backend.make()
    written: list[tuple[float, set[str]]] = []  # each heartbeat: when, and whose progress it stored
    beat = worker_store.heartbeat

    async def counting(worker: str, tokens: dict[str, int], lease: float, progress: Any = None) -> Any:
        written.append((time.monotonic(), set(progress or ())))
        return await beat(worker, tokens, lease, progress)

    worker_store.heartbeat = counting  # type: ignore[method-assign]
    seen: list[dict[str, Any]] = []
    async with (
        noop_engine(data_dir=tmp_path / "worker", store=worker_store, stages=TickingStages(3.2),
                    lease_seconds=3.0, poll_interval=0.05) as worker,
        Engine.open(data_dir=tmp_path / "reader", store=backend.make(), run_jobs=False) as reader,
    ):  # fmt: skip
        job_id = await _submit(worker)
        started = time.monotonic()
        while not (job := await reader.get_job(job_id)).is_terminal:
            if "progress" in (api := job.to_api()):
                seen.append(api["progress"])
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - started
    assert job.status is Status.COMPLETED and "progress" not in job.to_api()
    assert len(seen) >= 10, seen  # stored ~1/s, polled 10/s: each stored value seen several times
    assert [p["percent"] for p in seen] == sorted(p["percent"] for p in seen)
    assert len({p["stage_percent"] for p in seen}) >= 2  # it moved
    last = seen[-1]
    assert last["bytes_total"] == 10_000_000 and 0 < last["bytes_done"] < 10_000_000
    assert last["speed_bps"] == 2_000_000 and last["eta_seconds"] > 0 and last["updated_at"] > 0
    writes = [when for when, jobs in written if job_id in jobs]
    assert len(writes) <= elapsed + 1  # no write of its own: ~1/s, with the lease renewal
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(writes))


async def _submit(engine: Engine) -> str:
    created = await engine.create_job({"url": "http://127.0.0.1:9/noop"})
    assert isinstance(created, JobCreated)
    return created.job_id


async def test_top_rows_show_queue_running_workers_last_minute_and_errors(backend: Backend) -> None:
    store = backend.store
    jobs = [_job() for _ in range(6)]
    await store.insert_jobs(jobs)
    started = now_ms()
    running, token = await _claim_one(store, "host:1:w1")
    ended = []
    for status in (Status.COMPLETED, Status.FAILED, Status.CANCELLED):
        job, job_token = await _claim_one(store, "host:2:w2")
        job = _ended(job, status, 1000 if status is Status.COMPLETED else None)
        job.error = "HTTP 503" if status is Status.FAILED else None
        await store.save(job, job_token)
        ended.append(job)
    progress = LiveProgress(Step.DOWNLOADING, 1.5, 4.5, 100, 2000, 50.0, 38.0, started)
    await store.heartbeat("host:1:w1", {running.id: token}, 30, {running.id: json.dumps(progress.to_dict())})
    rows = await store.top_rows(started - 1000, limit=10)
    assert rows.counts == {"Pending": 2, "Processing": 1, "Completed": 1, "Failed": 1, "Cancelled": 1}
    assert [(job.id, worker) for job, worker in rows.running] == [(running.id, "host:1:w1")]
    assert rows.running[0][0].live == progress
    [worker] = rows.workers
    assert (worker.worker_id, worker.jobs) == ("host:1:w1", 1)
    assert worker.heartbeat_at is not None and started - 5000 <= worker.heartbeat_at <= now_ms() + 5000
    assert worker.lease_expires_at is not None and worker.lease_expires_at > worker.heartbeat_at
    assert rows.finished == {"Completed": (1, 1000), "Failed": (1, 0), "Cancelled": (1, 0)}
    assert [(job.id, job.error) for job in rows.errors] == [(ended[1].id, "HTTP 503")]
    assert (await store.top_rows(now_ms() + 60_000, limit=10)).finished == {}


# -- PostgreSQL only: schema, reconnects, secrets ----------------------------------------------------


_CATALOG = {
    "columns": """SELECT table_name, column_name, data_type, is_nullable, column_default, is_identity
                  FROM information_schema.columns WHERE table_schema = 'public'""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "constraints": """SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
                      FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
                      WHERE n.nspname = 'public'""",
    "tables": "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'public'",
}


def _catalog(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    return {name: sorted(_sql(dsn, query), key=repr) for name, query in _CATALOG.items()}


async def _migrate(dsn: str, upto: int | None = None) -> list[int]:
    import psycopg

    from tornado_engine.store.postgres import migrate

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        return await migrate(conn, upto=upto)


async def test_a_read_only_open_creates_nothing_in_an_empty_database(new_database: Callable[[], str]) -> None:
    dsn = new_database()
    with pytest.raises(StoreError, match="no job store in this PostgreSQL database"):
        await open_store(dsn, create=False).open()
    assert _catalog(dsn)["tables"] == []
    store = open_store(dsn)
    await store.open()  # a worker's open makes it
    await store.close()
    reader = open_store(dsn, create=False)
    await reader.open()
    await reader.close()


async def test_fresh_schema_equals_all_migrations(new_database: Callable[[], str]) -> None:
    from tornado_engine.store.postgres import load_migrations

    versions = [m.version for m in load_migrations()]
    assert versions == list(range(1, len(versions) + 1))  # 0001, 0002, ... no gaps
    fresh, upgraded = new_database(), new_database()
    assert await _migrate(fresh) == versions  # schema.sql, all recorded
    assert await _migrate(upgraded, upto=1) == [1]  # a database made by the first release ...
    assert await _migrate(upgraded) == versions[1:]  # ... then upgraded step by step
    assert _catalog(fresh) == _catalog(upgraded)
    assert await _migrate(fresh) == [] and await _migrate(upgraded) == []
    recorded = _sql(fresh, "SELECT version, name FROM tornado_schema_migrations ORDER BY version")
    assert recorded == [(m.version, m.name) for m in load_migrations()]


async def test_workers_starting_together_migrate_once(new_database: Callable[[], str]) -> None:
    from tornado_engine.store.postgres import PostgresStore, load_migrations

    dsn = new_database()
    stores = [PostgresStore(dsn) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))  # the advisory lock serializes them
    await asyncio.gather(*(s.close() for s in stores))
    assert _sql(dsn, "SELECT count(*) FROM tornado_schema_migrations")[0][0] == len(load_migrations())


async def test_newer_schema_is_refused(new_database: Callable[[], str]) -> None:
    from tornado_engine.store.postgres import PostgresStore

    dsn = new_database()
    await _migrate(dsn)
    _sql(dsn, "INSERT INTO tornado_schema_migrations (version, name) VALUES (9999, 'from_the_future')")
    with pytest.raises(StoreError, match="newer than this tornado-engine"):
        await PostgresStore(dsn).open()


def _kill(dsn: str, application_name: str) -> int:
    rows = _sql(dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                (application_name,))  # fmt: skip
    return len(rows)


async def test_reconnects_after_the_server_drops_connections(new_database: Callable[[], str]) -> None:
    from tornado_engine.store.postgres import PostgresStore

    dsn = new_database()
    store = PostgresStore(f"{dsn}?application_name=tornado_drop", min_size=2)
    await store.open()
    try:
        await store.insert_jobs([_job()])
        for _ in range(2):  # as on a server restart: every pooled connection is gone
            assert _kill(dsn, "tornado_drop") >= 1
            assert len(await store.list_jobs(None, 10, 0)) >= 1  # a read
            await store.insert_jobs([_job()])  # a write: the checked pool hands out live connections
        assert len(await store.list_jobs(None, 10, 0)) == 3
    finally:
        await store.close()


class _Outage:
    """A TCP proxy in front of the server that can go down like a restarting server: every connection
    through it is cut and new ones are refused until ``restore``."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream, self.down, self.port = upstream, False, 0
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self._writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        self.down = True
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def close(self) -> None:
        self.cut()
        self._server.close()
        await self._server.wait_closed()


async def test_operations_wait_out_a_server_restart(new_database: Callable[[], str]) -> None:
    from tornado_engine.store.postgres import PostgresStore

    dsn = urllib.parse.urlsplit(new_database())
    proxy = _Outage((dsn.hostname or "127.0.0.1", dsn.port or 5432))
    await proxy.start()
    user = dsn.netloc.rpartition("@")[0]
    store = PostgresStore(dsn._replace(netloc=f"{user}@127.0.0.1:{proxy.port}").geturl(), min_size=2)
    try:
        await store.open()
        job = _job()
        await store.insert_jobs([job])
        proxy.cut()  # the server goes away ...
        asyncio.get_running_loop().call_later(1.5, setattr, proxy, "down", False)  # ... and comes back
        started = asyncio.get_running_loop().time()
        got, more = await asyncio.gather(store.get_job(job.id), store.insert_jobs([_job()]))
        assert got is not None and got.id == job.id and len(more) == 1
        assert asyncio.get_running_loop().time() - started >= 1.4  # they waited for it, with backoff
        assert len(await store.list_jobs(None, 10, 0)) == 2  # the write landed once
    finally:
        await store.close()
        await proxy.close()


async def test_the_store_is_back_within_a_second_of_the_server(new_database: Callable[[], str]) -> None:
    """psycopg_pool's own backoff between attempts to reconnect (1, 2, 4, 8 s ...) left the store
    "unavailable" for seconds after the server was back; the store's pool tries every 0.1-1 s."""
    from tornado_engine.store.postgres import PostgresStore

    dsn = urllib.parse.urlsplit(new_database())
    proxy = _Outage((dsn.hostname or "127.0.0.1", dsn.port or 5432))
    await proxy.start()
    user = dsn.netloc.rpartition("@")[0]
    store = PostgresStore(dsn._replace(netloc=f"{user}@127.0.0.1:{proxy.port}").geturl(), min_size=3)
    loop = asyncio.get_running_loop()
    try:
        await store.open()
        await store.insert_jobs([_job()])
        proxy.cut()  # a restart: every connection cut, none accepted for 4 s
        back = loop.time() + 4.0
        loop.call_at(back, setattr, proxy, "down", False)
        await asyncio.sleep(0.3)
        reads = await asyncio.gather(*(store.list_jobs(None, 10, 0) for _ in range(4)))
        assert [len(r) for r in reads] == [1] * 4
        assert loop.time() - back < 1.5, f"{loop.time() - back:.1f} s after the server was back"
    finally:
        await store.close()
        await proxy.close()


async def test_a_transaction_left_idle_loses_its_session_and_its_locks(
    new_database: Callable[[], str],
) -> None:
    """A worker frozen inside a transaction (SIGSTOP, a VM pause) must not hold its rows until it thaws:
    each connection sets idle_in_transaction_session_timeout (60 s unless configured)."""
    import psycopg

    from tornado_engine.store.postgres import PostgresStore

    dsn = new_database()

    async def setting(store: PostgresStore) -> str:
        await store.open()
        try:
            async with store._db._pool.connection() as conn:  # type: ignore[union-attr]
                row = await (await conn.execute(b"SHOW idle_in_transaction_session_timeout")).fetchone()
                return str(row[0]) if row else ""
        finally:
            await store.close()

    assert await setting(PostgresStore(dsn)) == "1min"
    assert await setting(PostgresStore(dsn, idle_in_transaction_timeout=None)) == "0"  # the server's
    mine = f"{dsn}?options=-c%20idle_in_transaction_session_timeout%3D7s"
    assert await setting(PostgresStore(mine)) == "7s"  # the DSN's own setting wins
    store = PostgresStore(dsn, idle_in_transaction_timeout=0.5)
    await store.open()
    try:
        await store.insert_jobs([_job()])
        job, token = await _claim_one(store)
        assert store._db._pool is not None
        async with store._db._pool.connection() as conn:
            await conn.execute(b"BEGIN")
            await conn.execute(b"SELECT 1 FROM tornado_jobs WHERE id = %s FOR UPDATE", (job.id,))
            await asyncio.sleep(1.5)  # frozen, holding the job's row
            with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):
                await conn.execute(b"SELECT 1")
        job.step = Step.MUXING
        await asyncio.wait_for(store.save(job, token), 5)  # the row is free: the write goes through
        got = await store.get_job(job.id)
        assert got is not None and got.step is Step.MUXING
    finally:
        await store.close()


_KILL_FN = """
CREATE SEQUENCE {name}_seq;
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('{name}_seq') = 1 THEN  -- sequences ignore rollback: only the first attempt dies
        PERFORM pg_terminate_backend(pg_backend_pid());
        PERFORM pg_sleep(5);
    END IF;
    RETURN NEW;
END $$;
"""


async def test_write_retried_once_when_it_cannot_have_committed(new_database: Callable[[], str]) -> None:
    from tornado_engine.store.postgres import PostgresStore

    dsn = new_database()
    store = PostgresStore(dsn)
    await store.open()
    try:
        _sql(dsn, _KILL_FN.format(name="kill_mid"))
        _sql(
            dsn,
            "CREATE TRIGGER kill_mid BEFORE INSERT ON tornado_jobs FOR EACH ROW EXECUTE FUNCTION kill_mid()",
        )
        job = _job()
        assert [j.id for j in await store.insert_jobs([job])] == [job.id]  # died mid-transaction, retried
        assert _sql(dsn, "SELECT count(*) FROM tornado_jobs")[0][0] == 1
        assert _sql(dsn, "SELECT last_value FROM kill_mid_seq")[0][0] == 2
    finally:
        await store.close()


async def test_write_lost_at_commit_is_reported_not_repeated(new_database: Callable[[], str]) -> None:
    from tornado_engine.store.postgres import PostgresStore

    dsn = new_database()
    store = PostgresStore(dsn)
    await store.open()
    try:
        _sql(dsn, _KILL_FN.format(name="kill_commit"))
        _sql(dsn, "CREATE CONSTRAINT TRIGGER kill_commit AFTER INSERT ON tornado_jobs"
                  " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION kill_commit()")  # fmt: skip
        with pytest.raises(StoreError, match="may or may not have been applied"):
            await store.insert_jobs([_job()])
        assert _sql(dsn, "SELECT last_value FROM kill_commit_seq")[0][0] == 1  # no second attempt
        assert _sql(dsn, "SELECT count(*) FROM tornado_jobs")[0][0] == 0
        await store.insert_jobs([_job()])  # and the store carries on
    finally:
        await store.close()


async def test_password_never_in_repr_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    try:
        from tornado_engine.store.postgres import PostgresStore, redact_dsn
    except ImportError:
        _unavailable("psycopg is not installed: pip install -e . --group dev")

    secret = "s3cr3t-Pa55"
    store = open_store(f"postgresql://alice:{secret}@127.0.0.1:1/db")
    assert isinstance(store, PostgresStore) and secret not in repr(store) and "alice:***@" in repr(store)
    assert isinstance(open_store(f"postgres://alice:{secret}@127.0.0.1:1/db"), PostgresStore)
    closed = PostgresStore(f"postgresql://alice:{secret}@127.0.0.1:1/db?sslmode=disable", connect_timeout=1)
    with caplog.at_level("DEBUG"), pytest.raises(StoreError) as raised:
        await closed.open()
    assert "cannot open PostgreSQL store" in str(raised.value)
    assert secret not in str(raised.value) and raised.value.__cause__ is None
    assert secret not in caplog.text
    with pytest.raises(StoreError) as bad:
        PostgresStore(f"host=127.0.0.1 password={secret} port=notaport nonsense")
    assert secret not in str(bad.value)
    assert redact_dsn(f"dbname=x password='{secret}' user=u") == "dbname=x password=*** user=u"
    assert secret not in redact_dsn(f"postgresql://u@h/db?password={secret}&sslmode=require")


def test_missing_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n == "psycopg" or n.startswith("psycopg.")]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed: import raises
    for name in [
        n for n in sys.modules if n.startswith(("tornado_engine.store.postgres", "tornado_engine.store.pg_"))
    ]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(StoreError, match=r"pip install 'tornado-engine\[postgres\]'") as raised:
        open_store("postgresql://postgres:hunter2@127.0.0.1:5432/db")
    assert "hunter2" not in str(raised.value)


async def test_engine_runs_a_real_job_on_postgres(
    new_database: Callable[[], str],
    media_server: MediaServer,
    media_set: MediaSet,
    probe: Callable[[str | Path], dict[str, Any]],
    tmp_path: Path,
) -> None:
    dsn = new_database()
    async with Engine.open(store=dsn, data_dir=tmp_path, concurrency=2, poll_interval=0.1) as engine:
        assert "PostgresStore" in repr(engine)
        created = await engine.create_job(
            JobRequest(url=media_server.url(media_set.progressive_mp4), filename="on-postgres")
        )
        assert isinstance(created, JobCreated)
        job = await engine.wait(created.job_id, timeout=120)
        assert job.status is Status.COMPLETED, job.to_api()
        path = Path(str(job.s3_url).removeprefix("file://"))
        assert path == tmp_path / "media" / "on-postgres.mp4" and job.file_size == path.stat().st_size
        assert {s["codec_type"] for s in probe(path)["streams"]} >= {"video", "audio"}
        assert (await engine.usage()).storage_usage_bytes == job.file_size
    assert not any((tmp_path / "tmp" / "engine-0").rglob("*"))  # temporary files removed
    rows = _sql(dsn, "SELECT status, lease_token FROM tornado_jobs")
    assert rows == [("Completed", 1)]


async def test_live_workers_and_host_waits_for_per_host_pacing(backend: Backend) -> None:
    store = backend.store
    jobs = [_job(owner="a", created_at=1), _job(owner="a", created_at=2), _job(owner="b", created_at=3)]
    await store.insert_jobs(jobs)
    assert await store.live_workers("w1") == 0
    first = await store.claim("w1", 1, 30)
    second = await store.claim("w2", 1, 30)
    await store.claim("w3", 1, 30)
    assert (await store.live_workers("w1"), await store.live_workers("w9")) == (2, 3)
    backend.backdate(second[0].job.id)  # a dead worker's lease: it makes no requests any more
    assert await store.live_workers("w1") == 1
    job = first[0].job
    job.host_waits = 3
    await store.save(_ended(job), first[0].token)
    assert ((await store.usage("a")).host_waits, (await store.usage("b")).host_waits) == (3, 0)
    assert (await store.usage(None)).host_waits == 3
