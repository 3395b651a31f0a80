"""big-progressive: one ~150 MB progressive MP4 (h264/aac), copied to local storage.

Baselines, same URL, same run, alternating with the engine:
- ``curl -o`` (the raw limit: one connection, straight to a file);
- the yt-dlp command line (``yt-dlp -o out.%(ext)s URL``), a process per download as people run it.
Engine: one job (``format=mp4``, copy) on an engine that is already open, as in a service, from
``create_job`` until the job is Completed (the file is in the storage folder), with the defaults
(``create_job`` probes the URL for a playlist first) and with ``expand_playlists=False``.
Targets: engine <= 1.3x curl and <= 0.5x the yt-dlp command line.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from _common import (
    CACHE,
    VENV_BIN,
    Report,
    Tracker,
    arguments,
    big_media,
    check_completed,
    clear_dir,
    fresh_dir,
    media_server,
    run_command,
)

from tornado_engine import Engine, JobRequest


async def engine_job(engine: Engine, tracker: Tracker, url: str, name: str) -> tuple[float, str]:
    started = time.perf_counter()
    created = await engine.create_job(JobRequest(url=url, filename=name))
    job_id = created.job_id
    await tracker.wait([job_id], timeout=600)
    elapsed = time.perf_counter() - started
    (job,) = await check_completed(engine, [job_id])
    return elapsed, job.download_strategy or ""


async def main() -> None:
    args = arguments(__doc__ or "", runs=5).parse_args()
    source = big_media(args.quick)
    size = source.stat().st_size
    work = fresh_dir(CACHE / "work" / "big_progressive")
    report = Report("big-progressive")
    curl: list[float] = []
    ytdlp: list[float] = []
    engine_default: list[float] = []
    engine_noprobe: list[float] = []
    strategies: set[str] = set()
    with media_server(source.parent) as base:
        url = f"{base}/{source.name}"
        options = {"concurrency": 8, "poll_interval": 0.05}
        async with (
            Engine.open(data_dir=work / "a", **options) as engine,
            Engine.open(data_dir=work / "b", expand_playlists=False, **options) as bare,
        ):
            trackers = {engine: Tracker(engine), bare: Tracker(bare)}
            for eng in (engine, bare):  # warm-up, untimed: a running service has imported everything
                await engine_job(eng, trackers[eng], url, "warmup")
                clear_dir(Path(eng.data_dir) / "media")
            for i in range(args.runs):
                out = work / "curl.mp4"
                curl.append(run_command(["curl", "-sS", "-f", "-o", str(out), url]))
                assert out.stat().st_size == size
                out.unlink()
                folder = fresh_dir(work / "ytdlp")
                cli = [str(VENV_BIN / "yt-dlp"), "--ignore-config", "-q", "--no-progress", "-P", str(folder)]
                ytdlp.append(run_command([*cli, "-o", "out.%(ext)s", url]))
                assert (folder / "out.mp4").stat().st_size == size
                clear_dir(folder)
                for eng, times in ((engine, engine_default), (bare, engine_noprobe)):
                    elapsed, strategy = await engine_job(eng, trackers[eng], url, f"run{i}")
                    stored = Path(eng.data_dir) / "media" / f"run{i}.mp4"
                    assert stored.stat().st_size == size, stored
                    times.append(elapsed)
                    strategies.add(strategy)
                    clear_dir(Path(eng.data_dir) / "media")
                print(f"run {i + 1}: curl {curl[-1]:.2f} s, yt-dlp {ytdlp[-1]:.2f} s, "
                      f"engine {engine_default[-1]:.2f} s, engine without probe {engine_noprobe[-1]:.2f} s",
                      flush=True)  # fmt: skip
    mb = size / 1e6
    report.ratio("engine / curl", engine_default, curl, 1.3, "curl")
    report.ratio("engine / yt-dlp CLI", engine_default, ytdlp, 0.5, "yt-dlp")
    report.ratio("engine (expand_playlists=False) / curl", engine_noprobe, curl, 1.3, "curl")
    report.notes.append(f"{mb:.0f} MB file; download strategy used: {', '.join(sorted(strategies))}")
    report.emit(args.json)


if __name__ == "__main__":
    asyncio.run(main())
