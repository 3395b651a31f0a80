"""Stopping the network guard (and closing engines) never leaves a handler task pending (issue 13).

"Task was destroyed but it is pending! ... NetGuard._handle" was logged through asyncio's logger when a
connection accepted just before the listener closed got its handler after the last cleanup round. Many
short guards and engines run in a subprocess, with connections in every state at stop; its stderr must
stay empty (the message is a log line, not a warning, so only the process's own stderr shows it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tornado_engine.testing import MediaServer

pytestmark = pytest.mark.integration

_GUARDS = """
import socket, sys, threading, time, warnings
warnings.simplefilter("error")
from tornado_engine.netguard import NetGuard
from tornado_engine.safety import NetworkPolicy

url = sys.argv[1]
host, port = url.removeprefix("http://").split(":")
for cycle in range(30):
    guard = NetGuard(NetworkPolicy.build(["127.0.0.0/8"]))
    guard_port = int(guard.start().rsplit(":", 1)[1])
    socks = []
    for kind in range(6):  # silent, half a head, a dripping download, a tunnel, and late arrivals
        s = socket.create_connection(("127.0.0.1", guard_port))
        if kind == 1:
            s.sendall(b"GET http://x")
        elif kind == 2:
            s.sendall(f"GET {url}/drip/10/1/progressive.mp4 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n".encode())
        elif kind == 3:
            s.sendall(f"CONNECT {host}:{port} HTTP/1.1\\r\\n\\r\\n".encode())
        socks.append(s)
    time.sleep(0.02 * (cycle % 3))
    stopper = threading.Thread(target=guard.stop)
    stopper.start()
    for _ in range(3):  # connections racing the listener's close
        try:
            socks.append(socket.create_connection(("127.0.0.1", guard_port), timeout=0.2))
        except OSError:
            pass
    stopper.join()
    for s in socks:
        s.close()
print("done")
"""

_ENGINES = """
import asyncio, sys, warnings
warnings.simplefilter("error")
from tornado_engine import Engine, JobRequest

async def main() -> None:
    for cycle in range(10):
        async with Engine.open(data_dir=sys.argv[2] + f"/{cycle}", poll_interval=0.05) as engine:
            await engine.create_job(JobRequest(url=sys.argv[1] + "/ie/ok/drip/10/1/progressive.mp4"))
            await asyncio.sleep(0.3 + 0.1 * (cycle % 3))  # resolving or downloading at close

asyncio.run(main())
print("done")
"""


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*sys.path])  # the test extractor plugin and src
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(code), *args],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


def test_many_guards_stop_cleanly(media_server: MediaServer) -> None:
    done = _run(_GUARDS, media_server.base_url)
    assert done.stdout.strip() == "done", done.stderr
    assert done.stderr == ""


def test_many_engines_close_cleanly(media_server: MediaServer, tmp_path: Path) -> None:
    done = _run(_ENGINES, media_server.base_url, str(tmp_path))
    assert done.stdout.strip() == "done", done.stderr
    assert done.stderr == ""
