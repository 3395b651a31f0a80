"""Stop the ffmpeg a yt-dlp download started for one job, so a cancel lands now (Linux ``/proc``).

yt-dlp records a live stream with an ffmpeg child and calls its progress hook once, at the end: a cancel
flag is never looked at while it records. The child is found by its command line (it writes into the job's
own folder) and gets SIGINT, which ffmpeg answers by finishing the file and exiting (recipe: media.md
section 4); one that is still there after ``grace`` seconds is killed. Elsewhere than Linux this finds
nothing and the recording ends at its duration cap.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["interrupt_children", "stop_on_cancel"]

_PROC = Path("/proc")


def _children_writing_to(folder: str) -> list[int]:
    """This process's direct children whose command line names ``folder``."""
    me, found = str(os.getpid()), []
    for entry in _PROC.glob("[0-9]*"):
        with contextlib.suppress(OSError, IndexError):
            # the parent pid is the 2nd field after the command name, which may hold spaces: split at ")"
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[1] != me:
                continue
            if folder in (entry / "cmdline").read_bytes().decode("utf-8", "replace"):
                found.append(int(entry.name))
    return found


def interrupt_children(folder: Path, grace: float = 1.5) -> list[int]:
    """SIGINT the children working in ``folder``; SIGKILL those still running after ``grace`` seconds."""
    pids = _children_writing_to(str(folder))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + grace
    while (alive := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


def _alive(pid: int) -> bool:
    # yt-dlp reaps its own child; until then a zombie ("Z") counts as gone
    try:
        return (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@contextlib.contextmanager
def stop_on_cancel(cancel: threading.Event, folder: Path) -> Iterator[None]:
    """While the block runs, a set ``cancel`` interrupts the children working in ``folder``."""
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if cancel.wait(0.1):
                while not done.is_set():  # yt-dlp may start its ffmpeg after the cancel: look again
                    interrupt_children(folder)
                    done.wait(0.2)
                return

    watcher = threading.Thread(target=watch, name="tornado-cancel-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
