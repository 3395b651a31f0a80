"""``jobs list`` on a terminal: a table for people (scripts reading a pipe get JSON, as before)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .models import Job

__all__ = ["print_job_table"]

# fixed widths: a whole id (to paste into ``jobs get``), the longest status and step, a minute
_WIDTHS = {"ID": 36, "STATUS": 10, "STEP": 11, "CREATED": 16}
_WIDE = 100  # below this many columns CREATED is left out, so the URL keeps some room
_MIN_URL = 12


def print_job_table(jobs: Sequence[Job], console: Console | None = None) -> None:
    """One row per job: id, status, step, the URL shortened to the room left, and when it was created."""
    console = console or Console()
    names = ["ID", "STATUS", "STEP", "URL"] + (["CREATED"] if console.width >= _WIDE else [])
    fixed = sum(_WIDTHS.get(name, 0) for name in names) + 2 * (len(names) - 1)
    room = max(_MIN_URL, console.width - fixed)
    table = Table(box=None, pad_edge=False, header_style="bold", caption=None if jobs else "no jobs")
    for name in names:
        table.add_column(name, no_wrap=True, min_width=_WIDTHS.get(name, _MIN_URL))
    for job in jobs:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.created_at / 1000))
        url = _shorten(job.to_api()["url"], room)  # to_api: without credentials
        cells = (job.id, job.status.value, job.step.value, url, created)[: len(names)]
        table.add_row(*(Text(cell) for cell in cells))  # Text: a "[" in a URL is not markup
    console.print(table)


def _shorten(url: str, width: int) -> str:
    """Without the scheme, and the middle cut out of a long one: the host and the file name stay."""
    text = url.split("://", 1)[-1]
    if len(text) <= width:
        return text
    keep = (width - 1) // 2
    return f"{text[:keep]}…{text[len(text) - (width - 1 - keep) :]}"
