"""A worker's operations options (``--metrics-port``, ``--health-file``) and the ``health`` command.

``worker --metrics-port N`` serves the engine's metrics in Prometheus text format on 127.0.0.1:N
(:mod:`tornado_engine.prometheus`; the ``[prometheus]`` extra: prometheus-client). ``worker
--health-file PATH`` has the lease loop touch PATH at every tick (about once a second); ``python -m
tornado_engine health --health-file PATH --max-age S`` exits 1 when PATH is older than S seconds or
missing: the loop is stuck (a hung store call, a blocked event loop) or the worker gone.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from .errors import SetupError

__all__ = ["add_health_command", "add_worker_ops_options", "run_health", "serve_metrics"]

_EXTRA = "pip install 'tornado-engine[prometheus]'"


def add_worker_ops_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics-port", type=int, metavar="N",
                        help=f"serve Prometheus metrics on 127.0.0.1:N (needs {_EXTRA})")  # fmt: skip
    parser.add_argument("--metrics-host", default="127.0.0.1",
                        help="address the metrics port listens on (default 127.0.0.1)")  # fmt: skip
    parser.add_argument("--health-file", type=Path, metavar="PATH",
                        help="touched every lease-loop tick, for a liveness probe (`health`)")  # fmt: skip


def add_health_command(sub: Any) -> None:
    """Register ``health`` on the CLI's subparsers."""
    health = sub.add_parser("health", help="exit 1 when a worker's --health-file is stale (liveness probe)")
    health.add_argument("--health-file", type=Path, required=True, metavar="PATH")
    health.add_argument("--max-age", type=float, default=30.0, metavar="S",
                        help="seconds since the last touch still counted healthy (default 30)")  # fmt: skip


def run_health(args: argparse.Namespace) -> int:
    """0 when the file was touched within ``--max-age`` seconds, else 1; says which as JSON on stdout."""
    try:
        age = time.time() - args.health_file.stat().st_mtime
    except OSError as exc:
        print(json.dumps({"healthy": False, "error": f"{args.health_file}: {exc.strerror}"}))
        return 1
    healthy = age <= args.max_age
    print(json.dumps({"healthy": healthy, "age_s": round(age, 3), "max_age_s": args.max_age}))
    return 0 if healthy else 1


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Serve the engine's metrics in Prometheus' format on ``host:port`` (read from the process's own
    aggregates at each scrape: no OpenTelemetry SDK is installed, a host may set its own)."""
    try:
        from .prometheus import serve
    except ImportError:
        raise SetupError(f"--metrics-port needs the Prometheus extra: {_EXTRA}") from None
    try:
        serve(port, host)
    except OSError as exc:
        raise SetupError(f"--metrics-port {port}: cannot listen on {host}: {exc.strerror}") from None
