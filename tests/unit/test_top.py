"""``top``: the snapshot built from store rows (pure) and its terminal rendering (a rich Console capture)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from rich.console import Console

from tornado_engine.cli_top import watch
from tornado_engine.models import Job, JobRequest
from tornado_engine.progress import LiveProgress
from tornado_engine.states import Status, Step
from tornado_engine.store.base import TopRows, WorkerRow
from tornado_engine.top import build_snapshot
from tornado_engine.top_render import render

NOW = 1_800_000_000_000


def _job(job_id: str, status: Status, step: Step, **fields: Any) -> Job:
    url = "https://user:secret@media.example/v.mp4?X-Amz-Signature=abc"
    return Job(id=job_id, url=url, request=JobRequest(url=url), status=status, step=step, **fields)


def _rows() -> TopRows:
    downloading = _job("job-dl", Status.PROCESSING, Step.DOWNLOADING, started_at=NOW - 20_000, title="Talk")
    downloading.live = LiveProgress(Step.DOWNLOADING, 20.0, 60.0, 6_000_000, 10_000_000, 2_000_000.0, 2.0,
                                    NOW - 1_500)  # fmt: skip
    muxing = _job("job-mux", Status.PROCESSING, Step.MUXING, started_at=NOW - 40_000, progress=50.0)
    failed = _job("job-bad", Status.FAILED, Step.DOWNLOADING, finished_at=NOW - 5_000, error="HTTP 503",
                  error_type="error")  # fmt: skip
    return TopRows(
        counts={"Pending": 4, "Processing": 2, "Completed": 7, "Failed": 1},
        running=[(downloading, "host:1:aaaa"), (muxing, "host:2:bbbb")],
        workers=[
            WorkerRow("host:1:aaaa", 1, NOW + 29_000, NOW - 1_000),
            WorkerRow("host:2:bbbb", 1, NOW - 3_000, NOW - 33_000),  # its lease ran out: gone
        ],
        finished={"Completed": (3, 3_000_000), "Failed": (1, 0), "Cancelled": (2, 0)},
        errors=[failed],
    )


def test_the_snapshot_from_store_rows() -> None:
    snap = build_snapshot(_rows(), NOW)
    assert snap.queue == {"Pending": 4, "Processing": 2, "Completed": 7, "Failed": 1, "Warning": 0,
                          "Skipped": 0, "Cancelled": 0}  # fmt: skip
    dl, mux = snap.running
    assert (dl.id, dl.worker, dl.step, dl.percent, dl.stage_percent) == (
        "job-dl",
        "host:1:aaaa",
        "Downloading",
        20,
        60,
    )
    assert (dl.bytes_done, dl.bytes_total, dl.speed_bps, dl.eta_seconds) == (6_000_000, 10_000_000, 2e6, 2.0)
    assert (dl.running_seconds, dl.progress_age_seconds, dl.title) == (20.0, 1.5, "Talk")
    assert mux.eta_seconds == 40.0  # no stored progress: from its pace (50 % in 40 s)
    assert mux.speed_bps is None and "secret" not in mux.title and "abc" not in mux.title
    alive, gone = snap.workers
    assert (alive.alive, alive.job_ids, alive.heartbeat_age_seconds, alive.lease_left_seconds) == (
        True, ["job-dl"], 1.0, 29.0)  # fmt: skip
    assert (gone.alive, gone.job_ids, gone.heartbeat_age_seconds) == (False, ["job-mux"], 33.0)
    assert snap.last_minute == {
        "finished": 6,
        "completed": 3,
        "failed": 1,
        "cancelled": 2,
        "bytes": 3_000_000,
    }
    [error] = snap.errors
    assert (error.id, error.status, error.error_type, error.error) == (
        "job-bad",
        "Failed",
        "error",
        "HTTP 503",
    )
    assert json.loads(json.dumps(snap.to_dict()))["running"][0]["id"] == "job-dl"


def test_the_view_renders_every_part() -> None:
    console = Console(record=True, width=160, color_system=None)
    console.print(render(build_snapshot(_rows(), NOW), "SQLiteStore('/srv/jobs.db')"))
    text = console.export_text()
    for shown in ("SQLiteStore('/srv/jobs.db')", "Pending", "Running (2)", "job-dl", "Talk", "Downloading",
                  "6.0 MB/10.0 MB", "2.0 MB/s", "0:02", "host:1:aaaa", "alive", "lease expired",
                  "1.0s ago", "last minute: 6 finished, 3 completed, 1 failed, 2 cancelled, 3.0 MB stored",
                  "Recent errors", "HTTP 503"):  # fmt: skip
        assert shown in text, shown
    assert "secret" not in text


class _Store:
    """Store rows that change between looks, as a busy store's do."""

    def __init__(self) -> None:
        self.looks = 0

    def __repr__(self) -> str:
        return "FakeStore()"

    async def top_rows(self, since_ms: int, limit: int) -> TopRows:
        self.looks += 1
        rows = _rows()
        rows.counts["Completed"] = 100 + self.looks
        return rows


def test_the_live_view_redraws_with_each_look() -> None:
    console = Console(record=True, width=160, color_system=None, force_terminal=True)
    store = _Store()
    asyncio.run(watch(store, console, interval=0.01, limit=10, count=3))  # type: ignore[arg-type]
    text = console.export_text()
    assert store.looks == 3
    assert "Completed 101" in text and "Completed 103" in text  # each refresh drawn
