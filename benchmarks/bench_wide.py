"""wide: 500 jobs in flight at once against a deliberately slow local source.

Each job fetches its own ~1.5 MB file through MediaServer's ``/slow/`` route (``slow_bytes_per_sec``
per connection: 6 KiB/s, so a download lasts about four minutes and they all overlap). The engine runs
with ``concurrency=500`` and an I/O pool of 500. Measured: every job Completed, the peak number of jobs
in flight (claimed, not finished) and of downloads receiving bytes at the same moment, the process's
peak RSS and open file descriptors (against its limit). No baseline: this is about holding width, not
speed. Targets: all 500 in flight, peak RSS <= 2 GB, no fd exhaustion (peak fds well under the soft
limit), every job Completed.
"""

from __future__ import annotations

import asyncio
import resource
import time
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

from tornado_engine import Engine, PoolLimits


async def main() -> None:
    parser = arguments(__doc__ or "", runs=1)
    parser.add_argument("--jobs", type=int, help="jobs (default 500; 100 with --quick)")
    parser.add_argument(
        "--rate", type=int, help="bytes/s per connection of /slow/ (6 KiB/s; 24 with --quick)"
    )
    args = parser.parse_args()
    count = args.jobs or (100 if args.quick else 500)
    # slow enough that the first downloads still run when the last job starts: resolving 500 jobs takes
    # minutes of CPU on two cores (see the README)
    args.rate = args.rate or (24 if args.quick else 6) * 1024
    paths = small_media(count)
    soft_fds, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    report = Report("wide")
    work = fresh_dir(CACHE / "work" / "wide")
    in_flight: set[str] = set()
    receiving: set[str] = set()
    peaks = {"in_flight": 0, "receiving": 0}

    def watch(event: object) -> None:
        job_id, step, status = event.job_id, event.step.value, event.status.value  # type: ignore[attr-defined]
        if status in ("Completed", "Failed", "Cancelled", "Warning", "Skipped"):
            in_flight.discard(job_id)
            receiving.discard(job_id)
            return
        in_flight.add(job_id)
        if step == "Downloading" and event.bytes_done:  # type: ignore[attr-defined]
            receiving.add(job_id)
        elif step != "Downloading":
            receiving.discard(job_id)
        peaks["in_flight"] = max(peaks["in_flight"], len(in_flight))
        peaks["receiving"] = max(peaks["receiving"], len(receiving))

    rss_before = rss_bytes()[0]
    with media_server(CACHE, slow_bytes_per_sec=args.rate) as base:
        urls: list[str | dict[str, Any]] = [f"{base}/slow/{p}" for p in paths]
        with Sampler(interval=0.25) as sampler:
            async with Engine.open(
                data_dir=work, concurrency=count, pools=PoolLimits(io=count, upload=16), poll_interval=0.1
            ) as engine:
                tracker = Tracker(engine)
                tracker.hooks.append(watch)
                started = time.perf_counter()
                ids: list[str] = []
                for i in range(0, count, 100):
                    ids += (await engine.create_bulk(urls[i : i + 100])).job_ids
                await tracker.wait(ids, timeout=1800)
                elapsed = time.perf_counter() - started
                jobs = await check_completed(engine, ids)
    seconds = sorted((j.download_duration_ms or 0) / 1000 for j in jobs)
    report.value("jobs Completed", f"{len(jobs)} / {count}", f"{count} / {count}", len(jobs) == count,
                 f"{elapsed:.0f} s in all; downloads took {seconds[0]:.0f}-{seconds[-1]:.0f} s each at "
                 f"{args.rate // 1024} KiB/s per connection")  # fmt: skip
    report.value("peak jobs in flight", f"{peaks['in_flight']}", f"{count}", peaks["in_flight"] == count,
                 f"peak {peaks['receiving']} downloads receiving bytes at the same moment")  # fmt: skip
    peak_gb = sampler.peak_rss / 2**30
    report.value("peak RSS", f"{peak_gb:.2f} GB", "<= 2 GB", peak_gb <= 2,
                 f"{rss_before / 2**20:.0f} MB before; peak {sampler.peak_threads} threads")  # fmt: skip
    detail = "this process; the media server runs in its own"
    fds_ok = sampler.peak_fds < soft_fds * 0.8
    report.value("peak open fds", f"{sampler.peak_fds}", f"< {soft_fds} (soft limit)", fds_ok, detail)
    report.emit(args.json)


if __name__ == "__main__":
    asyncio.run(main())
