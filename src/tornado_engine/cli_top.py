"""``python -m tornado_engine top``: a live view of a job store (SQLite or PostgreSQL) across all its
workers; ``top --once --json`` prints one snapshot. Read-only: it opens an existing store, never makes
one, and writes nothing."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from .cli_admin import STORE_HELP
from .datadir import check_data_dir
from .engine import default_data_dir
from .models import now_ms
from .store import JobStore, open_store
from .top import WINDOW_MS, TopSnapshot, build_snapshot
from .top_render import render

__all__ = ["add_top_command", "run_top", "snapshot", "watch"]


def _positive(kind: type[float] | type[int]) -> Any:
    def parse(text: str) -> float | int:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text}")
        return value

    return parse


def add_top_command(sub: Any) -> None:
    top = sub.add_parser("top", help="live view of the queue, running jobs, workers and recent errors")
    top.add_argument("--data-dir", type=Path, help=f"engine data folder (default {default_data_dir()})")
    top.add_argument("--store", help=f"{STORE_HELP}; must exist (top creates no store)")
    top.add_argument("--once", action="store_true", help="print one snapshot and exit")
    top.add_argument("--json", action="store_true", help="with --once: the snapshot as JSON")
    top.add_argument(
        "--interval", type=_positive(float), default=1.0, help="seconds between refreshes (default 1)"
    )
    top.add_argument(
        "--count", type=_positive(int), help="stop after this many refreshes (default: until Ctrl-C)"
    )
    top.add_argument(
        "--limit", type=_positive(int), default=20, help="running jobs and errors listed (default 20)"
    )


async def snapshot(store: JobStore, limit: int) -> TopSnapshot:
    """One look at the store."""
    now = now_ms()
    return build_snapshot(await store.top_rows(now - WINDOW_MS, limit), now)


async def watch(store: JobStore, console: Any, *, interval: float, limit: int, count: int | None) -> None:
    """Redraw the view every ``interval`` seconds on ``console`` (``count`` times, or until cancelled)."""
    from rich.live import Live

    source = repr(store)
    first = await snapshot(store, limit)
    with Live(render(first, source), console=console, auto_refresh=False, screen=False) as live:
        shown = 1
        while count is None or shown < count:
            await asyncio.sleep(interval)
            live.update(render(await snapshot(store, limit), source), refresh=True)
            shown += 1


async def run_top(args: argparse.Namespace) -> int:
    from rich.console import Console

    data_dir = Path(args.data_dir) if args.data_dir is not None else default_data_dir()
    if args.store is None:
        check_data_dir(data_dir)
    store = open_store(args.store or str(data_dir / "jobs.db"), create=False)
    await store.open()
    try:
        if args.once:
            snap = await snapshot(store, args.limit)
            if args.json:
                print(json.dumps(snap.to_dict()))
            else:
                Console().print(render(snap, repr(store)))
            return 0
        await watch(store, Console(), interval=args.interval, limit=args.limit, count=args.count)
        return 0
    finally:
        await store.close()
