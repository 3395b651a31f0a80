"""``python tests/acceptance/submit_jobs.py STORE DATA_DIR COUNT``: a process that only submits.

Opens the engine on STORE without running jobs and creates COUNT jobs one by one (``create_job``, one
transaction each), printing each job id on its own line as soon as it is committed. The URL is never
fetched: the workers that run these jobs have no-op stages (noop_worker.py).
"""

from __future__ import annotations

import asyncio
import sys

from tornado_engine import Engine, JobRequest
from tornado_engine.models import JobCreated


async def submit(store: str, data_dir: str, count: int) -> None:
    async with Engine.open(store=store, data_dir=data_dir, run_jobs=False, expand_playlists=False) as engine:
        for i in range(count):
            created = await engine.create_job(JobRequest(url=f"http://127.0.0.1:9/noop/{i}"))
            assert isinstance(created, JobCreated)
            print(created.job_id, flush=True)


if __name__ == "__main__":
    asyncio.run(submit(sys.argv[1], sys.argv[2], int(sys.argv[3])))
