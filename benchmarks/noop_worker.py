"""``python benchmarks/noop_worker.py STORE_URL DATA_DIR CONCURRENCY [options]``: a worker process with no-op
stages.

bench_scheduler.py and bench_scaleout.py start one or more of these on a shared store (PostgreSQL) and stop
them by PID (SIGTERM). It prints its peak RSS (bytes) as its last line when stopped. Options:
``--stage-seconds S`` (each stage waits S s without CPU), ``--poll-interval S`` (default 0.05),
``--count-runs`` (the id of every job whose stages it ran, one a line, into DATA_DIR/ran.txt when stopped:
added up across workers, "each job ran exactly once" is checked), ``--no-listen`` (a what-if: the PostgreSQL
store without its LISTEN/NOTIFY wake-up, polling only, as before).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

from _common import rss_bytes

from tornado_engine.storage import StoredObject
from tornado_engine.store.base import JobStore
from tornado_engine.testing.noop import NoopStages, StageRun, noop_engine


class _CountingStages(NoopStages):
    """No-op stages that note each job they run."""

    def __init__(self, stage_seconds: float) -> None:
        super().__init__(stage_seconds=stage_seconds)
        self.ran: list[str] = []

    async def __call__(self, run: StageRun) -> StoredObject:
        self.ran.append(run.job.id)
        return await super().__call__(run)


def _store(url: str, listen: bool) -> str | JobStore:
    if listen or not url.startswith("postgres"):
        return url
    from tornado_engine.store.postgres import PostgresStore

    class _PollingStore(PostgresStore):
        def on_new_jobs(self, wake: Callable[[], None]) -> None:
            """Never woken by other processes: found by the next poll only."""

    return _PollingStore(url)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("data_dir")
    parser.add_argument("concurrency", type=int)
    parser.add_argument("--stage-seconds", type=float, default=0.0)
    parser.add_argument("--poll-interval", type=float, default=0.05)
    parser.add_argument("--count-runs", action="store_true")
    parser.add_argument("--no-listen", action="store_true")
    args = parser.parse_args()
    stages = _CountingStages(args.stage_seconds)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with noop_engine(
        store=_store(args.store, not args.no_listen), data_dir=args.data_dir, concurrency=args.concurrency,
        poll_interval=args.poll_interval, stages=stages,
    ):  # fmt: skip
        print("ready", flush=True)
        await stop.wait()
    if args.count_runs:
        (Path(args.data_dir) / "ran.txt").write_text("".join(f"{job_id}\n" for job_id in stages.ran))
    print(rss_bytes()[1], flush=True)


if __name__ == "__main__":
    asyncio.run(main())
