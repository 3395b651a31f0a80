"""``python tests/acceptance/noop_worker.py [--stage-seconds S] WORKER OPTIONS...``: the shipped worker
command (``python -m tornado_engine worker``: its options, data-dir lock, leftover cleanup, logging, signal
handling and exit codes) with only the job's stages replaced by no-ops (``tornado_engine.testing.noop``).

Claims, leases, heartbeats, fenced saves, the terminal write and its webhook events are the real ones;
nothing is downloaded, converted or stored. ``--stage-seconds`` is how long each stage waits.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tornado_engine import cli_worker
from tornado_engine.engine import Engine
from tornado_engine.ffmpeg import FFmpegPaths
from tornado_engine.testing.noop import NoopStages


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--stage-seconds", type=float, default=0.0)
    own, rest = parser.parse_known_args(argv)
    stages = NoopStages(stage_seconds=own.stage_seconds)

    class NoopEngine(Engine):
        def __init__(self, **options: Any) -> None:
            options.update(stages=stages, ffmpeg=FFmpegPaths("ffmpeg", "ffprobe"), expand_playlists=False)
            super().__init__(**options)

    cli_worker.Engine = NoopEngine  # type: ignore[misc]  # the worker as shipped, no-op stages inside
    return cli_worker.main(rest)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
