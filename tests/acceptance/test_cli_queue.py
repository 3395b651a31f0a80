"""The CLI on a shared store (issue 14, points 1, 2, 5 and 14): ``run`` runs only the jobs it created and
leaves the rest of the queue to workers; Ctrl-C (a real SIGINT) cancels its job and removes its files
unless ``--detach``; a cancel removes a job's folder wherever it is; read-only commands create nothing;
``submit``, ``jobs wait``, ``--paused`` and ``jobs retry`` make the queue usable without Python;
``TORNADO_STORE`` / ``DATABASE_URL`` are the default ``--store``. Subprocesses, as a user runs them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_workers import _AUDIT, _sql, database  # noqa: F401 - the PostgreSQL fixture, found by name

from tornado_engine import Engine
from tornado_engine.models import JobCreated
from tornado_engine.testing import MediaServer, MediaSet

pytestmark = pytest.mark.acceptance

_QUEUED = "a worker on this store will run it"


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "TORNADO_ENGINE_HOME": str(home), **extra}
    for name in ("TORNADO_STORE", "DATABASE_URL"):
        if name not in extra:
            env.pop(name, None)
    return env


def _cli(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tornado_engine", *args], capture_output=True, text=True, timeout=120,
        env=_env(home, **env), stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _spawn(*args: str, home: Path, log: Path, **env: str) -> subprocess.Popen[str]:
    """A CLI process in the background; stdout piped, stderr to ``log`` (read while it runs)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tornado_engine", *args], stdout=subprocess.PIPE, stderr=log.open("w"),
        text=True, env=_env(home, **env), stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _until(check: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return found


def _rows(db: Path) -> dict[str, tuple[str, int, dict[str, Any]]]:
    """id -> (status, lease token, record), read straight from the SQLite file."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, status, lease_token, data FROM jobs").fetchall()
    return {r[0]: (r[1], r[2], json.loads(r[3])) for r in rows}


@pytest.fixture(scope="module")
def slow_server(media_root: Path) -> Iterator[MediaServer]:
    with MediaServer(media_root, slow_bytes_per_sec=16 * 1024) as srv:  # a download takes ~20 s
        yield srv


def test_run_leaves_the_queue_alone_and_a_paused_run_waits_for_batch_start(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet
) -> None:
    home, clip = tmp_path / "home", media_server.url(media_set.progressive_mp4)
    submitted = _cli("submit", clip, "--filename", "queued", "--json", home=home)
    assert submitted.returncode == 0, submitted.stderr
    queued = json.loads(submitted.stdout)["job_id"]
    assert _QUEUED in submitted.stderr and f"jobs wait {queued}" in submitted.stderr
    log = tmp_path / "paused-run.log"  # a run of a playlist whose batch waits for `batch start`
    paused = _spawn("run", media_server.url(media_set.feed_xml), "--paused", "--json", home=home, log=log)
    said = _until(lambda: "batch start " in log.read_text() and log.read_text(), "no paused batch")
    batch_id = said.split("batch start ")[1].split("`")[0]
    before = _rows(home / "jobs.db")
    assert len(before) == 4 and all(token == 0 for _, token, _ in before.values())

    ran = _cli("run", clip, "--filename", "mine", "--json", home=home)  # the same data dir and store
    assert ran.returncode == 0, ran.stderr
    mine = json.loads(ran.stdout)
    assert mine["status"] == "Completed" and mine["s3_url"].endswith("/mine.mp4")
    after = _rows(home / "jobs.db")
    assert set(after) == {*before, mine["id"]}
    assert {job_id: after[job_id] for job_id in before} == before  # never claimed, started or written
    with sqlite3.connect(home / "jobs.db") as conn:  # and no event was queued for any of them
        assert conn.execute("SELECT count(*) FROM outbox WHERE job_id != ?", (mine["id"],)).fetchone() == (0,)

    first = next(job_id for job_id in before if job_id != queued)
    renamed = _cli("batch", "rename", batch_id, f"{first}=opening", "--json", home=home)
    assert json.loads(renamed.stdout) == {"updated": 1, "errors": []}
    assert _cli("batch", "start", batch_id, "--json", home=home).returncode == 0
    out, _ = paused.communicate(timeout=120)  # the paused run runs its batch, and only that
    assert paused.returncode == 0, log.read_text()
    assert {job["status"] for job in json.loads(out)["jobs"]} == {"Completed"}
    assert [p.stem for p in (home / "media").glob("*/*") if p.stem == "opening"] == ["opening"]
    assert _rows(home / "jobs.db")[queued][:2] == ("Pending", 0)  # still the workers' (a worker: next test)


def test_concurrent_runs_on_postgres_each_run_their_own_and_a_worker_gets_the_rest(
    tmp_path: Path,
    media_server: MediaServer,
    media_set: MediaSet,
    database: str,  # noqa: F811
) -> None:
    clip = media_server.url(media_set.progressive_mp4)
    env = {"TORNADO_STORE": database}  # the default --store
    first = _cli("submit", clip, "--filename", "queued-0", "--json", home=tmp_path / "s", **env)
    assert first.returncode == 0, first.stderr
    _sql(database, _AUDIT)  # the schema exists now: records who completes each job
    queued = [json.loads(first.stdout)["job_id"]]
    queued += [json.loads(_cli("submit", clip, "--filename", "queued-1", "--json", home=tmp_path / "s",
                               DATABASE_URL=database).stdout)["job_id"]]  # fmt: skip
    storage = str(tmp_path / "media")
    runs = []
    for n in range(3):
        args = ("run", clip, "--filename", f"run-{n}", "--json", "--storage", storage)
        runs.append(_spawn(*args, home=tmp_path / f"r{n}", log=tmp_path / f"run-{n}.log", **env))
    records = []
    for proc in runs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, (tmp_path / "run-0.log").read_text()
        records.append(json.loads(out))
    completed_by = dict(_sql(database, "SELECT job_id, worker FROM test_completions"))
    assert set(completed_by) == {r["id"] for r in records}  # the runs' own jobs, nothing else
    for proc, record in zip(runs, records, strict=True):
        assert f":{proc.pid}:" in completed_by[record["id"]]  # each by the run that created it
    untouched = _sql(database, "SELECT status, lease_token FROM tornado_jobs WHERE id = ANY(%s)", (queued,))
    assert untouched == [("Pending", 0), ("Pending", 0)]

    worker = _spawn("worker", "--data-dir", str(tmp_path / "w"), "--storage", storage,
                    "--poll-interval", "0.2", home=tmp_path / "w", log=tmp_path / "w.log", **env)  # fmt: skip
    try:
        waited = _cli("jobs", "wait", queued[1], home=tmp_path / "s", **env)
        assert waited.returncode == 0, waited.stderr
        assert json.loads(waited.stdout)["status"] == "Completed"
        assert f"job {queued[1]}: Completed" in waited.stderr  # each new step said on stderr
        done = "SELECT count(*) FROM tornado_jobs WHERE status = 'Completed'"
        _until(lambda: _sql(database, done) == [(5,)], "the worker never finished the queued jobs")
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    completed_by = dict(_sql(database, "SELECT job_id, worker FROM test_completions"))
    assert all(f":{worker.pid}:" in completed_by[job_id] for job_id in queued)


def _downloading(home: Path) -> Path:
    """The job folder of the one job downloading under ``home``, once it holds bytes."""

    def folder() -> Path | None:
        for entry in (home / "tmp").glob("engine-*/*"):
            if entry.is_dir() and any(f.stat().st_size > 0 for f in entry.rglob("*") if f.is_file()):
                return entry
        return None

    found: Path = _until(folder, "the job never started downloading")
    return found


def test_ctrl_c_cancels_the_runs_own_job_and_removes_its_files(
    tmp_path: Path, slow_server: MediaServer, media_set: MediaSet
) -> None:
    home, log = tmp_path / "home", tmp_path / "run.log"
    proc = _spawn("run", slow_server.url("slow/" + media_set.progressive_mp4), "--json", home=home, log=log)
    folder = _downloading(home)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, log.read_text()
    record = json.loads(out)
    assert record["id"] == folder.name and record["status"] == "Cancelled"
    assert not folder.exists() and "Traceback" not in log.read_text()
    stored = json.loads(_cli("jobs", "get", folder.name, "--json", home=home).stdout)
    assert stored["status"] == "Cancelled"


def test_ctrl_c_with_detach_leaves_the_job_queued_for_workers(
    tmp_path: Path, slow_server: MediaServer, media_set: MediaSet
) -> None:
    home, log = tmp_path / "home", tmp_path / "run.log"
    url = slow_server.url("slow/" + media_set.progressive_mp4)
    proc = _spawn("run", url, "--json", "--detach", home=home, log=log)
    job_id = _downloading(home).name
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130 and _QUEUED in log.read_text(), log.read_text()
    assert json.loads(_cli("jobs", "get", job_id, "--json", home=home).stdout)["status"] == "Pending"


async def _orphans(home: Path, url: str) -> tuple[str, str]:
    """Two jobs whose engines are gone, each with files in a slot of ``home``: one handed back to the
    queue with a checkpoint (its folder kept for a resume), one still Processing under a dead pid."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    async with Engine.open(data_dir=home, run_jobs=False, expand_playlists=False) as engine:
        claims = []
        for slot in (3, 4):
            assert isinstance(await engine.create_job({"url": url}), JobCreated)
            [claim] = await engine.store.claim(f"{socket.gethostname()}:{dead}:x", 1, 30)
            folder = home / "tmp" / f"engine-{slot}" / claim.job.id
            folder.mkdir(parents=True)
            (folder / "part.mp4").write_bytes(b"x" * 1000)
            claims.append((claim, folder))
        (kept, folder), (stranded, _) = claims
        kept.job.checkpoint = {"stage": "downloaded", "host": socket.gethostname(), "folder": str(folder),
                               "media": [{"name": "part.mp4", "size": 1000}]}  # fmt: skip
        await engine.store.release(kept.job, kept.token)
        return kept.job.id, stranded.job.id


def test_a_cancel_removes_the_folders_of_jobs_whose_engine_is_gone(tmp_path: Path) -> None:
    home = tmp_path / "home"
    released, stranded = asyncio.run(_orphans(home, "http://127.0.0.1:9/v.mp4"))
    assert _rows(home / "jobs.db")[released][0] == "Pending"
    assert _rows(home / "jobs.db")[stranded][0] == "Processing"
    for job_id in (released, stranded):
        proc = _cli("jobs", "cancel", job_id, "--json", home=home)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["status"] == "Cancelled"  # at once: nobody runs it to notice
        assert list((home / "tmp").glob(f"engine-*/{job_id}")) == []


def test_read_only_commands_leave_a_missing_data_dir_alone(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    proc = _cli("jobs", "list", "--data-dir", str(missing), home=tmp_path)
    assert proc.returncode == 5 and "does not exist" in proc.stderr
    db = tmp_path / "store" / "jobs.db"
    asyncio.run(_submit(db, tmp_path / "submitter"))
    for command in (["jobs", "list"], ["usage"]):
        proc = _cli(*command, "--json", "--store", str(db), "--data-dir", str(missing), home=tmp_path)
        assert proc.returncode == 0, proc.stderr
    assert not missing.exists()  # no folder, no webhook secret: nothing was written


async def _submit(store: Path, data_dir: Path) -> None:
    async with Engine.open(store=str(store), data_dir=data_dir, run_jobs=False, expand_playlists=False) as e:
        await e.create_job({"url": "http://127.0.0.1:9/v.mp4"})


def test_store_from_the_environment_and_retry_says_what_runs_the_new_job(
    tmp_path: Path, media_server: MediaServer
) -> None:
    db = tmp_path / "shared.db"
    failed = _cli("run", media_server.url("status/404/x.mp4"), "--json", home=tmp_path / "a",
                  TORNADO_STORE=str(db))  # fmt: skip
    assert failed.returncode == 1 and db.is_file()
    job_id = json.loads(failed.stdout)["id"]
    listed = _cli("jobs", "list", "--json", home=tmp_path / "b", DATABASE_URL=f"sqlite:///{db}")
    assert [j["id"] for j in json.loads(listed.stdout)] == [job_id]
    ignored = _cli("jobs", "list", "--json", home=tmp_path / "b", DATABASE_URL="mysql://x@127.0.0.1/y")
    assert ignored.returncode == 5 and "does not exist" in ignored.stderr  # not ours: DATA_DIR/jobs.db
    retried = _cli("jobs", "retry", job_id, "--json", home=tmp_path / "b", TORNADO_STORE=str(db))
    new_id = json.loads(retried.stdout)["job_id"]
    assert f"queued as {new_id}; {_QUEUED}" in retried.stderr
