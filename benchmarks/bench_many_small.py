"""many-small: 200 progressive MP4s of ~1.5 MB each, at concurrency 8.

Baseline, same URLs, same run, alternating: ``xargs -P 8`` running the yt-dlp command line once per URL
(how a shell script does it). Engine: one open engine with ``concurrency=8``; the URLs are submitted with
``create_bulk`` (100 per call, TornadoAPI's bulk endpoint) and the time runs from the first submit until
the last job is Completed. Target: engine total wall time <= 0.05x (issue 15; 0.1x in issue 8).

The engine probes in-process (PyAV) by default; each run also times one batch with ``TORNADO_PROBE=ffprobe``
(an ffprobe process per file, as before) and one with ``TORNADO_RESOLVE=ytdlp`` (yt-dlp resolves each URL,
as before the in-process resolve of plain files), alternating with the others. CPU per job counts the engine's
process and every child it started and waited for (ffprobe, ffmpeg) during the batch: ``getrusage``
SELF + CHILDREN; the media server is a separate process and not counted.
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import subprocess
import time

from _common import (
    CACHE,
    VENV_BIN,
    Report,
    Tracker,
    arguments,
    check_completed,
    clear_dir,
    fresh_dir,
    media_server,
    small_media,
)

from tornado_engine import Engine, PoolLimits
from tornado_engine.avprobe import ENV_PROBE
from tornado_engine.pipeline.directfetch import ENV_RESOLVE


def cpu_seconds() -> float:
    """CPU of this process and of its waited-for children so far."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def xargs_ytdlp(urls: list[str], folder: str, parallel: int) -> float:
    cli = [
        str(VENV_BIN / "yt-dlp"),
        "--ignore-config",
        "-q",
        "--no-progress",
        "-P",
        folder,
        "-o",
        "%(id)s.%(ext)s",
    ]
    started = time.perf_counter()
    proc = subprocess.run(
        ["xargs", "-P", str(parallel), "-n", "1", *cli],
        input="\n".join(urls) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"xargs yt-dlp exited {proc.returncode}: {proc.stderr[-800:]}")
    return elapsed


async def engine_batch(
    engine: Engine, tracker: Tracker, urls: list[str], folder: str, cpu: list[float] | None = None
) -> float:
    started, cpu_started = time.perf_counter(), cpu_seconds()
    ids: list[str] = []
    for i in range(0, len(urls), 100):
        bulk = await engine.create_bulk(list(urls[i : i + 100]), folder=folder)
        if bulk.errors:
            raise RuntimeError(f"refused at submit: {bulk.errors[:3]}")
        ids += bulk.job_ids
    await tracker.wait(ids, timeout=1800, engine=engine)
    elapsed = time.perf_counter() - started
    if cpu is not None:
        cpu.append((cpu_seconds() - cpu_started) / len(urls))
    jobs = await check_completed(engine, ids)
    strategies = {j.download_strategy for j in jobs}
    assert strategies == {"fastpath"}, strategies
    return elapsed


async def batch_with(
    env: tuple[str, str], engine: Engine, tracker: Tracker, urls: list[str], folder: str, cpu: list[float]
) -> float:
    """A batch with one environment switch set (read at each probe or resolve: the same engine)."""
    os.environ[env[0]] = env[1]
    try:
        return await engine_batch(engine, tracker, urls, folder, cpu)
    finally:
        del os.environ[env[0]]


async def main() -> None:
    parser = arguments(__doc__ or "", runs=3)
    parser.add_argument(
        "--jobs", type=int, default=None, help="number of URLs (default 200; 40 with --quick)"
    )
    args = parser.parse_args()
    count = args.jobs or (40 if args.quick else 200)
    paths = small_media(count)
    work = fresh_dir(CACHE / "work" / "many_small")
    report = Report("many-small")
    baseline: list[float] = []
    engine_times: list[float] = []
    ffprobe_times: list[float] = []
    cpu: list[float] = []
    ffprobe_cpu: list[float] = []
    ytdlp_times: list[float] = []
    ytdlp_cpu: list[float] = []
    with media_server(CACHE) as base:
        urls = [f"{base}/{p}" for p in paths]
        async with Engine.open(
            data_dir=work / "engine", concurrency=8, pools=PoolLimits(io=8, upload=8), poll_interval=0.05
        ) as engine:
            tracker = Tracker(engine)
            await engine_batch(engine, tracker, urls[:8], "warmup")  # untimed: a running service is warm
            clear_dir(work / "engine" / "media")
            for i in range(args.runs):
                folder = fresh_dir(work / "ytdlp")
                baseline.append(xargs_ytdlp(urls, str(folder), 8))
                assert len(list(folder.glob("*.mp4"))) == count
                clear_dir(folder)
                engine_times.append(await engine_batch(engine, tracker, urls, f"run{i}", cpu))
                clear_dir(work / "engine" / "media")
                ffprobe = (ENV_PROBE, "ffprobe")
                ffprobe_times.append(await batch_with(ffprobe, engine, tracker, urls, f"ff{i}", ffprobe_cpu))
                clear_dir(work / "engine" / "media")
                ytdlp = (ENV_RESOLVE, "ytdlp")
                ytdlp_times.append(await batch_with(ytdlp, engine, tracker, urls, f"yt{i}", ytdlp_cpu))
                clear_dir(work / "engine" / "media")
                print(
                    f"run {i + 1}: xargs yt-dlp {baseline[-1]:.1f} s, engine {engine_times[-1]:.1f} s "
                    f"({cpu[-1] * 1000:.0f} ms CPU/job), with ffprobe {ffprobe_times[-1]:.1f} s "
                    f"({ffprobe_cpu[-1] * 1000:.0f} ms CPU/job), yt-dlp resolving {ytdlp_times[-1]:.1f} s "
                    f"({ytdlp_cpu[-1] * 1000:.0f} ms CPU/job); load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    report.ratio(f"engine / xargs -P 8 yt-dlp ({count} jobs)", engine_times, baseline, 0.05, "xargs")
    measure = f"engine (TORNADO_PROBE=ffprobe) / xargs ({count} jobs)"
    report.ratio(measure, ffprobe_times, baseline, 0.05, "xargs")
    report.ratio(
        f"engine (TORNADO_RESOLVE=ytdlp) / xargs ({count} jobs)", ytdlp_times, baseline, 0.05, "xargs"
    )
    sides = (
        ("engine", cpu),
        ("engine (TORNADO_PROBE=ffprobe)", ffprobe_cpu),
        ("engine (TORNADO_RESOLVE=ytdlp)", ytdlp_cpu),
    )
    for name, values in sides:
        ms = statistics.median(values) * 1000
        spread = "/".join(f"{v * 1000:.0f}" for v in values)
        detail = f"median of {len(values)} batches ({spread} ms); engine process + its children"
        report.value(f"{name}: CPU per job, all processes", f"{ms:.0f} ms", "<= 25 ms", ms <= 25, detail)
    report.notes.append(f"load average at the end: {os.getloadavg()[0]:.1f}")
    report.emit(args.json)


if __name__ == "__main__":
    asyncio.run(main())
