"""A local HTTP/1.1 media server with Range support and fault routes, for tests and the demo.

Routes (all paths are relative to ``root``):

- ``/<file>``: the file, with ``Range`` (single range; 206, end clamped to the size, 416) and ``HEAD``.
- ``/status/<code>/anything``: an empty response with that status (429 adds ``Retry-After: 1``).
- ``/drop/<file>``: headers for the whole file, half the body, then a TCP reset.
- ``/short/<file>``: ``Content-Length`` 1000 bytes too large, the whole body, then a clean close (FIN).
- ``/slow/<file>``: the file at about ``slow_bytes_per_sec``.
- ``/huge/...``: manifests generated on the fly and streamed, to test resolve bounds (see
  :func:`_huge_manifest`): ``hls/<n>.m3u8`` (n 2 s segments, with ``Content-Length``), ``hls-stream/<n>.m3u8``
  (the same without a length, ended by closing the connection), ``hls-plain/<n>`` (the same as
  ``text/plain``, without a telling extension), ``dash-list/<n>.mpd`` (n ``SegmentURL``s),
  ``dash-timeline/<n>.mpd`` (one ``<S r="n-1">``: tiny), ``dash-months.mpd`` (declares three months).
- ``/drip/<bytes>/<seconds>/<file>``: the file, ``<bytes>`` bytes every ``<seconds>`` (a stalled source
  that never quite goes silent, e.g. ``/drip/1/1/progressive.mp4``: a byte a second).
- ``/cookie/<name>/<file>``: 403 unless the request's ``Cookie`` header carries ``<name>`` with the value
  set in :attr:`MediaServer.cookies` (kept out of the URL: it is a secret); then the file, as ``/<file>``.
- ``/redirect/<host:port>/<path>``: a 302 to ``http://<host:port>/<path>`` (another host, a refused one).
- ``/storm/<n>/<file>``: a 429 storm: the first ``n`` requests to ``/storm/`` routes get ``429`` with
  ``Retry-After: 2`` (:attr:`MediaServer.storm_retry_after`), the later ones the file, as ``/<file>``.

Every request's path and headers are kept in :attr:`MediaServer.seen`, and the connections
accepted counted in :attr:`MediaServer.connections` (to prove a proxy carried them all). Each answer is
logged in :attr:`MediaServer.timeline` as (``time.monotonic()`` when the request arrived, its route: the
path's first segment, status); :meth:`MediaServer.peak_connections` says how many connections were in use
at once (from accept to the end of their last answer: the client's close reaches the server a moment
later, and counting that moment would see a limit passed that the client kept).

Every file has validators, an ``ETag`` and a ``Last-Modified`` (from its size and modification time, or
set with :meth:`MediaServer.set_validators`), and ``If-Range`` is honoured (a range whose condition fails
gets the whole file) unless :meth:`MediaServer.honour_if_range` turns that off. :attr:`MediaServer.requests`
logs each request's path, ``Range`` and ``If-Range``; :attr:`MediaServer.sent` counts the body bytes sent
per path; :meth:`MediaServer.reset_once` makes the next response for a file end in a TCP reset after a
given number of body bytes.
"""

from __future__ import annotations

import collections
import contextlib
import email.utils
import functools
import mimetypes
import os
import re
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["MediaServer", "ServedRequest"]

# Explicit, not from /etc/mime.types (which often maps .ts to "text/vnd.trolltech.linguist").
_CONTENT_TYPES: dict[str, str] = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".vtt": "text/vtt",
    ".ts": "video/mp2t",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".m4a": "audio/mp4",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".mp3": "audio/mpeg",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".html": "text/html; charset=utf-8",
    ".xml": "application/xml",
    ".json": "application/json",
}

_STATUS_RE = re.compile(r"/status/(\d{3})(?:/|$)")
_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)$")
_FAULT_MODES = frozenset({"drop", "short", "slow", "drip", "cookie", "storm"})
_DRIP_RE = re.compile(r"(\d+)/(\d+(?:\.\d+)?)/(.+)$")
_CHUNK = 16 * 1024


