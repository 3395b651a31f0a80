"""``python -m tornado_engine worker``: run jobs from a (shared) store until SIGTERM or SIGINT.

Scale out by starting workers on one PostgreSQL store (``--store postgresql://...``) and one shared
storage (``--storage s3://...`` or a shared folder). Each worker needs a data dir of its own: its
temporary files live in ``DATA_DIR/tmp/engine-N`` (every engine's own locked slot, see
:mod:`tornado_engine.workspace`), and a worker holds an exclusive lock on ``DATA_DIR/worker.lock`` while
it runs, so a second worker there is refused with the holder's pid, host and start time. The temporary
files a worker that died there (kill -9, power loss) left behind go when the next one starts; its jobs
themselves come back through the store once their leases expire.

The first SIGTERM or SIGINT stops claiming and gives running jobs ``--grace`` seconds; the rest go back
to Pending for another worker. A second signal ends the process at once (leases then expire).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .cli_admin import STORE_HELP
from .cli_hosts import add_host_options, host_options
from .cli_logs import add_logging_options, configure_logging
from .cli_ops import add_worker_ops_options, serve_metrics
from .cli_queue import store_url
from .datadir import check_data_dir
from .engine import Engine, default_data_dir
from .errors import FFmpegNotFound, SetupError, StoreError
from .sources.settings import SourceSettings
from .workspace import holder_line, holder_of

__all__ = ["add_worker_command", "main", "run_worker"]

_log = logging.getLogger("tornado_engine.worker")
_EXIT_ENVIRONMENT = 5  # as in cli.py: the environment is not ready
_LOCK_NAME = "worker.lock"


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, help=f"this worker's own folder (default {default_data_dir()})"
    )
    parser.add_argument(
        "--store", help=f"job store shared by the workers, e.g. postgresql://host/db; {STORE_HELP}"
    )
    parser.add_argument("--storage", help="storage URL shared by the workers (default file://DATA_DIR/media)")
    parser.add_argument("--concurrency", type=int, default=8, help="jobs at once (default 8)")
    parser.add_argument("--lease-seconds", type=float, default=30.0,
                        help="a dead worker's jobs run elsewhere after this long (default 30)")  # fmt: skip
    parser.add_argument("--grace", type=float, default=30.0,
                        help="seconds running jobs get to finish on SIGTERM (default 30)")  # fmt: skip
    parser.add_argument("--poll-interval", type=float, default=0.5, help="seconds between claims when idle")
    parser.add_argument("--allow-network", action="append", metavar="CIDR", dest="allow_networks",
                        help="also allow sources in this private network (repeatable)")  # fmt: skip
    add_logging_options(parser)
    add_worker_ops_options(parser)
    add_host_options(parser)


def add_worker_command(sub: Any) -> None:
    """Register ``worker`` on the CLI's subparsers."""
    _add_options(sub.add_parser("worker", help="run jobs from the store until SIGTERM/SIGINT"))


class _DataDirBusy(Exception):
    """Another live worker holds this data dir."""


@contextlib.contextmanager
def _exclusive(data_dir: Path) -> Iterator[None]:
    """Hold DATA_DIR/worker.lock; the kernel drops it when the process dies, however it dies."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = holder_of(data_dir / _LOCK_NAME)
            raise _DataDirBusy(f"data dir {data_dir} is in use by another worker ({holder})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{holder_line()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def _engine_options(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    options: dict[str, Any] = {
        "data_dir": data_dir,
        "concurrency": args.concurrency,
        "lease_seconds": args.lease_seconds,
        "poll_interval": args.poll_interval,
    }
    for name in ("storage", "allow_networks", "health_file"):
        if getattr(args, name, None) is not None:
            options[name] = getattr(args, name)
    if (store := store_url(args.store)) is not None:
        options["store"] = store
    if hosts := host_options(args):  # --host-connections, --host-rate
        options["sources"] = SourceSettings.build(**hosts)
    return options


def _say(message: str) -> None:
    _log.info(message)  # in the format --log-format chose, like the job lines


async def run_worker(args: argparse.Namespace) -> int:
    """Run until SIGTERM/SIGINT, then stop within ``--grace`` seconds. Exit code 0, or 5 when the data
    dir is taken or the store is unusable."""
    data_dir = Path(args.data_dir) if args.data_dir is not None else default_data_dir()
    try:
        check_data_dir(data_dir)  # before the lock file: a file there is a clear error, not a traceback
        with _exclusive(data_dir):
            if args.metrics_port is not None:
                serve_metrics(args.metrics_port, args.metrics_host)
            return await _serve(Engine(**_engine_options(args, data_dir)), args.grace)
    except _DataDirBusy as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return _EXIT_ENVIRONMENT


async def _serve(engine: Engine, grace: float) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)

    def on_signal() -> None:
        stop.set()
        for sig in signals:  # a second signal takes the default action: end now
            loop.remove_signal_handler(sig)

    for sig in signals:
        loop.add_signal_handler(sig, on_signal)
    try:
        await engine.start()
        removed, kept = engine._swept
        if removed:
            _say(f"removed {removed} temporary folder(s) left by a stopped worker")
        if kept:
            _say(f"kept {kept} job folder(s) a re-queued job can resume from")
        _say(f"running {engine!r} pid={os.getpid()}; SIGTERM or SIGINT stops it")
        await stop.wait()
        _say(f"stopping: running jobs get up to {grace:g} s")
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await engine.close(grace=grace)
    _say("stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tornado_engine.cli_worker``: the worker alone (``python -m tornado_engine worker``)."""
    parser = argparse.ArgumentParser(
        prog="python -m tornado_engine worker", description=__doc__.split("\n")[0]
    )
    _add_options(parser)
    args = parser.parse_args(argv)
    configure_logging(args, worker=True)
    try:
        return asyncio.run(run_worker(args))
    except (FFmpegNotFound, StoreError, SetupError) as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return _EXIT_ENVIRONMENT


if __name__ == "__main__":
    raise SystemExit(main())
