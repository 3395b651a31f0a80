"""The command line's manners, as a user meets them: a subprocess, its words, its output on a terminal
and in a pipe (issue 14 points 9 and 13)."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tornado_engine import Engine, JobCreated
from tornado_engine.testing import MediaServer, MediaSet

pytestmark = pytest.mark.acceptance


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "TORNADO_ENGINE_HOME": str(home), "COLUMNS": "160"}


def _cli(*args: str, home: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tornado_engine", *args],
        capture_output=True, text=True, timeout=timeout, env=_env(home), stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _error(proc: subprocess.CompletedProcess[str]) -> str:
    error: str = json.loads(proc.stderr.strip().splitlines()[-1])["error"]
    return error


def test_version_and_the_name_it_was_run_by(tmp_path: Path) -> None:
    proc = _cli("--version", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"python -m tornado_engine {version('tornado-engine')}"
    # the console script: what ``tornado-engine`` runs, with its own name in argv[0]
    script = "import sys; sys.argv[0] = '/usr/local/bin/tornado-engine'; from tornado_engine.cli import main"
    proc = subprocess.run(
        [sys.executable, "-c", f"{script}; raise SystemExit(main())", "jobs", "list", "--help"],
        capture_output=True, text=True, timeout=60, env=_env(tmp_path), stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: tornado-engine jobs list")
    assert "{Pending,Processing,Completed,Failed,Warning,Skipped,Cancelled}" in proc.stdout


def test_errors_name_flags_720p_is_taken_and_v_goes_anywhere(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet
) -> None:
    refused = _cli("run", "http://127.0.0.1:9/x.mp4", "--audio-format", "mp3", home=tmp_path)
    assert refused.returncode == 2 and _error(refused) == "--audio-format needs --audio-only"
    url = media_server.url(media_set.progressive_mp4)
    proc = _cli("run", url, "--max-resolution", "720p", "--json", "-v", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["requested_quality"] == "720p"
    assert " INFO tornado_engine" in proc.stderr  # -v after the command still turns the log up


def _jobs(home: Path, url: str) -> list[str]:
    """Two queued jobs in ``home``'s store (no engine runs them), the second cancelled."""

    async def create() -> list[str]:
        async with Engine.open(data_dir=home, run_jobs=False) as engine:
            ids = []
            for _ in range(2):
                created = await engine.create_job({"url": url})
                assert isinstance(created, JobCreated)
                ids.append(created.job_id)
            await engine.cancel_job(ids[1])
            return ids

    return asyncio.run(create())


def _on_a_terminal(*args: str, home: Path) -> str:
    """What ``args`` prints on a terminal (a pseudo-terminal as its stdout)."""
    main, child = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "tornado_engine", *args],
        stdout=child, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=_env(home),
    ) as proc:  # fmt: skip
        os.close(child)
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the child's side closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    os.close(main)
    return b"".join(chunks).decode()


def test_jobs_list_table_on_a_terminal_json_in_a_pipe_and_a_closed_pipe(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet
) -> None:
    queued, cancelled = _jobs(tmp_path, media_server.url(media_set.progressive_mp4))
    table = _on_a_terminal("jobs", "list", home=tmp_path)
    assert "ID" in table and "STATUS" in table and "CREATED" in table
    assert queued in table and cancelled in table and "Cancelled" in table
    assert not table.lstrip().startswith("[")

    piped = _cli("jobs", "list", "--status", "cancelled", home=tmp_path)  # any case
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.startswith("[\n") and [j["id"] for j in json.loads(piped.stdout)] == [cancelled]

    # ``jobs list | head -1``: the reader has gone when the list is written
    with subprocess.Popen(
        [sys.executable, "-m", "tornado_engine", "jobs", "list"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=_env(tmp_path),
    ) as proc:  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        stderr = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 1
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