def _content_type(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    return _CONTENT_TYPES.get(suffix) or mimetypes.guess_type(str(path))[0] or "application/octet-stream"


@dataclass(frozen=True)
class ServedRequest:
    """One request as the server saw it (``MediaServer.requests``)."""

    method: str
    path: str
    range: str | None
    if_range: str | None


class _Shared:
    """What the test reads and sets, kept across a stop() and a restart of the server."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hits: collections.Counter[str] = collections.Counter()
        self.sent: collections.Counter[str] = collections.Counter()
        self.requests: list[ServedRequest] = []
        self.validators: dict[str, tuple[str, str]] = {}  # file -> (ETag, Last-Modified) set by the test
        self.resets: dict[str, int] = {}  # file -> body bytes to send before the next response's reset
        self.if_range = True  # False: ignore If-Range, as some servers that support ranges do


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr: tuple[str, int], root: str, slow_bytes_per_sec: int, shared: _Shared) -> None:
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        self.root = root
        self.slow_bytes_per_sec = slow_bytes_per_sec
        self.shared = shared
        self.hits = shared.hits
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.open_sockets: set[socket.socket] = set()
        self.seen: list[tuple[str, dict[str, str]]] = []  # (path, headers) of every request
        self.connections = [0]  # accepted, in a list the MediaServer shares across restarts
        self.cookies: dict[str, str] = {}  # what /cookie/<name>/ wants
        self.stats = _Stats()
        super().__init__(addr, _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients (yt-dlp sniffing, cancels) hang up mid-body all the time: no tracebacks

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        with self.lock:
            self.open_sockets.add(request)
            self.connections[0] += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self.lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def abort_connections(self) -> None:
        # Keep-alive clients would otherwise hold handler threads (and sockets) after stop().
        with self.lock:
            socks = list(self.open_sockets)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


class _Stats:
    """What the server saw: answers in time, and the peaks of connections and requests at once."""

    def __init__(self) -> None:
        self.timeline: list[tuple[float, str, int]] = []  # (arrived, route, status)
        self.spans: list[tuple[float, float, str]] = []  # connections: (accepted, last answered, 1st route)
        self.storm_seen = 0  # requests to /storm/ routes so far
        self.storm_retry_after = 2


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 60  # idle keep-alive connections do not live forever
    arrived = 0.0
    route = ""
    first_route: str | None = None

    def setup(self) -> None:
        self.accepted = self.answered = time.monotonic()
        super().setup()

    def finish(self) -> None:
        with self.server.lock:
            self.server.stats.spans.append((self.accepted, self.answered, self.first_route or ""))
        super().finish()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_response(self, code: int, message: str | None = None) -> None:
        with self.server.lock:
            self.server.stats.timeline.append((self.arrived, self.route, code))
        super().send_response(code, message)

    def do_HEAD(self) -> None:
        self._counted(head=True)

    def do_GET(self) -> None:
        self._counted(head=False)

    def _counted(self, head: bool) -> None:
        self.arrived = time.monotonic()
        path = urllib.parse.urlsplit(self.path).path
        self.route = path[1:].partition("/")[0] if path.count("/") > 1 else ""
        if self.first_route is None:
            self.first_route = self.route
        try:
            self._serve(head)
        finally:
            self.answered = time.monotonic()

    def _empty(self, code: int, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        if code not in (204, 304):
            self.send_header("Content-Length", "0")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()

    def _serve(self, head: bool) -> None:
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        seen = ServedRequest(self.command, path, self.headers.get("Range"), self.headers.get("If-Range"))
        with self.server.shared.lock:
            self.server.hits[path] += 1
            self.server.seen.append((path, dict(self.headers.items())))
            self.server.shared.requests.append(seen)

        if self._answered(path, head):
            return

        route = self._route(path)
        if route is None:
            return
        mode, rest, drip = route
        root = self.server.root
        fs = os.path.realpath(os.path.join(root, rest))
        if not fs.startswith(root + os.sep) or not os.path.isfile(fs):
            return self._empty(404)

        size = os.path.getsize(fs)
        etag, modified = self._validators(fs)
        span = self._span(size, (etag, modified), ranged=mode != "short")
        if span is None:
            return self._empty(416, {"Content-Range": f"bytes */{size}"})
        start, end, partial = span

        length = end - start + 1
        self.send_response(206 if partial else 200)
        self.send_header("Content-Type", _content_type(fs))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", modified)
        self.send_header("Content-Length", str(length + (1000 if mode == "short" else 0)))
        if partial:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        if mode in ("drop", "short"):
            self.send_header("Connection", "close")
        self.end_headers()
        if head:
            return

        to_send = length // 2 if mode == "drop" else length
        with self.server.shared.lock:
            reset_after = self.server.shared.resets.pop(fs, None)
        if reset_after is not None:
            mode, to_send = "drop", min(to_send, reset_after)
        try:
            if drip is not None:
                self._drip(fs, start, to_send, *drip)
            else:
                self._send_body(fs, start, to_send, slow=mode == "slow", path=path)
        except OSError:  # client went away
            self.close_connection = True
            return

        if mode == "short":
            self.close_connection = True  # FIN after a short body
        elif mode == "drop":
            self.close_connection = True
            # SO_LINGER 0 makes close() send RST, so the client sees "Connection reset by peer".
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    def _route(self, path: str) -> tuple[str, str, tuple[int, float] | None] | None:
        """(fault mode, file path, drip) of a file route; None once answered (a 400, 403 or 429)."""
        mode, _, rest = path[1:].partition("/")
        if mode not in _FAULT_MODES:
            mode, rest = "", path[1:]
        drip: tuple[int, float] | None = None
        if mode == "drip":
            if (m := _DRIP_RE.match(rest)) is None or int(m[1]) < 1:
                self._empty(400)
                return None
            drip, rest = (int(m[1]), float(m[2])), m[3]
        if mode == "cookie":
            gated = self._cookie_gate(rest)
            if gated is None:
                self._empty(403)
                return None
            rest = gated
        if mode == "storm":
            n, _, rest = rest.partition("/")
            with self.server.lock:
                self.server.stats.storm_seen += 1
                storming = self.server.stats.storm_seen <= int(n or 0)
            if storming:
                self._empty(429, {"Retry-After": str(self.server.stats.storm_retry_after)})
                return None
        return mode, rest, drip

    def _span(self, size: int, validators: tuple[str, str], *, ranged: bool) -> tuple[int, int, bool] | None:
        """(start, end, partial) the request's Range (and If-Range) asks for; None: unsatisfiable (416)."""
        rng = _RANGE_RE.match(self.headers.get("Range", "").strip()) if ranged else None
        condition = self.headers.get("If-Range")
        if condition is not None and self.server.shared.if_range and condition.strip() not in validators:
            rng = None  # the client's copy is of another version: it gets the whole file
        if not (rng and (rng[1] or rng[2])):
            return 0, size - 1, False
        if rng[1]:
            start = int(rng[1])
            end = min(int(rng[2]), size - 1) if rng[2] else size - 1
        else:  # suffix range: the last N bytes
            start, end = max(0, size - int(rng[2])), size - 1
            if int(rng[2]) == 0:
                start = size
        if start >= size:
            return None
        if start > end:  # "bytes=5-3" is invalid: RFC 9110 says ignore the header
            return 0, size - 1, False
        return start, end, True

    def _answered(self, path: str, head: bool) -> bool:
        """The routes that serve no file: ``/status/``, ``/huge/``, ``/redirect/``."""
        if m := _STATUS_RE.match(path):
            code = int(m[1])
            if not 200 <= code <= 599:
                self._empty(400)
            else:
                self._empty(code, {"Retry-After": "1"} if code == 429 else None)
        elif path.startswith("/huge/"):
            self._huge(path, head)
        elif path.startswith("/redirect/"):
            self._empty(302, {"Location": "http://" + path[len("/redirect/") :]})
        else:
            return False
        return True

    def _cookie_gate(self, rest: str) -> str | None:
        """``<name>/<file>`` -> ``<file>`` when the request carries the cookie :attr:`cookies` wants."""
        name, _, rest = rest.partition("/")
        sent = [c.strip() for c in (self.headers.get("Cookie") or "").split(";")]
        wanted = self.server.cookies.get(name)
        return rest if wanted is not None and f"{name}={wanted}" in sent else None

    def _huge(self, path: str, head: bool) -> None:
        found = _huge_manifest(path[len("/huge/") :])
        if found is None:
            return self._empty(404)
        ctype, body, sized = found
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        if sized:
            self.send_header("Content-Length", str(sum(len(part) for part in body())))
        else:
            self.send_header("Connection", "close")  # the body ends where the connection does
            self.close_connection = True
        self.end_headers()
        if head:
            return
        try:
            for part in body():
                if self.server.stopping.is_set():
                    break
                self.wfile.write(part)
        except OSError:  # the client refused the rest (that is the point)
            self.close_connection = True

    def _drip(self, fs: str, start: int, length: int, size: int, interval: float) -> None:
        for chunk in _drip_chunks(fs, start, length, size):
            self.wfile.write(chunk)
            self.wfile.flush()
            if self.server.stopping.wait(interval):
                raise ConnectionAbortedError("server stopping")

    def _validators(self, fs: str) -> tuple[str, str]:
        """(ETag, Last-Modified) of the file: set by the test, else from its size and modification time."""
        with self.server.shared.lock:
            chosen = self.server.shared.validators.get(fs)
        if chosen is not None:
            return chosen
        st = os.stat(fs)
        return f'"{st.st_size:x}-{st.st_mtime_ns:x}"', email.utils.formatdate(st.st_mtime, usegmt=True)

    def _send_body(self, fs: str, start: int, length: int, *, slow: bool, path: str) -> None:
        rate = self.server.slow_bytes_per_sec
        chunk_size = max(1024, min(_CHUNK, rate // 16)) if slow else 256 * 1024
        began = time.monotonic()
        sent = 0
        with open(fs, "rb") as f:
            f.seek(start)
            while sent < length and not self.server.stopping.is_set():
                chunk = f.read(min(chunk_size, length - sent))
                if not chunk:
                    break
                self.wfile.write(chunk)
                sent += len(chunk)
                with self.server.shared.lock:
                    self.server.shared.sent[path] += len(chunk)
                if slow:
                    # Pace against the start time so sleep overshoot does not accumulate.
                    delay = began + sent / rate - time.monotonic()
                    if delay > 0:
                        self.server.stopping.wait(delay)
        if sent < length:
            raise ConnectionAbortedError("server stopping")


_HUGE = re.compile(
    r"(hls|hls-stream)/(\d{1,9})\.m3u8|hls-plain/(\d{1,9})|(dash-list|dash-timeline)/(\d{1,9})\.mpd"
    r"|dash-months\.mpd"
)
_MPD_HEAD = (
    '<?xml version="1.0" encoding="utf-8"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
    'profiles="urn:mpeg:dash:profile:isoff-on-demand:2011" minBufferTime="PT2S" '
    'mediaPresentationDuration="{duration}">\n<Period id="0"><AdaptationSet mimeType="video/mp4" '
    'contentType="video"><Representation id="v0" codecs="avc1.64001e" bandwidth="800000" width="640" '
    'height="360">\n'
)
_MPD_TAIL = "</Representation></AdaptationSet></Period></MPD>\n"


def _hls_lines(n: int) -> Iterator[bytes]:
    yield b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n"
    for start in range(0, n, 4096):  # in blocks: a few MB stream cheaply
        yield "".join(f"#EXTINF:2.000,\nseg_{i}.ts\n" for i in range(start, min(n, start + 4096))).encode()
    yield b"#EXT-X-ENDLIST\n"


def _dash_list(n: int) -> Iterator[bytes]:
    yield _MPD_HEAD.format(duration="PT23H").encode()  # under a day: the count decides
    yield b'<SegmentList timescale="1" duration="2"><Initialization sourceURL="init.mp4"/>\n'
    for start in range(0, n, 4096):
        yield "".join(
            f'<SegmentURL media="s{i}.m4s"/>\n' for i in range(start, min(n, start + 4096))
        ).encode()
    yield ("</SegmentList>" + _MPD_TAIL).encode()


def _dash_template(duration: str, timeline: str) -> Iterator[bytes]:
    template = (
        '<SegmentTemplate timescale="1" initialization="init.mp4" media="s$Number$.m4s" startNumber="1"'
    )
    body = f"{template}>{timeline}</SegmentTemplate>" if timeline else f'{template} duration="2"/>'
    yield (_MPD_HEAD.format(duration=duration) + body + _MPD_TAIL).encode()


def _huge_manifest(rest: str) -> tuple[str, Callable[[], Iterator[bytes]], bool] | None:
    """(content type, the body's parts, whether to send its length) for a ``/huge/`` path, or None."""
    m = _HUGE.fullmatch(rest)
    if m is None:
        return None
    if m[1]:
        return _CONTENT_TYPES[".m3u8"], functools.partial(_hls_lines, int(m[2])), m[1] == "hls"
    if m[3]:  # no telling name or type: only its first bytes say it is a manifest
        return "text/plain", functools.partial(_hls_lines, int(m[3])), True
    if m[4] == "dash-list":
        return _CONTENT_TYPES[".mpd"], functools.partial(_dash_list, int(m[5])), True
    if m[4] == "dash-timeline":
        n = int(m[5])  # under a day declared, so only the segment count can refuse it
        timeline = f'<SegmentTimeline><S t="0" d="2" r="{n - 1}"/></SegmentTimeline>'
        return _CONTENT_TYPES[".mpd"], functools.partial(_dash_template, "PT23H", timeline), True
    return _CONTENT_TYPES[".mpd"], functools.partial(_dash_template, "P3M", ""), True


def _drip_chunks(fs: str, start: int, length: int, size: int) -> Iterator[bytes]:
    with open(fs, "rb") as f:
        f.seek(start)
        while length > 0 and (chunk := f.read(min(size, length))):
            length -= len(chunk)
            yield chunk


class MediaServer:
    """Serve ``root`` over HTTP/1.1 on ``host`` in a daemon thread.

    >>> with MediaServer(root) as srv:
    ...     urllib.request.urlopen(srv.url("progressive.mp4"))
    """

    def __init__(
        self,
        root: str | Path,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        slow_bytes_per_sec: int = 256 * 1024,
    ) -> None:
        if slow_bytes_per_sec <= 0:
            raise ValueError("slow_bytes_per_sec must be positive")
        self.root = Path(os.path.realpath(root))
        self.host = host
        self._port = port
        self.slow_bytes_per_sec = slow_bytes_per_sec
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._shared = _Shared()
        self.hits = self._shared.hits  # requests per path
        self.sent = self._shared.sent  # body bytes sent per path (what a client was given)
        self.requests = self._shared.requests  # every request, in order
        self.seen: list[tuple[str, dict[str, str]]] = []  # (path, headers) of every request
        self._connections = [0]
        self.cookies: dict[str, str] = {}  # name -> the value /cookie/<name>/<file> wants
        self._stats = _Stats()

    @property
    def timeline(self) -> list[tuple[float, str, int]]:
        """(``time.monotonic()`` when it arrived, route, status) of every answer, in order."""
        return self._stats.timeline

    def peak_connections(self, route: str | None = None) -> int:
        """The most connections in use at once (of those closed so far), or of those whose first request
        was for ``route`` (the path's first segment; "" for a file at the root)."""
        with self._stats_lock():
            spans = [(a, b) for a, b, r in self._stats.spans if route is None or r == route]
        edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])  # an end before a start
        peak = level = 0
        for _, step in edges:
            level += step
            peak = max(peak, level)
        return peak

    def _stats_lock(self) -> threading.Lock | contextlib.nullcontext[None]:
        return self._server.lock if self._server is not None else contextlib.nullcontext()

    @property
    def storm_retry_after(self) -> int:
        return self._stats.storm_retry_after

    @storm_retry_after.setter
    def storm_retry_after(self, seconds: int) -> None:
        self._stats.storm_retry_after = seconds

    def set_validators(self, rel: str, *, etag: str, last_modified: str) -> None:
        """Serve the file at ``rel`` with these validators from now on (a "new version" of it)."""
        with self._shared.lock:
            self._shared.validators[self._file(rel)] = (etag, last_modified)

    def honour_if_range(self, honour: bool) -> None:
        """Whether a failed ``If-Range`` gets the whole file (the default) or is ignored (a server that
        supports ranges but not conditions: the client must compare validators itself)."""
        self._shared.if_range = honour

    def reset_once(self, rel: str, after: int) -> None:
        """The next response for the file at ``rel`` (any route) sends ``after`` body bytes, then a reset."""
        with self._shared.lock:
            self._shared.resets[self._file(rel)] = after

    def _file(self, rel: str) -> str:
        return os.path.realpath(self.root / rel.lstrip("/"))

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("MediaServer already started")
        if not self.root.is_dir():
            raise FileNotFoundError(f"MediaServer root is not a directory: {self.root}")
        # What the test reads (hits, the log) survives stop() and a restart.
        srv = _Server((self.host, self._port), str(self.root), self.slow_bytes_per_sec, self._shared)
        srv.seen, srv.connections, srv.cookies = self.seen, self._connections, self.cookies
        srv.stats = self._stats
        self._server = srv
        self._port = srv.server_address[1]
        self._thread = threading.Thread(
            target=srv.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"MediaServer:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        srv, self._server = self._server, None
        if srv is None:
            return
        srv.stopping.set()
        srv.shutdown()
        srv.abort_connections()
        srv.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def connections(self) -> int:
        """Connections accepted so far."""
        return self._connections[0]

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None and self._port == 0:
            raise RuntimeError("MediaServer not started: the ephemeral port is not known yet")
        return self._port

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url(self, path: str) -> str:
        """Absolute URL for a path under root (``"dash/manifest.mpd"`` or ``"/drop/audio.mp3"``)."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def __enter__(self) -> Self:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self.base_url if self._server is not None else "stopped"
        return f"MediaServer(root={str(self.root)!r}, {state})"
