"""A ``worker`` process as operations see it: Prometheus metrics on ``--metrics-port``, one JSON log line
per job start and end, and a ``--health-file`` that ``health`` judges (stale once the worker is frozen)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tornado_engine import Engine, JobRequest, Status
from tornado_engine.cli_ops import run_health
from tornado_engine.models import JobCreated
from tornado_engine.testing import MediaServer, MediaSet

pytestmark = pytest.mark.acceptance


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scrape(port: int) -> str:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                return str(response.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of the sample ``name`` whose labels include ``labels`` (the exporter adds otel_scope_*)."""
    (value,) = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    ]
    return float(value)


def _health(path: Path, max_age: float) -> int:
    args = ["health", "--health-file", str(path), "--max-age", str(max_age)]
    return subprocess.run(
        [sys.executable, "-m", "tornado_engine", *args], capture_output=True, timeout=60
    ).returncode


async def test_worker_serves_metrics_logs_jobs_and_keeps_a_health_file(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet
) -> None:
    store, health, port = f"sqlite:///{tmp_path / 'jobs.db'}", tmp_path / "alive", _free_port()
    args = ["worker", "--data-dir", str(tmp_path / "w"), "--store", store, "--poll-interval", "0.1",
            "--storage", (tmp_path / "media").as_uri(), "--metrics-port", str(port),
            "--health-file", str(health), "--log-format", "json"]  # fmt: skip
    log = tmp_path / "worker.log"
    with open(log, "wb") as err:
        worker = subprocess.Popen([sys.executable, "-m", "tornado_engine", *args], stderr=err)
    try:
        _scrape(port)  # up: the store is open before jobs are submitted to it
        async with Engine.open(store=store, data_dir=tmp_path / "s", run_jobs=False, poll_interval=0.1,
                               expand_playlists=False) as eng:  # fmt: skip
            ids = []
            for _ in range(3):
                created = await eng.create_job(JobRequest(url=media_server.url(media_set.progressive_mp4)))
                assert isinstance(created, JobCreated)
                ids.append(created.job_id)
            jobs = [await eng.wait(job_id, timeout=120) for job_id in ids]
        assert [j.status for j in jobs] == [Status.COMPLETED] * 3
        text = _scrape(port)
        assert (
            _sample(text, "tornado_jobs_finished_total", tornado_job_status="Completed", error_type="") == 3
        )
        size = sum(j.file_size or 0 for j in jobs)
        assert _sample(text, "tornado_job_io_bytes_total", network_io_direction="upload") == size
        assert _sample(text, "tornado_stage_duration_seconds_count", tornado_stage="mux", error_type="") == 3
        assert _sample(text, "tornado_job_queue_wait_seconds_count") == 3
        assert _sample(text, "tornado_jobs_active", tornado_job_step="Downloading") == 0
        assert run_health(argparse.Namespace(health_file=health, max_age=5.0)) == 0
        worker.send_signal(signal.SIGSTOP)  # a stuck lease loop: the file goes stale
        time.sleep(2.5)
        assert _health(health, 1.5) == 1
        worker.send_signal(signal.SIGCONT)
    finally:
        worker.send_signal(signal.SIGCONT)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    story = [(line["logger"], line["message"].split()[0], line["job_id"]) for line in lines if line["job_id"]]
    assert sorted(story) == sorted(
        ("tornado_engine.job", word, job_id) for job_id in ids for word in ("claimed", "finished")
    )
    assert any(line["logger"] == "tornado_engine.worker" and "stopped" in line["message"] for line in lines)
    assert os.path.exists(health)
