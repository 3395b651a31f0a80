"""The README's Python examples type-check (``mypy --strict``) and run (issue 14 point 7).

Every block fenced as ```` ```python ```` is a script: it is written to a file with its example URLs and
folders replaced by the local test server's and a temporary folder's (``_LOCAL``), type-checked, then run
in a fresh process. A block that only defines functions is type-checked and its definitions run. Mark a
fragment that cannot be a script with another fence (```` ```py ````), and it is left alone.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tornado_engine.testing import MediaServer, MediaSet

_REPO = Path(__file__).resolve().parents[2]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
# what a misspelt keyword looks like to mypy: the engine's keywords are declared, not **kwargs
_TYPO = "from tornado_engine import Engine\n\nEngine.open(concurency=8)\n"


def _blocks() -> list[str]:
    return _BLOCK.findall((_REPO / "README.md").read_text(encoding="utf-8"))


def _local(block: str, server: MediaServer, media: MediaSet, tmp: Path) -> str:
    """The example with its URLs and folders on this machine."""
    for example, local in {
        "https://example.com/v.mpd": server.url(media.dash_mpd),
        "https://example.com/feed.xml": server.url(media.feed_xml),
        "file:///srv/media": (tmp / "media").as_uri(),
    }.items():
        block = block.replace(example, local)
    return block


def _mypy(files: list[Path]) -> str:
    # the repository's configuration and cache (.ci/run type-checks the package just before the tests)
    config, cache = _REPO / "pyproject.toml", _REPO / ".mypy_cache"
    args = ["--strict", "--config-file", str(config), "--cache-dir", str(cache)]
    run = subprocess.run(
        [sys.executable, "-m", "mypy", *args, *map(str, files)],
        capture_output=True, text=True, cwd=_REPO, timeout=300,
        env={**os.environ, "MYPYPATH": str(_REPO / "src")},
    )  # fmt: skip
    return run.stdout + run.stderr


def test_readme_python_examples_type_check_and_run(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet
) -> None:
    blocks = _blocks()
    assert len(blocks) >= 2 and "create_job" in blocks[0]  # the Python API example comes first
    scripts = []
    for n, block in enumerate(blocks):
        script = tmp_path / f"readme_{n}.py"
        script.write_text(_local(block, media_server, media_set, tmp_path), encoding="utf-8")
        scripts.append(script)
    typo = tmp_path / "typo.py"
    typo.write_text(_TYPO, encoding="utf-8")
    report = _mypy([*scripts, typo])
    problems = [line for line in report.splitlines() if re.search(r"/readme_\d+\.py:", line)]
    assert problems == [], report
    assert re.search(r'typo\.py:3: error: Unexpected keyword argument "concurency"', report), report
    env = {
        **os.environ,
        "TORNADO_ALLOW_NETWORKS": "127.0.0.0/8",  # the test server is on loopback
        "TORNADO_ENGINE_HOME": str(tmp_path / "home"),
    }
    runs = [
        subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=240
        )
        for script in scripts
    ]
    for script, run in zip(scripts, runs, strict=True):
        assert run.returncode == 0, f"{script.name}:\n{script.read_text()}\n{run.stderr[-2000:]}"
    lines = runs[0].stdout.splitlines()
    assert "'status': 'Completed'" in next(line for line in lines if line.startswith("{")), lines
    assert lines[-3:] == ["Completed"] * 3, lines  # the feed's three episodes
