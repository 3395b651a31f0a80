"""A new user's mistakes fail at once, say what to do, exit 5 (environment) or 2 (usage), and never print
a traceback (issue 14, points 3-6). Subprocesses, as a user runs the CLI; no job ever starts here, so the
source URL (a dead local port) is never fetched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.acceptance

_DEAD = "http://127.0.0.1:9/v.mp4"
# the CLI with s3fs blocked for real: importing it raises ImportError, as in a plain `pip install .`
_NO_S3FS = (
    "import sys; sys.modules['s3fs'] = None; from tornado_engine.cli import main; raise SystemExit(main())"
)


def _cli(
    *args: str, home: Path, cwd: Path | None = None, code: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TORNADO_ENGINE_HOME": str(home)}
    head = ["-c", code] if code else ["-m", "tornado_engine"]
    return subprocess.run(
        [sys.executable, *head, *args], capture_output=True, text=True, timeout=60, env=env,
        stdin=subprocess.DEVNULL, cwd=cwd,
    )  # fmt: skip


def _error(proc: subprocess.CompletedProcess[str], rc: int) -> str:
    assert proc.returncode == rc, proc.stderr
    assert "Traceback" not in proc.stderr
    message: str = json.loads(proc.stderr.strip().splitlines()[-1])["error"]
    return message


def test_a_missing_storage_extra_names_it_before_any_job(tmp_path: Path) -> None:
    proc = _cli("run", _DEAD, "--storage", "s3://bucket/x", "--json", home=tmp_path, code=_NO_S3FS)
    assert "pip install 'tornado-engine[s3]'" in _error(proc, 5)
    assert proc.stdout == ""  # no job record: nothing was created, downloaded or muxed


def test_an_unsupported_storage_scheme_is_bad_usage(tmp_path: Path) -> None:
    message = _error(_cli("run", _DEAD, "--storage", "ftp://x/y", home=tmp_path), 2)
    assert "'ftp' is not supported" in message and "s3://" in message


def test_a_storage_folder_that_cannot_be_written_is_refused_at_start(tmp_path: Path) -> None:
    for storage in ("/proc/nope", str(tmp_path / "afile")):
        (tmp_path / "afile").write_text("x")
        message = _error(_cli("run", _DEAD, "--storage", storage, home=tmp_path / "home"), 5)
        assert "local storage folder cannot be written" in message and "--storage" in message


@pytest.mark.parametrize("command", [["run", _DEAD], ["worker"], ["jobs", "list"], ["usage"]])
def test_a_data_dir_that_is_a_file_is_an_environment_error(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "afile").write_text("x")
    message = _error(_cli(*command, "--data-dir", str(tmp_path / "afile"), home=tmp_path), 5)
    assert message == "the data dir is a file, not a folder (check --data-dir / data_dir=)"


def test_read_only_commands_create_no_store(tmp_path: Path) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    relative = "sqlite:///tmp/x/nonexist/dir/jobs.db"  # three slashes: relative to the current folder
    for command in (["jobs", "list"], ["jobs", "get", "some-id"], ["batch", "get", "b"], ["usage"]):
        message = _error(_cli(*command, "--store", relative, home=tmp_path / "home", cwd=cwd), 5)
        assert "does not exist" in message and "sqlite:////abs/path/jobs.db" in message
    assert list(cwd.iterdir()) == []
    assert "does not exist" in _error(_cli("jobs", "list", home=tmp_path / "fresh"), 5)
    assert not (tmp_path / "fresh" / "jobs.db").exists()


def test_store_accepts_a_plain_path_and_the_absolute_url(tmp_path: Path) -> None:
    db = tmp_path / "shared" / "jobs.db"
    submit = "import asyncio, sys; from tornado_engine import Engine\n"
    submit += "async def go():\n    async with Engine.open(store=sys.argv[1], run_jobs=False) as e: pass\n"
    submit += "asyncio.run(go())"
    subprocess.run([sys.executable, "-c", submit, str(db)], check=True, timeout=60)  # makes the store
    for store in (str(db), f"sqlite:///{db}"):  # sqlite:/// + /abs = the four-slash form
        proc = _cli("jobs", "list", "--json", "--store", store, home=tmp_path / "home")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == []
    help_text = _cli("jobs", "list", "--help", home=tmp_path).stdout
    assert "sqlite:////abs/path/jobs.db" in " ".join(help_text.split())


def test_worker_on_an_unusable_postgres_fails_at_once_with_its_reason(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    started = time.monotonic()
    proc = _cli("worker", "--store", "postgresql://nouser:sekrit@127.0.0.1/nodb", "--data-dir",
                str(tmp_path / "w"), home=tmp_path)  # fmt: skip
    elapsed = time.monotonic() - started
    message = _error(proc, 5)
    assert 'role "nouser" does not exist' in message and "sekrit" not in proc.stderr
    assert "pool" not in proc.stderr.lower()  # no pool warnings, no "initialization incomplete"
    assert elapsed < 8, elapsed  # was 10 s of reconnect warnings; measured ~0.5 s
