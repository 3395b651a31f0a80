"""``python benchmarks/noop_worker.py STORE_URL DATA_DIR CONCURRENCY``: a worker process with no-op stages.

bench_scheduler.py starts one or more of these on a shared store (PostgreSQL) and stops them by PID.
It prints its peak RSS (bytes) as its last line when stopped.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from _common import rss_bytes

from tornado_engine.testing.noop import noop_engine


async def main() -> None:
    store, data_dir, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with noop_engine(store=store, data_dir=data_dir, concurrency=concurrency, poll_interval=0.05):
        print("ready", flush=True)
        await stop.wait()
    print(rss_bytes()[1], flush=True)


if __name__ == "__main__":
    asyncio.run(main())
