"""width: 2,000 slow jobs running at once in one process, and 200 real jobs resolving beside them.

- ``--jobs`` (2,000) jobs on an engine with ``concurrency=2000`` and an I/O pool of 2,000, whose stages are
  no-ops that wait (``--stage-seconds`` per stage, 30 s: 90 s a job): a slow job's shape, without its
  bytes. Once all are in flight,
- a second engine in the same process (same event loop) runs ``--resolves`` (200) real jobs at once
  against the local media server's ``/slow/`` route (256 KiB/s per connection): yt-dlp resolves in the
  resolve pool's threads, downloads through the network guard, ffprobe checks, file storage.
Measured while both run: the event loop's lag (how late a 10 ms sleep wakes: p50/p99/max), the gaps
between each engine's heartbeats (late: more than 2 s apart, the cadence being 1 s and a lease 30 s),
peak RSS (with the 2,000 alone, then with the real jobs too), peak open fds against the soft limit
(which the engine raises toward what its concurrency may need at start: fdlimit.py), every job Completed.
Targets: RSS <= 1.5 GB, loop lag p99 <= 50 ms, late heartbeats 0, no fd exhaustion. While it runs, a
watchdog thread samples the loop thread's stack whenever the loop is > 150 ms late (loop_watchdog.py):
the report names the stacks seen most, and ``--stacks N`` prints the N most common to stderr.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    CACHE,
    Report,
    Sampler,
    Tracker,
    arguments,
    check_completed,
    fresh_dir,
    media_server,
    rss_bytes,
    small_media,
)
from bench_scheduler import percentile, submit
from loop_watchdog import LoopWatchdog

from tornado_engine import Engine, PoolLimits
from tornado_engine.testing.noop import NoopStages, noop_engine

LATE = 2.0  # seconds between two heartbeats of one engine beyond which one counts as late


def watch_heartbeats(engine: Engine, gaps: list[float]) -> None:
    """Note the time between consecutive heartbeat calls of ``engine``'s scheduler."""
    store: Any = engine.store
    original = store.heartbeat
    last: list[float] = []

    async def heartbeat(*args: Any, **kwargs: Any) -> Any:
        now = time.monotonic()
        if last:
            gaps.append(now - last[0])
        last[:] = [now]
        return await original(*args, **kwargs)

    store.heartbeat = heartbeat


async def all_ended(engine: Engine, count: int) -> None:
    """Until ``count`` jobs of ``engine``'s store have ended (read from the store, twice a second)."""
    while True:
        usage = await engine.store.usage(None)
        if sum(n for st, n in usage.counts.items() if st not in ("Pending", "Processing")) >= count:
            return
        await asyncio.sleep(0.5)


async def probe_lag(lags: list[float], running: Callable[[], bool], watchdog: LoopWatchdog) -> None:
    """How late a 10 ms sleep wakes, again and again, while ``running()``."""
    while running():
        started = time.perf_counter()
        watchdog.tick()
        await asyncio.sleep(0.01)
        lags.append(time.perf_counter() - started - 0.01)


