"""The soak's hostile parts, on 127.0.0.1: a media source whose URL decides (seeded, deterministic) what it
does on each request, and moto's S3 server behind a WSGI layer that answers 503 SlowDown to a share of
writes.

Source plans (``plan_for(seed, n)`` for ``/soak/<n>.mp4``), each with the terminal status it deserves:
- ``clean``: every request served: Completed.
- ``transient``: the first 1 or 2 requests get a fault (reset mid-body, 5xx, 429 with Retry-After: 1, a stall
  after the headers, a short body), then every request is clean: fewer faults than the engine's retries,
  so Completed.
- ``not_found``: 404 on every request: Failed, the error saying 404.
- ``always_5xx``: 503 on every request: Failed, the error saying 503.
- ``always_reset``: every body cut by a TCP reset half-way: Failed, the error saying reset or truncated.
(The job record keeps the error's message and severity, not its kind: the message is what is checked.)
"""

from __future__ import annotations

import http.server
import random
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FAULTS = ("reset", "500", "502", "503", "429", "stall", "short")
# category -> (share, expected status, what the job's error must say)
CATEGORIES: dict[str, tuple[float, str, str]] = {
    "clean": (0.45, "Completed", ""),
    "transient": (0.35, "Completed", ""),
    "not_found": (0.08, "Failed", r"HTTP Error 404"),
    "always_5xx": (0.06, "Failed", r"HTTP Error 503"),
    "always_reset": (0.06, "Failed", r"reset by peer|Downloaded \d+ bytes, expected \d+ bytes"),
}
_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")
STALL_SECONDS = 30.0  # far past the workers' socket timeout: the engine must cut it


@dataclass(frozen=True)
class Plan:
    category: str
    faults: tuple[str, ...]  # for transient: the faults of the first requests, in order

    def action(self, request_number: int) -> str:
        """What request ``request_number`` (0-based, per URL) gets."""
        if self.category == "not_found":
            return "404"
        if self.category == "always_5xx":
            return "503"
        if self.category == "always_reset":
            return "reset"
        if request_number < len(self.faults):
            return self.faults[request_number]
        return "clean"

    @property
    def expected(self) -> str:
        return CATEGORIES[self.category][1]

    def error_matches(self, error: str | None) -> bool:
        pattern = CATEGORIES[self.category][2]
        return not pattern or re.search(pattern, error or "") is not None


def plan_for(seed: int, n: int) -> Plan:
    rng = random.Random(seed * 1_000_003 + n)
    pick, acc = rng.random(), 0.0
    category = "clean"
    for name, (share, _, _) in CATEGORIES.items():
        acc += share
        if pick < acc:
            category = name
            break
    faults = tuple(rng.choice(FAULTS) for _ in range(rng.randint(1, 2))) if category == "transient" else ()
    return Plan(category, faults)


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up mid-body (timeouts, retries) are the point here, not news


class FaultSource:
    """One clip under many URLs, each following its plan; ``hits`` counts actions taken."""

    def __init__(self, clip: Path, seed: int) -> None:
        self.body = clip.read_bytes()
        self.seed = seed
        self.requests: Counter[str] = Counter()  # per path
        self.hits: Counter[str] = Counter()  # per action
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/soak"

    def __enter__(self) -> FaultSource:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def next_action(self, path: str) -> str:
        match = re.fullmatch(r"/soak/(\d+)\.mp4", path.split("?")[0])
        if match is None:
            return "404"
        with self._lock:
            number = self.requests[path]
            self.requests[path] += 1
        action = plan_for(self.seed, int(match.group(1))).action(number)
        with self._lock:
            self.hits[action] += 1
        return action

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        source = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                self._serve(head=True)

            def do_GET(self) -> None:
                self._serve(head=False)

            def _serve(self, head: bool) -> None:
                action = source.next_action(self.path)
                if action in ("404", "500", "502", "503", "429"):
                    self.send_response(int(action))
                    if action == "429":
                        self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body, start = source.body, 0
                found = _RANGE.match(self.headers.get("Range", "").strip())
                if found:
                    start = int(found.group(1))
                    end = int(found.group(2)) + 1 if found.group(2) else len(body)
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    part = body[start:end]
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{start + len(part) - 1}/{len(body)}")
                else:
                    part = body
                    self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                if head:
                    return
                self._body(action, part)

            def _body(self, action: str, part: bytes) -> None:
                if action == "stall":
                    self.wfile.flush()
                    time.sleep(STALL_SECONDS)  # silent: the client's read timeout must end it
                    self.close_connection = True
                    return
                if action in ("reset", "short"):
                    self.wfile.write(part[: len(part) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    if action == "reset":  # RST instead of FIN
                        linger = struct.pack("ii", 1, 0)
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                    return
                self.wfile.write(part)

        return Handler


# -- S3 with failing writes -------------------------------------------------------------------------------

_SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


class FailingS3:
    """moto's S3 app in a thread; once ``armed``, a PUT or POST fails with 503 SlowDown with probability
    ``rate`` (seeded). ``writes`` and ``failed`` count them, ``stored`` the whole-object PUTs that succeeded
    per path."""

    def __init__(self, rate: float, seed: int) -> None:
        from moto.server import DomainDispatcherApplication, create_backend_app  # type: ignore[attr-defined]
        from werkzeug.serving import make_server

        self.rate = rate
        self.armed = False
        self.writes = 0
        self.failed = 0
        self.stored: Counter[str] = Counter()  # successful PUTs per path
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server("127.0.0.1", 0, self._wrap(app), threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> FailingS3:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()

    def _fail_now(self, method: str) -> bool:
        if not self.armed or method not in ("PUT", "POST"):
            return False
        with self._lock:
            self.writes += 1
            fail = self._rng.random() < self.rate
            self.failed += fail
        return fail

    def _wrap(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if self._fail_now(environ["REQUEST_METHOD"]):
                stream, left = environ["wsgi.input"], int(environ.get("CONTENT_LENGTH") or 0)
                while left > 0:  # drain the body, so the connection stays in step
                    chunk = stream.read(min(left, 65536))
                    if not chunk:
                        break
                    left -= len(chunk)
                start_response("503 Slow Down", [("Content-Type", "application/xml"),
                                                 ("Content-Length", str(len(_SLOW_DOWN)))])  # fmt: skip
                return [_SLOW_DOWN]
            if environ["REQUEST_METHOD"] != "PUT":
                return app(environ, start_response)
            path = environ.get("PATH_INFO", "")

            def counting(status: str, headers: Any, *rest: Any) -> Any:
                if status.startswith("200") and "uploadId" not in environ.get("QUERY_STRING", ""):
                    with self._lock:
                        self.stored[path] += 1
                return start_response(status, headers, *rest)

            return app(environ, counting)

        return middleware
