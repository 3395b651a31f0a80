"""import-time: what a new process pays before its first job (issue 14 point 16).

Each figure is the median of ``--runs`` fresh processes (``sys.executable``), with bytecode caches written
as an installed package has them (``PYTHONDONTWRITEBYTECODE`` is unset for the children):
- ``import tornado_engine`` in CPU seconds (target < 0.3 s), beside ``import yt_dlp`` and ``import
  pydantic`` alone, and the eager import it replaced (``import tornado_engine`` plus ``import yt_dlp``);
- the first ``create_job`` of a process (the playlist probe of a small file on a local server), on an
  engine open for ``--idle`` seconds, as in a service that starts and then gets its first request
  (target < 0.1 s; wall time); the same right after ``Engine.open`` returns (it then waits for the
  background preload); and the preload's own CPU cost, alone (what the first ``create_job`` paid before).
Not a test: ``.venv/bin/python benchmarks/import_time.py [--runs N] [--idle S]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# CPU seconds (process_time): on a shared machine wall time mostly measures the neighbours
_IMPORT = "import time; t = time.process_time(); {stmt}; print(time.process_time() - t)"
_PRELOAD = _IMPORT.format(stmt="from tornado_engine.runtime import _warm_up; _warm_up()")


def _child(code: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.setdefault("NO_GCE_CHECK", "true")
    out = subprocess.run([sys.executable, *code], env=env, check=True, capture_output=True, text=True)
    return float(out.stdout.split()[-1])


def _median(code: list[str], runs: int) -> float:
    _child(code)  # writes the bytecode caches; not counted
    return statistics.median(_child(code) for _ in range(runs))


async def _first_create_job(idle: float) -> float:
    """In this (fresh) process: open an engine, wait ``idle`` s, time its first ``create_job``."""
    from tornado_engine import Engine, JobRequest
    from tornado_engine.testing import MediaServer

    with tempfile.TemporaryDirectory() as tmp, MediaServer(tmp) as server:
        (Path(tmp) / "clip.mp4").write_bytes(b"\0" * 4096)
        async with Engine.open(
            data_dir=Path(tmp) / "data", run_jobs=False, allow_networks=["127.0.0.0/8"]
        ) as engine:
            await asyncio.sleep(idle)
            started = time.perf_counter()
            await engine.create_job(JobRequest(url=server.url("clip.mp4")))
            return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per figure (median)")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds the engine is open before the job")
    parser.add_argument("--child-create-job", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_create_job is not None:
        print(asyncio.run(_first_create_job(args.child_create_job)))
        return
    figures = {
        "import tornado_engine": _median(["-c", _IMPORT.format(stmt="import tornado_engine")], args.runs),
        "import yt_dlp": _median(["-c", _IMPORT.format(stmt="import yt_dlp")], args.runs),
        "import pydantic": _median(["-c", _IMPORT.format(stmt="import pydantic")], args.runs),
        "eager (tornado_engine + yt_dlp)": _median(
            ["-c", _IMPORT.format(stmt="import tornado_engine, yt_dlp")], args.runs
        ),
        "preload alone (yt-dlp + extractor list)": _median(["-c", _PRELOAD], args.runs),
        f"first create_job, engine open {args.idle:g} s": _median(
            [__file__, "--child-create-job", str(args.idle)], args.runs
        ),
        "first create_job, right after open": _median([__file__, "--child-create-job", "0"], args.runs),
    }
    width = max(map(len, figures))
    for name, seconds in figures.items():
        print(f"{name:<{width}}  {seconds * 1000:8.1f} ms")
    eager = figures["eager (tornado_engine + yt_dlp)"]
    print(f"import tornado_engine / eager import: {figures['import tornado_engine'] / eager:.2f}x")
    print(json.dumps({k: round(v, 4) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
