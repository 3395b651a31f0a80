"""Start and stop the storage emulators on 127.0.0.1 for the test suite.

- moto's S3 server runs in this process (``ThreadedMotoServer``) for the signed-URL tests; a second moto
  runs as a subprocess in IAM mode (``INITIAL_NO_AUTH_ACTION_COUNT``), the only mode in which it checks
  signatures (and in which presigned GETs break), so bad credentials can be seen being refused.
- Azurite runs as the real ``node`` binary by absolute path (a launcher or ``cd dir && ...`` would put a
  parent between us and the server, and stopping the parent leaves the server running), on port 0,
  reading the port it chose from its log. ``--disableTelemetry``: without it Azurite can hang on exit.
- gcp-storage-emulator runs as ``python -m gcp_storage_emulator`` on a free port.

Every launcher raises :class:`EmulatorError` with the server's log tail when it cannot start; the
fixtures turn that into ``pytest.fail`` (never a skip).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "AZURITE_ACCOUNT",
    "AZURITE_KEY",
    "EmulatorError",
    "azurite",
    "azurite_dir",
    "azurite_main",
    "free_port",
    "gcs_emulator",
    "moto_iam_server",
    "moto_server",
]

REPO = Path(__file__).resolve().parents[2]
AZURITE_ACCOUNT = "devstoreaccount1"  # Azurite's well-known development account (public)
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class EmulatorError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(log: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


def _wait(
    ready: Callable[[], Any], proc: subprocess.Popen[bytes] | None, log: Path, what: str, timeout: float
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise EmulatorError(f"{what} exited with code {proc.returncode}:\n{_tail(log)}")
        with contextlib.suppress(OSError, ValueError):
            result = ready()
            if result:
                return result
        time.sleep(0.05)
    raise EmulatorError(f"{what} did not become ready within {timeout:.0f}s:\n{_tail(log)}")


def _stop(proc: subprocess.Popen[bytes], out: IO[bytes]) -> None:
    """Stop exactly the process we started, by its pid: SIGTERM, then SIGKILL after 5 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    out.close()


def _spawn(
    argv: list[str], log: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    out = open(log, "wb")  # noqa: SIM115 - closed by _stop
    try:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=log.parent, env={**os.environ, **(env or {})})  # fmt: skip
    except OSError as exc:
        out.close()
        raise EmulatorError(f"could not start {argv[0]}: {exc}") from exc
    return proc, out


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server in a thread; yields the endpoint URL."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise EmulatorError(f"moto is not installed ({exc}); pip install -e . --group dev") from exc
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@contextlib.contextmanager
def moto_iam_server(workdir: Path, free_calls: int = 3) -> Iterator[str]:
    """moto as a subprocess that checks signatures after ``free_calls`` unauthenticated requests."""
    port = free_port()
    log = workdir / "moto-iam.log"
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    proc, out = _spawn(argv, log, {"INITIAL_NO_AUTH_ACTION_COUNT": str(free_calls)})
    try:
        url = f"http://127.0.0.1:{port}"
        _wait(lambda: socket.create_connection(("127.0.0.1", port), 0.2).close() or True, proc, log,
              "moto (IAM mode)", 30)  # fmt: skip
        yield url
    finally:
        _stop(proc, out)


def azurite_dir() -> Path:
    """Where scripts/install-emulators put Azurite (``$TORNADO_AZURITE_DIR`` to use another)."""
    return Path(os.environ.get("TORNADO_AZURITE_DIR", REPO / ".cache" / "azurite"))


def azurite_main() -> Path:
    return azurite_dir() / "node_modules/azurite/dist/src/blob/main.js"


@contextlib.contextmanager
def azurite(workdir: Path) -> Iterator[str]:
    """Azurite's blob service; yields the account's blob endpoint (http://127.0.0.1:PORT/devstoreaccount1)."""
    main = azurite_main()
    if not main.is_file():
        raise EmulatorError(f"Azurite is not installed at {main}: run `bash scripts/install-emulators`")
    # the node install-emulators chose (it may be newer than the system's), else the one on PATH
    recorded = azurite_dir() / "node-path"
    node = recorded.read_text().strip() if recorded.is_file() else shutil.which("node")
    if not node or not os.path.isfile(node):
        raise EmulatorError(f"node not found ({node or 'not on PATH'}): run `bash scripts/install-emulators`")
    log = workdir / "azurite.log"
    argv = [os.path.realpath(node), str(main), "--blobHost", "127.0.0.1", "--blobPort", "0",
            "--inMemoryPersistence", "--extentMemoryLimit", "512", "--skipApiVersionCheck",
            "--disableTelemetry"]  # fmt: skip
    proc, out = _spawn(argv, log)
    try:

        def port() -> str | None:
            found = re.search(rb"listens on http://127\.0\.0\.1:(\d+)", log.read_bytes())
            return found.group(1).decode() if found else None

        yield f"http://127.0.0.1:{_wait(port, proc, log, 'Azurite', 60)}/{AZURITE_ACCOUNT}"
    finally:
        _stop(proc, out)


@contextlib.contextmanager
def gcs_emulator(workdir: Path, bucket: str) -> Iterator[str]:
    """gcp-storage-emulator in memory with ``bucket``; yields its endpoint URL."""
    port = free_port()
    log = workdir / "gcs.log"
    argv = [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port", str(port),
            "--in-memory", "--default-bucket", bucket]  # fmt: skip
    proc, out = _spawn(argv, log)
    try:
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            with urllib.request.urlopen(f"{url}/storage/v1/b/{bucket}", timeout=1) as response:
                return bool(response.status == 200)

        _wait(ready, proc, log, "gcp-storage-emulator", 30)
        yield url
    finally:
        _stop(proc, out)