async def main() -> None:
    parser = arguments(__doc__ or "", runs=1)
    parser.add_argument("--jobs", type=int, help="slow no-op jobs (2,000; 500 with --quick)")
    parser.add_argument("--resolves", type=int, help="real jobs beside them (200; 50 with --quick)")
    parser.add_argument("--stage-seconds", type=float, help="wait per no-op stage (30; 15 with --quick)")
    parser.add_argument("--stacks", type=int, default=0, help="print the N stacks seen most when late")
    parser.add_argument(
        "--format", help="the real jobs' format (e.g. mkv: each remuxes with an ffmpeg child); default: kept"
    )
    parser.add_argument("--late-ms", type=float, default=150, help="the watchdog's threshold (150 ms)")
    parser.add_argument(
        "--burn", type=int, default=0,
        help="N busy processes while the real jobs run: a loaded machine, the same for every run compared",
    )  # fmt: skip
    args = parser.parse_args()
    count, real = args.jobs or (500 if args.quick else 2000), args.resolves or (50 if args.quick else 200)
    stage_seconds = args.stage_seconds or (15.0 if args.quick else 30.0)
    report = Report("width")
    soft_before = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    paths = small_media(real)
    in_flight: set[str] = set()
    gaps: dict[str, list[float]] = {"slow": [], "real": []}
    lags: list[float] = []
    watchdog = LoopWatchdog(threshold=args.late_ms / 1000)
    rss_before = rss_bytes()[0]
    with media_server(CACHE, slow_bytes_per_sec=256 * 1024) as base, Sampler(interval=0.25) as sampler:
        async with (
            noop_engine(
                data_dir=fresh_dir(CACHE / "work" / "width" / "slow"),
                concurrency=count,
                pools=PoolLimits(io=count, upload=count),
                stages=NoopStages(stage_seconds=stage_seconds),
            ) as wide,
            Engine.open(data_dir=fresh_dir(CACHE / "work" / "width" / "real")) as engine,
        ):
            tracker = Tracker(wide)
            tracker.hooks.append(lambda e: e.status.value != "Pending" and in_flight.add(e.job_id))
            watch_heartbeats(wide, gaps["slow"])
            watch_heartbeats(engine, gaps["real"])
            started = time.perf_counter()
            ids = await submit(wide, count)
            while len(in_flight) < count:
                await asyncio.sleep(0.1)
            ramp = time.perf_counter() - started
            sampler.sample()
            rss_wide = sampler.peak_rss
            probing = True
            burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.burn)]
            floor_probe = subprocess.Popen(  # the same measure in an idle process: the machine's share
                [sys.executable, str(Path(__file__).with_name("lag_probe.py"))],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            # measured from here: the harness's own spawns above are not the engine's
            lag_task = asyncio.create_task(probe_lag(lags, lambda: probing, watchdog))
            watchdog.start()
            try:
                real_ids: list[str] = []
                for i in range(0, real, 100):  # create_bulk takes 100 URLs at most
                    chunk: list[str | dict[str, Any]] = [
                        {"url": f"{base}/slow/{p}", **({"format": args.format} if args.format else {})}
                        for p in paths[i : i + 100]
                    ]
                    real_ids += (await engine.create_bulk(chunk)).job_ids
                await all_ended(engine, len(real_ids))
                overlap = len(tracker.finished) == 0  # the real jobs ran while all the slow ones did
            finally:
                probing = False
                await lag_task
                watchdog.stop()
                for burner in burners:
                    burner.kill()
                    burner.wait()
                floor = [float(x) / 1000 for x in json.loads(floor_probe.communicate()[0])]
            real_seconds = time.perf_counter() - started - ramp
            await all_ended(wide, len(ids))
            await check_completed(wide, ids)
            await check_completed(engine, real_ids)
    load = os.getloadavg()
    report.value(
        "jobs Completed",
        f"{count} + {real}",
        "all",
        True,
        f"{count} in flight after {ramp:.1f} s; the {real} real jobs took {real_seconds:.0f} s"
        + ("" if overlap else "; some slow jobs ended before the real ones: raise --stage-seconds"),
    )
    rss_gb, peak_gb = rss_wide / 2**30, sampler.peak_rss / 2**30
    report.value(
        f"RSS with {count} in flight",
        f"{rss_gb:.2f} GB",
        "<= 1.5 GB",
        rss_gb <= 1.5,
        f"{rss_before / 2**20:.0f} MB before; peak {peak_gb:.2f} GB with the {real} real jobs too, "
        f"{sampler.peak_threads} threads",
    )
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    report.value(
        "peak open fds",
        f"{sampler.peak_fds}",
        f"< {soft} (soft limit)",
        sampler.peak_fds < soft * 0.8,
        f"soft limit {soft_before} before the engine started, {soft} after",
    )
    p50, p99 = percentile(lags, 50) * 1000, percentile(lags, 99) * 1000
    report.value(
        "loop lag while both run",
        f"p50 {p50:.1f} ms / p99 {p99:.1f} ms",
        "p99 <= 50 ms",
        p99 <= 50,
        f"{len(lags)} samples of a 10 ms sleep, max {max(lags) * 1000:.0f} ms; an idle loop in another "
        f"process at the same time (the machine's share): p50 {percentile(floor, 50) * 1000:.1f} ms / p99 "
        f"{percentile(floor, 99) * 1000:.1f} ms, max {max(floor) * 1000:.0f} ms; load average "
        f"{load[0]:.1f}/{load[1]:.1f}{f' ({args.burn} busy processes beside)' if args.burn else ''}; "
        f"watchdog: {watchdog.summary()}",
    )
    for where, n in watchdog.stacks.most_common(args.stacks):
        print(f"{n:5d}  {where}", file=sys.stderr)
    late = {name: sum(1 for g in values if g > LATE) for name, values in gaps.items()}
    worst = max(max(values, default=0.0) for values in gaps.values())
    median = statistics.median(gaps["slow"] + gaps["real"])
    report.value(
        "late heartbeats",
        f"{late['slow'] + late['real']}",
        "0",
        not any(late.values()),
        f"> {LATE:g} s apart: {late['slow']} of {len(gaps['slow'])} (slow engine), {late['real']} of "
        f"{len(gaps['real'])} (real engine); median gap {median:.2f} s, max {worst:.2f} s",
    )
    report.emit(args.json)


if __name__ == "__main__":
    asyncio.run(main())
