"""``python benchmarks/lag_probe.py``: the machine's own event-loop lag, for comparison (bench_width.py).

An idle asyncio loop in a process of its own sleeps 10 ms again and again until its stdin closes, then
prints how late each sleep woke (ms, JSON list): what the machine's load alone does to a loop that has
nothing else to do.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time


async def main() -> None:
    closed = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), closed.set()), daemon=True).start()
    lags: list[float] = []
    while not closed.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append((time.perf_counter() - started - 0.01) * 1000)
    print(json.dumps(lags), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
