"""scaleout: I/O-bound jobs on 1, 3 and 6 worker processes sharing one PostgreSQL store.

Two cores cannot show CPU-bound scaling, so each job's stages wait without CPU (no-op stages,
``--stage-seconds`` each: download, mux, upload; 0.1 s by default) and each worker runs at most
``--concurrency`` jobs at once (10): what one worker can do is fixed, and more workers should do
proportionally more. Measured, for 1, 3 and 6 workers (``--jobs-per-worker`` jobs per worker, all
submitted at once from a separate process, ``create_bulk``):
- jobs per second from the first submit to the last job ended, and the ratios to one worker (targets
  >= 2.7x for 3, >= 5x for 6);
- every job run exactly once: each worker lists the jobs whose stages it ran, added up across workers.
Then paced queue-to-start across processes: ``--paced`` jobs submitted one by one (``create_job``) at 20/s
to 3 idle workers polling every 0.5 s (the engine's default), with the LISTEN/NOTIFY wake-up and, side by
side, without it (polling only, as before): p50/p99 of ``started_at - created_at`` (target p50 <= 10 ms),
and the part after ``create_job`` returned. Two commits lie on that path (the insert's, the claim's), each
waiting for its WAL flush: a third side shows the same with ``synchronous_commit=off`` (a what-if only:
the engine needs its claims durable, or a lease token could be handed out twice after a crash).
Needs PostgreSQL (``--postgres``, as for the scheduler benchmark); each run gets a fresh database.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import CACHE, Report, arguments, fresh_dir
from bench_scheduler import URL, percentile, pg_database, postgres_reachable, queue_waits, submit, workers

from tornado_engine import Engine

CONCURRENCY = {"per_worker": 10, "stage_seconds": 0.1}


async def _all_ended(submitter: Engine, count: int) -> None:
    """Other processes' events do not reach this one: ask the store."""
    while True:
        usage = await submitter.store.usage(None)
        if sum(n for st, n in usage.counts.items() if st not in ("Pending", "Processing")) >= count:
            return
        await asyncio.sleep(0.05)


def _ran(work: Path, processes: int) -> Counter[str]:
    ran: Counter[str] = Counter()
    for i in range(processes):
        ran.update((work / f"w{i}" / "ran.txt").read_text().split())
    return ran


def _worker_options(poll: float, listen: bool) -> tuple[str, ...]:
    options = ("--stage-seconds", str(CONCURRENCY["stage_seconds"]), "--poll-interval", str(poll))
    return (*options, "--count-runs", *(() if listen else ("--no-listen",)))


async def burst(admin: str, processes: int, count: int) -> dict[str, Any]:
    """``count`` jobs at once on ``processes`` workers: rate, failures, how often each job ran."""
    work = fresh_dir(CACHE / "work" / "scaleout" / f"pg{processes}")
    with pg_database(admin) as dsn:
        async with Engine.open(
            store=dsn, data_dir=work / "submit", run_jobs=False, expand_playlists=False
        ) as submitter:
            options = _worker_options(0.5, listen=True)
            with workers(dsn, processes, CONCURRENCY["per_worker"], work, options):
                started = time.perf_counter()
                ids = await submit(submitter, count)
                await _all_ended(submitter, count)
                elapsed = time.perf_counter() - started
                failures: list[str] = []
                await queue_waits(submitter, ids, failures)
    ran = _ran(work, processes)
    twice = sum(1 for job_id in ids if ran[job_id] > 1)
    missing = sum(1 for job_id in ids if ran[job_id] == 0)
    return {
        "rate": count / elapsed,
        "failures": failures,
        "twice": twice,
        "missing": missing,
        "runs": sum(ran.values()),
    }


async def paced(
    admin: str, processes: int, count: int, listen: bool, synchronous_commit: str | None = None
) -> tuple[list[float], list[float], list[float]]:
    """Queue-to-start (ms) of ``count`` jobs submitted one by one at 20/s to idle workers, the part of it
    after ``create_job`` returned (the insert committed: the wake-up and the claim), and the part before
    (the submit: created_at to the insert's COMMIT)."""
    work = fresh_dir(CACHE / "work" / "scaleout" / f"paced-{'listen' if listen else 'poll'}")
    rate = 20.0
    with pg_database(admin, synchronous_commit) as dsn:
        async with Engine.open(
            store=dsn, data_dir=work / "submit", run_jobs=False, expand_playlists=False
        ) as submitter:
            with workers(dsn, processes, CONCURRENCY["per_worker"], work, _worker_options(0.5, listen)):
                await asyncio.sleep(1.0)  # past the workers' first claims: idle, waiting
                ids: list[str] = []
                committed: list[float] = []  # epoch ms, the clock of started_at (one machine)
                started = time.perf_counter()
                for k in range(count):
                    created = await submitter.create_job({"url": URL.format(f"paced-{k}")})
                    committed.append(time.time() * 1000)
                    ids.append(created.job_id)  # type: ignore[union-attr]
                    await asyncio.sleep(max(0.0, started + (k + 1) / rate - time.perf_counter()))
                await _all_ended(submitter, count)
                jobs = [await submitter.get_job(job_id) for job_id in ids]
                after = [float((j.started_at or 0) - at) for j, at in zip(jobs, committed, strict=True)]
                waits = await queue_waits(submitter, ids)
                return waits, after, [w - a for w, a in zip(waits, after, strict=True)]


