"""Threads making their first YoutubeDL at once get yt-dlp's whole extractor table (found by the soak: a
worker whose first jobs started together kept a partial table without GenericIE for the life of the
process and failed every job with "No suitable extractor found")."""

from __future__ import annotations

import subprocess
import sys

_RACE = """
import sys, threading
sys.setswitchinterval(1e-6)  # a loaded machine: threads switch between every few bytecodes
from yt_dlp.globals import extractors
from tornado_engine.ytdlp_registry import extractor_registry, new_ydl
go = threading.Barrier(4)
def first():
    go.wait()
    new_ydl({"quiet": True})
threads = [threading.Thread(target=first) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
registry = extractor_registry({"quiet": True})
print(len(extractors.value), "GenericIE" in extractors.value, "Generic" in registry)
"""


def test_first_youtubedls_made_at_once_see_the_whole_extractor_table() -> None:
    # before the fix, 3 of 12 such processes ended with 220-683 of ~1,750 extractors and no Generic
    runs = [subprocess.run([sys.executable, "-c", _RACE], capture_output=True, text=True) for _ in range(6)]
    assert all(run.returncode == 0 for run in runs), [run.stderr[-500:] for run in runs]
    outcomes = {run.stdout.split()[1:] == ["True", "True"] for run in runs}
    assert outcomes == {True}, [run.stdout for run in runs]
