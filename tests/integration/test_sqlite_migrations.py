"""SQLite schema migrations: a database made by the release before them (tests/fixtures/jobs-v0.db, see
make_jobs_v0.py) is recognised, migrated without losing data, and its jobs run to the end; processes
opening one file together migrate it once; a database newer than the code is refused."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from tornado_engine import Status
from tornado_engine.errors import StoreError
from tornado_engine.store.sqlfiles import Migration
from tornado_engine.store.sqlite import SQLiteStore
from tornado_engine.store.sqlite_schema import MIGRATIONS, migrate, schema_version
from tornado_engine.testing.noop import NoopStages, noop_engine

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).parent.parent / "fixtures" / "jobs-v0.db"
NEWEST = MIGRATIONS[-1].version
ENDED = {"job-completed": Status.COMPLETED, "job-failed": Status.FAILED, "job-warning": Status.WARNING,
         "job-skipped": Status.SKIPPED, "job-cancelled": Status.CANCELLED}  # fmt: skip
OPEN = ["job-pending", "job-processing", "job-b1", "job-b2"]


def _v0_copy(tmp_path: Path) -> Path:
    path = tmp_path / "jobs.db"
    shutil.copyfile(FIXTURE, path)
    return path


def _query(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _schema(path: Path) -> list[tuple[object, ...]]:
    return _query(path, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")


async def test_v0_database_is_migrated_and_its_jobs_run_to_the_end(tmp_path: Path) -> None:
    path = _v0_copy(tmp_path)
    assert _query(path, "PRAGMA user_version") == [(0,)]
    before = {r[0]: r[1] for r in _query(path, "SELECT id, status FROM jobs")}
    assert set(before.values()) == {*ENDED.values(), Status.PENDING, Status.PROCESSING}
    stages = NoopStages()
    async with noop_engine(data_dir=tmp_path / "data", store=f"sqlite:///{path}", stages=stages,
                           poll_interval=0.05) as engine:  # fmt: skip
        assert _query(path, "PRAGMA user_version") == [(NEWEST,)]
        tenant = engine.tenant("tenant-a")
        assert (await tenant.get_batch("batch-paused")).paused  # still paused: nothing ran
        again = await tenant.create_job({"url": "http://127.0.0.1:9/noop/again"}, idempotency_key="idem-1")
        assert again.job_id == "job-pending"  # the v0 idempotency key still holds
        await tenant.start_batch("batch-paused")
        finished = {job_id: await tenant.wait(job_id, timeout=30) for job_id in OPEN}
        ended = {job_id: await tenant.get_job(job_id) for job_id in ENDED}
        batch = await tenant.get_batch("batch-paused")
    assert {job.status for job in finished.values()} == {Status.COMPLETED}
    assert stages.calls == len(OPEN)  # the expired lease of the vanished worker was taken over
    assert {job_id: job.status for job_id, job in ended.items()} == ENDED  # untouched
    assert ended["job-completed"].file_size == 1234
    assert (batch.completed_episodes, batch.failed_episodes, batch.paused) == (2, 0, False)
    outbox = {r[0]: r[1] for r in _query(path, "SELECT id, payload FROM outbox")}
    assert {"msg_progress", "msg_job-completed_job_completed", "msg_job-failed_job_failed"} <= set(outbox)
    assert '"completed":2' in outbox["msg_batch_batch-paused"]  # queued once the batch ended
    assert _query(path, "SELECT data FROM tenants WHERE owner = 'tenant-a'") == [
        ('{"quota": {"storage_bytes": 10000000}}',)
    ]


async def test_fresh_schema_equals_a_migrated_v0_schema(tmp_path: Path) -> None:
    old, fresh = _v0_copy(tmp_path), tmp_path / "fresh.db"
    for path in (old, fresh):
        store = SQLiteStore(path)
        await store.open()
        await store.close()
    assert _schema(old) == _schema(fresh)
    assert _query(fresh, "PRAGMA user_version") == [(NEWEST,)]


async def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    path = _v0_copy(tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {NEWEST + 1}")
    conn.close()
    with pytest.raises(StoreError, match=f"schema version {NEWEST + 1}, newer than this tornado-engine"):
        await SQLiteStore(path).open()


def test_connections_migrating_together_apply_each_migration_once(tmp_path: Path) -> None:
    """Like processes starting together: each its own connection; the last would fail if applied twice."""
    path = _v0_copy(tmp_path)
    once = Migration(NEWEST + 1, "once", "-- not idempotent\nCREATE TABLE applied_once (n INTEGER);\n"
                               "INSERT INTO applied_once VALUES (1);\n")  # fmt: skip
    migrations = [*MIGRATIONS, once]
    applied: list[list[int]] = []
    failed: list[BaseException] = []
    start = threading.Barrier(6, timeout=60)
    first = sqlite3.connect(path, isolation_level=None)
    first.execute("PRAGMA journal_mode = WAL")  # as the store sets it; a database in WAL mode stays in it
    first.close()

    def open_one() -> None:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            start.wait()
            applied.append(migrate(conn, migrations))
        except BaseException as exc:  # said below; the others' barrier breaks instead of waiting for ever
            failed.append(exc)
            start.abort()
        finally:
            conn.close()

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failed, failed
    assert sorted(applied) == [[]] * 5 + [list(range(1, NEWEST + 2))]
    assert _query(path, "SELECT n FROM applied_once") == [(1,)]
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert schema_version(conn) == NEWEST + 1
        assert migrate(conn, migrations) == []
    finally:
        conn.close()


def test_a_failing_migration_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    path = _v0_copy(tmp_path)
    broken = Migration(
        NEWEST + 1, "broken", "CREATE TABLE half (n INTEGER);\nINSERT INTO no_such_table VALUES (1);\n"
    )
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError):
            migrate(conn, [*MIGRATIONS, broken])
        assert schema_version(conn) == 0 and not conn.in_transaction
    finally:
        conn.close()
    assert _query(path, "SELECT name FROM sqlite_master WHERE name = 'half'") == []