async def scaling(report: Report, admin: str, per_worker: int, runs: int) -> None:
    rates: dict[int, list[float]] = {1: [], 3: [], 6: []}
    problems: list[str] = []
    for run in range(runs):
        for processes in rates:  # alternating within each run: the machine's load hits all alike
            r = await burst(admin, processes, per_worker * processes)
            rates[processes].append(r["rate"])
            if r["failures"] or r["twice"] or r["missing"]:
                problems.append(
                    f"{processes} workers: {len(r['failures'])} not Completed, {r['twice']} "
                    f"run twice, {r['missing']} never run"
                )
            print(
                f"run {run + 1}, {processes} worker(s): {per_worker * processes} jobs, {r['rate']:.0f} "
                f"jobs/s, {r['runs']} stage runs, {len(r['failures'])} not Completed",
                flush=True,
            )
    one = statistics.median(rates[1])
    ideal = CONCURRENCY["per_worker"] / (3 * CONCURRENCY["stage_seconds"])
    detail = (
        f"median of {runs}; {CONCURRENCY['per_worker']} jobs at once per worker, each waiting "
        f"3 x {CONCURRENCY['stage_seconds']:g} s: at most {ideal:.0f} jobs/s per worker"
    )
    report.value("1 worker: jobs/s", f"{one:.1f}", "", None, detail)
    for processes, limit in ((3, 2.7), (6, 5.0)):
        rate = statistics.median(rates[processes])
        all_rates = "/".join(f"{x:.0f}" for x in rates[processes])
        report.value(
            f"{processes} workers vs 1",
            f"{rate / one:.2f}x",
            f">= {limit}x",
            rate / one >= limit,
            f"{rate:.1f} jobs/s (all runs: {all_rates})",
        )
    total = sum(per_worker * p for p in rates) * runs
    report.value(
        "each job run exactly once",
        "yes" if not problems else "no",
        "yes",
        not problems,
        "; ".join(problems) or f"{total} jobs, counted per worker",
    )


async def main() -> None:
    parser = arguments(__doc__ or "", runs=3)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--jobs-per-worker", type=int, help="jobs per worker per run (150; 60 with --quick)")
    parser.add_argument("--paced", type=int, help="paced jobs per side (200; 60 with --quick)")
    parser.add_argument("--concurrency", type=int, default=10, help="jobs at once per worker")
    parser.add_argument("--stage-seconds", type=float, default=0.1, help="wait per stage (3 stages)")
    parser.add_argument("--paced-only", action="store_true", help="only the paced queue-to-start sides")
    args = parser.parse_args()
    CONCURRENCY.update(per_worker=args.concurrency, stage_seconds=args.stage_seconds)
    report = Report("scaleout")
    if not postgres_reachable(args.postgres):
        report.notes.append("PostgreSQL not reachable: no rows")
        report.emit(args.json)
        return
    if not args.paced_only:
        await scaling(report, args.postgres, args.jobs_per_worker or (60 if args.quick else 150), args.runs)
    count = args.paced or (60 if args.quick else 200)
    sides = [("LISTEN/NOTIFY", True, None), ("polling only (--no-listen, as before)", False, None),
             ("LISTEN/NOTIFY, what-if synchronous_commit=off", True, "off")]  # fmt: skip
    for how, listen, synchronous_commit in sides:
        waits, after, before = await paced(args.postgres, 3, count, listen, synchronous_commit)
        p50, p99 = percentile(waits, 50), percentile(waits, 99)
        first = how == "LISTEN/NOTIFY"
        report.value(
            f"paced queue-to-start, 3 workers, {how}",
            f"p50 {p50:.0f} ms / p99 {p99:.0f} ms",
            "<= 10 ms" if first else "",
            p50 <= 10 if first else None,
            f"{count} jobs one by one at 20/s from another process; workers poll every 0.5 s; from "
            f"create_job's return (the insert committed) to the start: p50 {percentile(after, 50):.0f} ms"
            f" / p99 {percentile(after, 99):.0f} ms; before it (created_at to the insert's COMMIT): p50 "
            f"{percentile(before, 50):.0f} ms; load average {os.getloadavg()[0]:.1f}",
        )
        print(f"paced, {how}: p50 {p50:.0f} ms, p99 {p99:.0f} ms", flush=True)
    report.emit(args.json)


if __name__ == "__main__":
    asyncio.run(main())
