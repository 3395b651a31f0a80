"""An engine that will call yt-dlp loads it, and builds its extractor list, in a stage thread as it opens;
one that only reads jobs never loads it (issue 14 point 16). Each case in a fresh process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_SCRIPT = """
import asyncio, sys
from tornado_engine import Engine

def built():
    registry = sys.modules.get("tornado_engine.ytdlp_registry")
    return bool(getattr(registry, "_registries", None))  # None while it is being imported

async def main(data_dir, wait, **options):
    async with Engine.open(data_dir=data_dir, **options):
        for _ in range(int(wait * 10)):  # a loaded machine may take seconds
            await asyncio.sleep(0.1)
            if built():
                break
        print("yt_dlp" in sys.modules, built())

asyncio.run(main(sys.argv[1], float(sys.argv[2]), **eval(sys.argv[3])))
"""


def _opened(tmp_path: Path, wait: float, options: str) -> list[str]:
    args = [sys.executable, "-c", _SCRIPT, str(tmp_path), str(wait), options]
    run = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-1500:]
    return run.stdout.split()


def test_an_engine_that_probes_or_runs_jobs_preloads_ytdlp(tmp_path: Path) -> None:
    assert _opened(tmp_path, 60, "{'run_jobs': False}") == ["True", "True"]  # it probes submitted URLs


def test_a_read_only_engine_never_loads_ytdlp(tmp_path: Path) -> None:
    assert _opened(tmp_path, 0.5, "{'run_jobs': False, 'expand_playlists': False}") == ["False", "False"]
