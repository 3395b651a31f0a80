"""``jobs list`` on a terminal: a table for people (scripts reading a pipe get JSON, as before)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .models import Job

__all__ = ["print_job_table"]

_URL_WIDTH = 48


def print_job_table(jobs: Sequence[Job], console: Console | None = None) -> None:
    """One row per job: id (whole, to paste into ``jobs get``), status, step, a shortened URL, created."""
    table = Table(box=None, header_style="bold", caption=None if jobs else "no jobs")
    table.add_column("ID", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("STEP", no_wrap=True)
    table.add_column("URL", no_wrap=True, overflow="ellipsis")
    table.add_column("CREATED", no_wrap=True)
    for job in jobs:
        url = job.to_api()["url"]  # without credentials
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.created_at / 1000))
        cells = (job.id, job.status.value, job.step.value, _shorten(url), created)
        table.add_row(*(Text(cell) for cell in cells))  # Text: a "[" in a URL is not markup
    (console or Console()).print(table)


def _shorten(url: str) -> str:
    """Without the scheme, and the middle cut out of a long one: the host and the file name stay."""
    text = url.split("://", 1)[-1]
    if len(text) <= _URL_WIDTH:
        return text
    keep = (_URL_WIDTH - 1) // 2
    return f"{text[:keep]}…{text[-keep:]}"
