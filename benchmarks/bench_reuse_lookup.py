"""reuse lookup: what asking the store for a reusable file costs a job that asks for reuse.

Fills a store with N Completed jobs (100 tenants, 1000 sources each with 3 output option sets, ended over
the last 10 days), then times ``store.reusable`` (the one query a reuse job adds after its resolve) for
hits and misses: the median and 95th percentile of 500 lookups; and what a job leading a download adds
for coalescing across processes (``lead_reuse`` + ``end_reuse_lead``, two writes). SQLite in a temporary
folder, and PostgreSQL when ``--postgres DSN`` names an empty database.

    .venv/bin/python benchmarks/bench_reuse_lookup.py [--jobs 100000] [--postgres postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from tornado_engine.models import Job, JobRequest, now_ms
from tornado_engine.states import Status, Step
from tornado_engine.store import open_store
from tornado_engine.store.base import JobStore

_DAY_MS = 24 * 3600 * 1000


def _jobs(count: int, rng: random.Random) -> list[Job]:
    now, out = now_ms(), []
    for n in range(count):
        url = f"https://media.example/v/{n % 1000}"
        job = Job(id=str(uuid.uuid4()), url=url, request=JobRequest(url=url), owner=f"t{n % 100}")
        job.status, job.step = Status.COMPLETED, Step.FINISHED
        job.finished_at = now - rng.randrange(10 * _DAY_MS)
        job.source_key, job.output_key = f"youtube:{n % 1000}", f"opts{n % 3}"
        job.storage_key, job.file_size = f"videos/{job.id}.mp4", 1000
        out.append(job)
    return out


async def _measure(store: JobStore, count: int) -> dict[str, float]:
    rng = random.Random(7)
    await store.open()
    try:
        jobs = _jobs(count, rng)
        for start in range(0, count, 1000):
            await store.insert_jobs(jobs[start : start + 1000])
        since = now_ms() - 7 * _DAY_MS
        result: dict[str, float] = {}
        for kind, source in (("hit", "youtube:{}"), ("miss", "vimeo:{}")):
            times = []
            for _ in range(500):
                owner, n = f"t{rng.randrange(100)}", rng.randrange(1000)
                started = time.perf_counter()
                await store.reusable(owner, source.format(n), f"opts{n % 3}", since, 5)
                times.append((time.perf_counter() - started) * 1000)
            times.sort()
            result[f"{kind}_median_ms"] = round(statistics.median(times), 3)
            result[f"{kind}_p95_ms"] = round(times[int(len(times) * 0.95)], 3)
        result.update(await _leads(store, rng))
        return result
    finally:
        await store.close()


async def _leads(store: JobStore, rng: random.Random) -> dict[str, float]:
    """What a leading job adds across processes: taking its file's row, and deleting it at its end."""
    times = []
    for n in range(300):
        job_id = str(uuid.uuid4())
        started = time.perf_counter()
        await store.lead_reuse(f"t{rng.randrange(100)}", f"youtube:new{n}", "opts0", job_id)
        await store.end_reuse_lead(job_id)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"lead_and_end_median_ms": round(statistics.median(times), 3),
            "lead_and_end_p95_ms": round(times[int(len(times) * 0.95)], 3)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--postgres", metavar="DSN", help="an empty PostgreSQL database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stores = {"sqlite": f"sqlite:///{Path(tmp) / 'jobs.db'}"}
        if args.postgres:
            stores["postgres"] = args.postgres
        for name, url in stores.items():
            print(name, args.jobs, "jobs:", asyncio.run(_measure(open_store(url), args.jobs)), flush=True)


if __name__ == "__main__":
    main()
