"""scheduler: 10,000 jobs through the store with the stages replaced by no-ops (tornado_engine.testing.noop).

What is left is the engine itself: submit (validation, the URL's network check, the insert), claims,
leases and heartbeats, each stage's fenced store write, progress events, the terminal write with its
webhook events. Measured:
- jobs per second from the first submit (``create_bulk``, 100 per call) to the last job Completed;
- peak RSS growth of the process over the run;
- queue-to-start latency (``started_at - created_at``, p50/p99): in the burst, where it mostly measures
  the backlog, and with jobs submitted one by one (``create_job``) at a steady rate below capacity.
SQLite store (default), in one process with the engine's defaults (``concurrency=500``). With a
reachable PostgreSQL (``--postgres DSN``, default ``$TORNADO_TEST_POSTGRES`` or
postgresql://postgres@127.0.0.1:5432/postgres) also 1 and 3 worker processes sharing one PostgreSQL
store (a fresh database, dropped after), fed by a separate submitting process, 3,000 jobs each
(``--pg-jobs``). ``--submit single`` submits with ``create_job`` instead of ``create_bulk``.
Targets: >= 2,000 jobs/s, RSS growth <= 100 MB.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import CACHE, Report, Sampler, Tracker, arguments, fresh_dir, rss_bytes

from tornado_engine import Engine
from tornado_engine.testing.noop import noop_engine

URL = "http://127.0.0.1:9/noop/{}"  # never fetched: the stages are no-ops


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


SUBMIT = {"mode": "bulk"}  # --submit


async def submit(engine: Engine, count: int) -> list[str]:
    """``create_bulk`` (100 per call, each a batch), or with ``--submit single`` ``create_job`` per job
    (100 calls in flight at a time, no batch)."""
    ids: list[str] = []
    for i in range(0, count, 100):
        urls = [URL.format(j) for j in range(i, min(count, i + 100))]
        if SUBMIT["mode"] == "bulk":
            ids += (await engine.create_bulk(list(urls))).job_ids
        else:
            created = await asyncio.gather(*(engine.create_job({"url": u}) for u in urls))
            ids += [c.job_id for c in created]
    return ids


async def queue_waits(engine: Engine, ids: list[str], failures: list[str] | None = None) -> list[float]:
    """Queue-to-start latencies (ms). A job that did not complete is listed in ``failures`` (else raises)."""
    # one job at a time, keeping only what is measured: a list of 10,000 Job records (~45 MB) would be
    # the harness's memory, counted in the engine's peak RSS growth
    waits: list[float] = []
    bad: list[Any] = []
    for job_id in ids:
        job = await engine.get_job(job_id)
        waits.append(float(job.queue_wait_ms or 0))
        if job.status.value != "Completed":
            bad.append(job)
    if bad and failures is None:
        raise RuntimeError(f"{len(bad)} jobs did not complete: {bad[0].to_api()}")
    if failures is not None:
        failures += [f"{j.status.value}: {j.error}" for j in bad]
    return waits


async def paced(engine: Engine, tracker: Tracker, count: int, rate: float) -> list[float]:
    """Jobs one by one (create_job) at ``rate`` per second; their queue-to-start latencies."""
    ids: list[str] = []
    started = time.perf_counter()
    for k in range(count):
        created = await engine.create_job({"url": URL.format(f"paced-{k}")})
        ids.append(created.job_id)
        await asyncio.sleep(max(0.0, started + (k + 1) / rate - time.perf_counter()))
    await tracker.wait(ids, timeout=600)
    return await queue_waits(engine, ids)


async def sqlite_runs(report: Report, count: int, runs: int, paced_count: int) -> None:
    rates: list[float] = []
    burst_p50: list[float] = []
    burst_p99: list[float] = []
    paced_waits: list[float] = []
    rss_before = rss_bytes()[0]
    with Sampler() as sampler:
        for run in range(runs):
            work = fresh_dir(CACHE / "work" / "scheduler" / f"sqlite{run}")
            async with noop_engine(data_dir=work, poll_interval=0.05) as engine:
                tracker = Tracker(engine)
                started = time.perf_counter()
                ids = await submit(engine, count)
                submitted = time.perf_counter() - started
                await tracker.wait(ids, timeout=1800)
                elapsed = time.perf_counter() - started
                rates.append(count / elapsed)
                waits = await queue_waits(engine, ids)
                burst_p50.append(percentile(waits, 50))
                burst_p99.append(percentile(waits, 99))
                rate = max(10.0, min(500.0, rates[-1] / 2))
                paced_waits += await paced(engine, tracker, paced_count, rate)
            growth = (sampler.peak_rss - rss_before) / 2**20
            print(
                f"run {run + 1}: {count} jobs in {elapsed:.1f} s ({rates[-1]:,.0f} jobs/s; submit "
                f"{submitted:.1f} s), burst queue wait p50 {burst_p50[-1]:.0f} ms, "
                f"p99 {burst_p99[-1]:.0f} ms, peak RSS +{growth:.0f} MB",
                flush=True,
            )
    rate = statistics.median(rates)
    growth = (sampler.peak_rss - rss_before) / 2**20
    all_rates = "/".join(f"{r:,.0f}" for r in rates)
    detail = f"median of {runs} runs of {count} jobs ({all_rates})"
    report.value("SQLite, 1 process: jobs/s", f"{rate:,.0f}", ">= 2,000", rate >= 2000, detail)
    detail = (
        f"{rss_before / 2**20:.0f} MB before the first run, {sampler.peak_rss / 2**20:.0f} MB at peak; "
        f"peak {sampler.peak_threads} threads, {sampler.peak_fds} fds"
    )
    report.value("SQLite: peak RSS growth", f"{growth:.0f} MB", "<= 100 MB", growth <= 100, detail)
    value = f"p50 {statistics.median(burst_p50):,.0f} ms / p99 {statistics.median(burst_p99):,.0f} ms"
    detail = f"all {count} submitted at once: mostly the backlog ahead of each job"
    report.value("SQLite: queue-to-start, burst", value, "", None, detail)
    value = f"p50 {percentile(paced_waits, 50):.0f} ms / p99 {percentile(paced_waits, 99):.0f} ms"
    detail = f"{paced_count} jobs per run, one by one (create_job) at half the measured rate (max 500/s)"
    report.value("SQLite: queue-to-start, paced", value, "", None, detail)


# -- PostgreSQL, several worker processes --------------------------------------------------------------


def _admin_dsn(dsn: str, database: str) -> str:
    return urllib.parse.urlsplit(dsn)._replace(path=f"/{database}").geturl()


@contextlib.contextmanager
def pg_database(admin: str, synchronous_commit: str | None = None) -> Iterator[str]:
    import psycopg

    name = f"tornado_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
        if synchronous_commit in ("on", "off"):  # a what-if: commits without waiting for the WAL flush
            conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = {synchronous_commit}'.encode())
    try:
        yield _admin_dsn(admin, name)
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


@contextlib.contextmanager
def workers(
    dsn: str, count: int, concurrency: int, work: Path, extra: tuple[str, ...] = ()
) -> Iterator[list[subprocess.Popen[str]]]:
    """``count`` noop_worker.py processes (``extra``: more of its options), stopped on the way out."""
    script = str(Path(__file__).with_name("noop_worker.py"))
    procs = [
        subprocess.Popen(
            [sys.executable, script, dsn, str(work / f"w{i}"), str(concurrency), *extra],
            stdout=subprocess.PIPE,
            stderr=open(work / f"w{i}.log", "wb"),  # noqa: SIM115 - the child owns it
            text=True,
            start_new_session=True,
        )
        for i in range(count)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("a worker did not start")
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def pg_run(admin: str, count: int, processes: int, synchronous_commit: str | None) -> dict[str, Any]:
    work = fresh_dir(CACHE / "work" / "scheduler" / f"pg{processes}")
    with pg_database(admin, synchronous_commit) as dsn:
        async with Engine.open(store=dsn, data_dir=work / "submit", run_jobs=False,
                               expand_playlists=False) as submitter:  # fmt: skip
            with workers(dsn, processes, 500, work) as procs:
                started = time.perf_counter()
                ids = await submit(submitter, count)
                while True:  # other processes: their events do not reach this one; ask the store
                    usage = await submitter.store.usage(None)
                    if (
                        sum(n for st, n in usage.counts.items() if st not in ("Pending", "Processing"))
                        >= count
                    ):
                        break
                    await asyncio.sleep(0.05)
                elapsed = time.perf_counter() - started
                failures: list[str] = []
                waits = await queue_waits(submitter, ids, failures)
                for proc in procs:
                    proc.send_signal(signal.SIGTERM)
                peaks = []
                for proc in procs:
                    out, _ = proc.communicate(timeout=60)
                    peaks.append(int(out.strip().splitlines()[-1]))
    return {"rate": count / elapsed, "elapsed": elapsed, "p50": percentile(waits, 50),
            "p99": percentile(waits, 99), "peak_rss": max(peaks), "failures": failures}  # fmt: skip


async def pg_runs(report: Report, admin: str, count: int, synchronous_commit: str | None) -> None:
    results: dict[int, dict[str, Any]] = {}
    for processes in (1, 3):
        r = results[processes] = await pg_run(admin, count, processes, synchronous_commit)
        line = f"{count} jobs in {r['elapsed']:.1f} s ({r['rate']:,.0f} jobs/s)"
        line += f", {len(r['failures'])} not Completed"
        print(f"PostgreSQL, {processes} worker process(es): {line}", flush=True)
    for processes, r in results.items():
        failed = r["failures"]
        detail = (
            f"{count} jobs, one run; burst queue wait p50 {r['p50']:,.0f} ms / p99 {r['p99']:,.0f} ms; "
            f"peak worker RSS {r['peak_rss'] / 2**20:.0f} MB"
        )
        if failed:
            detail += f"; {len(failed)} job(s) not Completed, e.g. {failed[0]!r}"
        measure = f"PostgreSQL, {processes} worker process(es): jobs/s"
        if synchronous_commit:
            measure += f" (synchronous_commit={synchronous_commit})"
        goal = 1500 if processes == 1 else 2000  # issue 15: one PostgreSQL worker >= 1,500 jobs/s
        report.value(measure, f"{r['rate']:,.0f}", f">= {goal:,}", r["rate"] >= goal and not failed, detail)


def postgres_reachable(admin: str) -> bool:
    try:
        import psycopg

        psycopg.connect(admin, connect_timeout=3).close()
        return True
    except Exception:
        return False


async def main() -> None:
    parser = arguments(__doc__ or "", runs=3)
    parser.add_argument("--jobs", type=int, help="jobs per run (default 10,000; 2,000 with --quick)")
    admin = os.environ.get("TORNADO_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--postgres", default=admin, help="admin DSN ('' to skip PostgreSQL)")
    parser.add_argument("--no-sqlite", action="store_true", help="only the PostgreSQL runs")
    parser.add_argument("--submit", choices=["bulk", "single"], default="bulk",
                        help="create_bulk (batches of 100, default) or create_job per job")  # fmt: skip
    parser.add_argument(
        "--pg-jobs", type=int, help="jobs per PostgreSQL run (default 3,000; 1,000 with --quick)"
    )
    parser.add_argument(
        "--pg-synchronous-commit", choices=["on", "off"], help="what-if: set it on the database"
    )
    args = parser.parse_args()
    count = args.jobs or (2000 if args.quick else 10_000)
    SUBMIT["mode"] = args.submit
    report = Report("scheduler")
    if not args.no_sqlite:
        await sqlite_runs(report, count, args.runs, paced_count=200 if args.quick else 1000)
    if args.postgres and postgres_reachable(args.postgres):
        pg_count = args.pg_jobs or (1000 if args.quick else 3000)  # see benchmarks/README.md for rates
        await pg_runs(report, args.postgres, pg_count, args.pg_synchronous_commit)
    else:
        report.notes.append("PostgreSQL skipped (--postgres '') or not reachable: no rows for it")
    report.emit(args.json)


if __name__ == "__main__":
    asyncio.run(main())
