"""The optional ffmpeg wheel's binaries (``pip install 'tornado-engine[ffmpeg]'``), reached through
wrappers that set their environment: for ffmpeg's own processes, never for the host process.

Its static ffmpeg 6.0 segfaults reading MPEG-TS unless glibc's iconv modules are hidden (``GCONV_PATH``
naming an empty folder; media recipes, pitfall 2). Setting that in ``os.environ`` would change it for the
whole host application and every child it starts. Instead :func:`wrap` writes, into a private folder, an
``ffmpeg`` and an ``ffprobe`` shell script that set ``GCONV_PATH`` (unless the host already did) and
``exec`` the wheel's binary: the engine runs them, and yt-dlp finds them in the folder it is given as
``ffmpeg_location`` (it runs ffmpeg itself for live recordings and ffprobe/ffmpeg for its version checks,
through its own ``Popen``, which takes no environment from us). ``exec`` keeps the process id, so signals
and the cancel's ``/proc`` look-up reach ffmpeg itself.
"""

from __future__ import annotations

import atexit
import os
import shlex
import shutil
import tempfile
from pathlib import Path

__all__ = ["wrap"]

_SCRIPT = """#!/bin/sh
# tornado_engine: the ffmpeg wheel's {name}, with glibc's iconv modules hidden (it crashes on MPEG-TS)
GCONV_PATH="${{GCONV_PATH:-{empty}}}"
export GCONV_PATH
exec {target} "$@"
"""


def wrap(ffmpeg: str, ffprobe: str) -> tuple[str, str]:
    """(ffmpeg, ffprobe) to run instead of the wheel's: wrappers in a private folder (removed at exit).

    Where there is no ``/bin/sh`` (Windows) the binaries are returned as they are: glibc is not there."""
    if os.name != "posix":
        return ffmpeg, ffprobe
    folder = Path(tempfile.mkdtemp(prefix="tornado-ffmpeg-"))  # mode 0700: nobody else can swap them
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    empty = folder / "no-gconv"
    empty.mkdir()
    wrappers = []
    for name, target in (("ffmpeg", ffmpeg), ("ffprobe", ffprobe)):
        script = folder / name  # these names: yt-dlp looks for them in its ffmpeg_location folder
        script.write_text(
            _SCRIPT.format(name=name, empty=shlex.quote(str(empty)), target=shlex.quote(target)),
            encoding="utf-8",
        )
        script.chmod(0o700)
        wrappers.append(str(script))
    return wrappers[0], wrappers[1]
