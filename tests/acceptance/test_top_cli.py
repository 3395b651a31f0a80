"""``python -m tornado_engine top --once --json`` as a user runs it, beside a ``worker`` process that
downloads from a throttled source: the snapshot shows the running jobs' progress and their worker, then
the last minute's throughput; and top never creates a store."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tornado_engine import Engine
from tornado_engine.models import JobCreated
from tornado_engine.testing import MediaServer, MediaSet

pytestmark = pytest.mark.acceptance


def _top(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tornado_engine", "top", "--data-dir", str(home), *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _snapshot(home: Path) -> dict[str, Any]:
    proc = _top(home, "--once", "--json")
    assert proc.returncode == 0, proc.stderr
    snap: dict[str, Any] = json.loads(proc.stdout)
    return snap


async def _submit(home: Path, urls: list[str]) -> list[str]:
    async with Engine.open(data_dir=home, run_jobs=False, expand_playlists=False) as engine:
        created = [await engine.create_job({"url": url}) for url in urls]
    return [c.job_id for c in created if isinstance(c, JobCreated)]


def _until(home: Path, done: Any, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = _snapshot(home)
        if done(snap):
            return snap
        time.sleep(0.2)
    raise AssertionError(f"not seen within {timeout} s; last snapshot: {snap}")


def test_top_once_json_while_a_worker_runs_throttled_jobs(tmp_path: Path, media_set: MediaSet) -> None:
    home = tmp_path / "home"
    missing = _top(home, "--once", "--json")  # before anything made the store: top makes none
    assert missing.returncode == 5
    assert "does not create one" in json.loads(missing.stderr.strip().splitlines()[-1])["error"]
    assert not home.exists()
    with MediaServer(media_set.root, slow_bytes_per_sec=100_000) as server:  # ~4 s a download
        url = server.url(f"slow/{media_set.progressive_mp4}")
        job_ids = asyncio.run(_submit(home, [f"{url}?n={n}" for n in range(2)]))
        worker = subprocess.Popen(
            [sys.executable, "-m", "tornado_engine", "worker", "--data-dir", str(home), "--concurrency", "2"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ},
        )  # fmt: skip
        try:
            running = _until(home, lambda s: any((j["bytes_done"] or 0) > 0 for j in s["running"]))
            ended = _until(home, lambda s: s["queue"]["Completed"] == 2)
        finally:
            worker.send_signal(signal.SIGTERM)
            _, errors = worker.communicate(timeout=60)
    assert worker.returncode == 0, errors
    busy = next(j for j in running["running"] if (j["bytes_done"] or 0) > 0)
    assert busy["id"] in job_ids and busy["step"] == "Downloading" and busy["speed_bps"] > 0
    assert 0 < busy["percent"] < 33.0 and busy["eta_seconds"] is not None
    [worker_info] = running["workers"]
    assert worker_info["alive"] and busy["worker"] == worker_info["id"]
    assert busy["id"] in worker_info["job_ids"]
    assert worker_info["heartbeat_age_seconds"] < 5
    assert ended["last_minute"]["completed"] == 2 and ended["last_minute"]["bytes"] > 0
    assert ended["running"] == [] and ended["errors"] == []
