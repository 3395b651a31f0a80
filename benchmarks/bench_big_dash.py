"""big-dash: the big-progressive content as DASH (video and audio apart, 1 s segments), muxed to MP4 with
stream copy.

Baseline, same URL, same run, alternating: ``yt-dlp --merge-output-format mp4 -o out.%(ext)s URL`` (the
command line fetches the best video and audio and merges them with ffmpeg). Engine: one job
(``format=mp4``, copy) on an open engine, from ``create_job`` until Completed. Target: <= 0.6x.
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
    dash_of,
    fresh_dir,
    media_server,
    run_command,
)

from tornado_engine import Engine, JobRequest


async def engine_job(engine: Engine, tracker: Tracker, url: str, name: str) -> tuple[float, Path]:
    started = time.perf_counter()
    created = await engine.create_job(JobRequest(url=url, filename=name, format="mp4"))
    job_id = created.job_id
    await tracker.wait([job_id], timeout=900)
    elapsed = time.perf_counter() - started
    (job,) = await check_completed(engine, [job_id])
    return elapsed, Path((job.s3_url or "").removeprefix("file://"))


async def main() -> None:
    args = arguments(__doc__ or "", runs=3).parse_args()
    manifest = dash_of(big_media(args.quick))
    work = fresh_dir(CACHE / "work" / "big_dash")
    report = Report("big-dash")
    ytdlp: list[float] = []
    engine_times: list[float] = []
    sizes: dict[str, int] = {}
    with media_server(manifest.parent) as base:
        url = f"{base}/{manifest.name}"
        async with Engine.open(data_dir=work / "engine", concurrency=8, poll_interval=0.05) as engine:
            tracker = Tracker(engine)
            await engine_job(engine, tracker, url, "warmup")  # untimed: a running service is warm
            clear_dir(work / "engine" / "media")
            for i in range(args.runs):
                folder = fresh_dir(work / "ytdlp")
                cli = [str(VENV_BIN / "yt-dlp"), "--ignore-config", "-q", "--no-progress", "-P", str(folder)]
                ytdlp.append(run_command([*cli, "--merge-output-format", "mp4", "-o", "out.%(ext)s", url]))
                sizes["yt-dlp"] = (folder / "out.mp4").stat().st_size
                clear_dir(folder)
                elapsed, stored = await engine_job(engine, tracker, url, f"run{i}")
                engine_times.append(elapsed)
                sizes["engine"] = stored.stat().st_size
                clear_dir(work / "engine" / "media")
                print(f"run {i + 1}: yt-dlp {ytdlp[-1]:.2f} s, engine {engine_times[-1]:.2f} s", flush=True)
    report.ratio("engine / yt-dlp CLI (merge to mp4)", engine_times, ytdlp, 0.6, "yt-dlp")
    report.notes.append(
        f"output sizes: engine {sizes['engine'] / 1e6:.1f} MB, yt-dlp {sizes['yt-dlp'] / 1e6:.1f} MB"
    )
    report.emit(args.json)


if __name__ == "__main__":
    asyncio.run(main())
