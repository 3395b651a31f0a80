"""``--host-connections N`` and ``--host-rate R`` on ``run`` and ``worker``: how hard this process's jobs
together may use one source host (``SourceSettings.build(host_connections=, host_rate=)``)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_host_options", "host_options"]


def add_host_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("source hosts")
    group.add_argument("--host-connections", type=int, metavar="N",
                       help="open connections per source host (registrable domain) at most, every job of "
                            "every worker on the store together (default: no limit)")  # fmt: skip
    group.add_argument("--host-rate", type=float, metavar="R",
                       help="requests per second per source host, every job of every worker on the store "
                            "together (default: no limit)")  # fmt: skip


def host_options(args: argparse.Namespace) -> dict[str, Any]:
    """``SourceSettings.build`` keywords of the options given ({} for none)."""
    names = ("host_connections", "host_rate")
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
