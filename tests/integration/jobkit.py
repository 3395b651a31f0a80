"""Helpers shared by the integration tests that run whole jobs (``from jobkit import run_job``)."""

from __future__ import annotations

import contextlib
import os
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tornado_engine import Engine, JobCreated, JobRequest
from tornado_engine.models import Job
from tornado_engine.progress import Event


async def run_job(engine: Engine, timeout: float = 120, **fields: object) -> Job:
    """Submit one job and wait for its end."""
    created = await engine.create_job(JobRequest(**fields))
    assert isinstance(created, JobCreated), "a single media URL was expected, not a playlist"
    return await engine.wait(created.job_id, timeout=timeout)


def record_events(engine: Engine, into: list[Event]) -> None:
    """Append every event ``engine`` publishes to ``into``, as it is published (any job, any tenant)."""
    publish = engine.hub.publish

    def keep(event: Event) -> None:
        into.append(event)
        publish(event)

    engine.hub.publish = keep  # type: ignore[method-assign]


def local_path(url: str | None) -> Path:
    """The file behind a local storage ``file://`` URL."""
    assert url and url.startswith("file://"), url
    return Path(urllib.parse.unquote(url.removeprefix("file://")))


@contextlib.contextmanager
def webhook_receiver(record: Callable[[bytes, dict[str, str]], None]) -> Iterator[str]:
    """A server on 127.0.0.1 answering 204 to every POST, handing each (body, lower-cased headers) to
    ``record``; yields its base URL (``http://127.0.0.1:PORT``)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            record(body, {k.lower(): v for k, v in self.headers.items()})
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def random_file(folder: Path, size: int) -> tuple[Path, bytes]:
    """``folder/clip.mp4`` holding ``size`` random bytes (storage tests: nothing compresses or dedupes)."""
    data = os.urandom(size)
    path = folder / "clip.mp4"
    path.write_bytes(data)
    return path, data
