"""yt-dlp is loaded on first use, not by ``import tornado_engine`` (issue 14 point 16), and threads that
load it at once each get a complete yt-dlp (its modules import each other in cycles: without the loader's
lock a second thread saw "cannot import name 'Popen' from partially initialized module")."""

from __future__ import annotations

import subprocess
import sys

_IMPORT = """
import sys
import tornado_engine
from tornado_engine import Engine, JobRequest
JobRequest(url="https://example.com/v.mp4")
print(sorted(m for m in sys.modules if m == "yt_dlp" or m.startswith("yt_dlp.")))
"""

_RACE = """
import sys, threading
sys.setswitchinterval(1e-6)  # a loaded machine: threads switch between every few bytecodes
from tornado_engine.ytdlp_loader import load_ytdlp
from tornado_engine.ytdlp import public_url
smuggled = "http://media.test/a.mp4#__youtubedl_smuggle=%7B%22k%22%3A+1%7D"
go = threading.Barrier(4)
seen = []
def preload():  # what Engine.open starts in a stage thread
    go.wait()
    load_ytdlp()
def first_job():  # a submit meanwhile (a feed entry's URL)
    go.wait()
    seen.append(public_url(smuggled))
threads = [threading.Thread(target=f) for f in (preload, first_job, preload, first_job)]
[t.start() for t in threads]
[t.join() for t in threads]
print(seen == ["http://media.test/a.mp4"] * 2)
"""


def test_importing_the_package_does_not_load_ytdlp() -> None:
    run = subprocess.run([sys.executable, "-c", _IMPORT], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-800:]
    assert run.stdout.strip() == "[]"


def test_threads_loading_ytdlp_at_once_each_get_all_of_it() -> None:
    runs = [subprocess.run([sys.executable, "-c", _RACE], capture_output=True, text=True) for _ in range(3)]
    assert all(run.returncode == 0 for run in runs), [run.stderr[-800:] for run in runs]
    assert [run.stdout.strip() for run in runs] == ["True"] * 3
