"""The command line as a user runs it: a subprocess, real media on 127.0.0.1, exit codes and JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tornado_engine.testing import MediaServer, MediaSet

pytestmark = pytest.mark.acceptance


def _cli(*args: str, home: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TORNADO_ENGINE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "tornado_engine", *args],
        capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_run_dash_to_mkv_h264_prints_seed_json(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet, probe: Callable[[Path], dict[str, Any]]
) -> None:
    url = media_server.url(media_set.dash_mpd)
    proc = _cli("run", url, "--format", "mkv", "--video-codec", "h264", "--json", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["status"] == "Completed" and record["step"] == "Finished"
    assert set(record) >= {"id", "url", "status", "s3_url", "step", "created_at", "finished_at", "file_size"}
    path = Path(record["s3_url"].removeprefix("file://"))
    assert path.is_relative_to(tmp_path / "media") and path.suffix == ".mkv"
    streams = {s["codec_type"]: s["codec_name"] for s in probe(path)["streams"]}
    assert streams == {"video": "h264", "audio": "aac"}


def test_run_failure_exit_code_and_error(tmp_path: Path, media_server: MediaServer) -> None:
    proc = _cli("run", media_server.url("status/404/gone.mp4"), "--json", home=tmp_path)
    assert proc.returncode == 1
    record = json.loads(proc.stdout)
    assert record["status"] == "Failed" and record["error_type"] == "error"


def test_run_invalid_request_exit_code_2(tmp_path: Path) -> None:
    proc = _cli("run", "http://127.0.0.1:9/x.mp4", "--folder", "../up", home=tmp_path)
    assert proc.returncode == 2
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == {"error": "--folder must not contain '..'"}
    assert not (tmp_path / "jobs.db").exists()  # refused before any store was touched


def test_run_without_ffmpeg_exit_code_5(tmp_path: Path) -> None:
    env_path = tmp_path / "empty-bin"
    env_path.mkdir()
    env = {**os.environ, "TORNADO_ENGINE_HOME": str(tmp_path), "PATH": str(env_path)}
    env.pop("TORNADO_FFMPEG_DIR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "tornado_engine", "run", "http://127.0.0.1:9/x.mp4"],
        capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 5, proc.stderr
    assert "apt-get install" in proc.stderr


def test_demo_completes_every_job(tmp_path: Path) -> None:
    proc = _cli("demo", "--data-dir", str(tmp_path / "demo"), "--json", home=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    assert len(records) == 4
    assert all(r["status"] == "Completed" for r in records)
    for record in records:
        assert Path(record["s3_url"].removeprefix("file://")).is_file()


def test_admin_commands_manage_jobs_and_batches(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet
) -> None:
    done = json.loads(
        _cli("run", media_server.url(media_set.progressive_mp4), "--json", home=tmp_path).stdout
    )
    failed = json.loads(_cli("run", media_server.url("status/404/x.mp4"), "--json", home=tmp_path).stdout)

    listed = json.loads(_cli("jobs", "list", "--json", home=tmp_path).stdout)
    assert [j["id"] for j in listed] == [failed["id"], done["id"]]
    assert (
        json.loads(_cli("jobs", "list", "--status", "Failed", "--json", home=tmp_path).stdout)[0]["id"]
        == (failed["id"])
    )
    assert json.loads(_cli("jobs", "get", done["id"], "--json", home=tmp_path).stdout) == done

    retried = json.loads(_cli("jobs", "retry", failed["id"], "--json", home=tmp_path).stdout)
    cancelled = json.loads(_cli("jobs", "cancel", retried["job_id"], "--json", home=tmp_path).stdout)
    assert cancelled["status"] == "Cancelled"  # no worker ran it: cancelled while Pending
    refused = _cli("jobs", "cancel", done["id"], "--json", home=tmp_path)
    assert refused.returncode == 2 and "already finished" in refused.stderr
    assert _cli("jobs", "get", "no-such-id", home=tmp_path).returncode == 2

    usage = json.loads(_cli("usage", "--json", home=tmp_path).stdout)
    assert usage["jobs_by_status"] == {"Completed": 1, "Failed": 1, "Cancelled": 1}
    assert usage["storage_usage_bytes"] == done["file_size"]
    deleted = json.loads(_cli("jobs", "delete-file", done["id"], "--json", home=tmp_path).stdout)
    assert "file_deleted_at" in deleted and "s3_url" not in deleted
    assert json.loads(_cli("usage", "--json", home=tmp_path).stdout)["storage_usage_bytes"] == 0


def test_batch_commands_rename_and_start_a_paused_batch(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet
) -> None:
    import asyncio

    from tornado_engine import BatchCreated, Engine

    async def create() -> BatchCreated:
        async with Engine.open(data_dir=tmp_path, run_jobs=False) as engine:
            return await engine.create_playlist({"url": media_server.url(media_set.feed_xml), "paused": True})

    batch = asyncio.run(create())
    first = batch.episode_jobs[0]
    status = json.loads(_cli("batch", "get", batch.batch_id, "--json", home=tmp_path).stdout)
    assert status["paused"] is True and status["total_episodes"] == 3
    renamed = json.loads(
        _cli("batch", "rename", batch.batch_id, f"{first}=opening", "--json", home=tmp_path).stdout
    )
    assert renamed == {"updated": 1, "errors": []}
    started = json.loads(_cli("batch", "start", batch.batch_id, "--json", home=tmp_path).stdout)
    assert started["paused"] is False and started["status"] == "processing"
    proc = _cli("batch", "rename", batch.batch_id, f"{first}=late", "--json", home=tmp_path)
    assert proc.returncode == 2 and "paused" in proc.stderr
