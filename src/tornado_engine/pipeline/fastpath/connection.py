"""Connections for one download: pinned to the addresses the network policy allowed (or tunnelled through
the network guard), connected with ``poll`` while watching cancel, and sending kept-alive HTTP/1.1 GETs."""

from __future__ import annotations

import base64
import contextlib
import errno
import http.cookiejar
import ipaddress
import os
import select
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass

from ...bounds import StallMeter, StallPolicy
from ...errors import DownloadError, InvalidRequest, JobCancelled, StageError
from ...safety import BlockedAddress, NetworkPolicy
from ...sources.hostpace import parse_retry_after
from ...sources.pacer import HostPacer
from ...sources.ratelimit import Throttle
from ...ytdlp import map_error
from ._signals import Fallback, NetError, Stopped
from .eligibility import FastDash, FastSource
from .tuning import TICK

__all__ = ["Response", "Session"]

_MAX_HEAD = 64 * 1024


_tls_lock = threading.Lock()
_tls_context: ssl.SSLContext | None = None


def _tls() -> ssl.SSLContext:
    """One verifying context per process (loading the CA store costs ~0.1 s; never per download)."""
    global _tls_context
    with _tls_lock:
        if _tls_context is None:
            context = ssl.create_default_context()
            with contextlib.suppress(ImportError, OSError):
                import certifi  # what yt-dlp trusts too, when it is installed

                context.load_verify_locations(cafile=certifi.where())
            _tls_context = context
        return _tls_context


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, str]
    body_start: bytes


class Session:
    """Shared by a download's connections: where to connect, what to send, when to stop."""

    def __init__(
        self,
        source: FastSource | FastDash,
        policy: NetworkPolicy | None,
        proxy: str | None,
        cancel: threading.Event,
        socket_timeout: float,
        stall: StallPolicy | None = None,
        cookies: http.cookiejar.CookieJar | None = None,
        throttle: Throttle | None = None,
        pacer: tuple[HostPacer, str] | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(source.url)
        self.https = parts.scheme.lower() == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.authority = f"{host}:{self.port}"
        default_port = self.port == (443 if self.https else 80)
        self.host_header = host if default_port else self.authority
        self.headers = source.headers
        self.cancel = cancel
        self.stop = threading.Event()  # another connection failed: wind down
        self.if_range: str | None = None  # sent with every ranged request once the source's version is known
        self.timeout = socket_timeout
        self.proxy = proxy
        # matched per request URL by http.cookiejar (domain, path, secure, expiry), as yt-dlp's jar does
        self.cookies = cookies
        self.throttle = throttle
        self.pacer = pacer  # the engine's per-host pacer and the job (its owner there)
        # one meter for all the download's connections: the source's total rate is what counts
        self.meter: StallMeter | None = stall.meter(time.monotonic()) if stall is not None else None
        self.addresses: list[str] = []
        if policy is not None:
            try:
                self.addresses = [str(a) for a in policy.resolve(self.host, self.port)]
            except BlockedAddress as exc:
                raise DownloadError(exc.message, kind="http_error") from None
            except InvalidRequest as exc:  # unresolvable: yt-dlp words that failure
                raise Fallback(exc.message) from None
        elif not proxy:
            raise Fallback("neither a network policy nor the guard's proxy: nothing to enforce it with")

    def check(self) -> None:
        if self.cancel.is_set():
            raise JobCancelled("cancelled during download")
        if self.stop.is_set():
            raise Stopped

    def recv_into(self, sock: socket.socket, view: memoryview) -> int:
        """``sock.recv_into`` that looks at cancel every tick, gives up after ``socket_timeout`` of silence
        and when the source is slower than the stall policy (a drip resets no idle counter here)."""
        idle = 0.0
        while True:
            self.check()
            try:
                n = sock.recv_into(view)
            except TimeoutError:
                self.check_stall(0)
                idle += TICK
                if idle >= self.timeout:
                    raise NetError("The read operation timed out") from None
                continue
            except OSError as exc:
                raise NetError(_os_text(exc)) from None
            self.check_stall(n)
            # through the guard, the guard charges the job's bandwidth; straight, this connection does
            if self.throttle and self.addresses:
                self.throttle.sleep_for(n)
            return n

    def check_stall(self, arrived: int) -> None:
        meter = self.meter
        if meter is None:
            return
        now = time.monotonic()
        if arrived:
            meter.feed(arrived, now)
        if meter.stalled(now):
            raise DownloadError(meter.policy.message, kind="stalled")

    def connect(self) -> socket.socket:
        # to an address the policy judged, or through the guard, which judges it itself
        sock = self._tcp([(a, self.port) for a in self.addresses]) if self.addresses else self._tunnel()
        if self.https:
            try:
                sock.settimeout(self.timeout)
                sock = _tls().wrap_socket(sock, server_hostname=self.host)
            except OSError as exc:  # ssl.SSLError is an OSError
                sock.close()
                raise NetError(f"TLS handshake failed: {exc}") from None
        sock.settimeout(TICK)
        return sock

    def _tcp(self, targets: list[tuple[str, int]]) -> socket.socket:
        last = "no address to connect to"
        for address, port in targets:
            family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setblocking(False)
                err = sock.connect_ex((address, port))
                waited = 0.0
                while err in _IN_PROGRESS:  # wait for the handshake, looking at cancel every tick
                    self.check()
                    if _writable(sock, TICK):
                        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        break
                    waited += TICK
                    if waited >= self.timeout:
                        raise NetError("timed out")
                if err:
                    raise OSError(err, os.strerror(err))
                sock.setblocking(True)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return sock
            except OSError as exc:
                sock.close()
                last = _os_text(exc)
            except BaseException:
                sock.close()
                raise
        raise NetError(last)

    def _tunnel(self) -> socket.socket:
        """A CONNECT tunnel through the network guard, which judges the target like any yt-dlp request."""
        proxy = urllib.parse.urlsplit(self.proxy or "")
        sock = self._tcp([(proxy.hostname or "127.0.0.1", proxy.port or 80)])
        try:
            sock.settimeout(TICK)
            # the proxy URL's user is the job: the guard routes and meters the tunnel as that job's
            auth = urllib.parse.unquote(f"{proxy.username or ''}:{proxy.password or ''}")
            token = base64.b64encode(auth.encode()).decode("ascii") if proxy.username else ""
            credential = f"Proxy-Authorization: Basic {token}\r\n" if token else ""
            sock.sendall(
                f"CONNECT {self.authority} HTTP/1.1\r\nHost: {self.authority}\r\n{credential}\r\n".encode()
            )
            response = self.read_head(sock)
            if response.status == 403:
                raise DownloadError(
                    f"Blocked by network policy: {self.host} is not an allowed address", kind="http_error"
                )
            if response.status != 200 or response.body_start:
                raise NetError(f"the network guard answered {response.status} {response.reason}")
            return sock
        except BaseException:
            sock.close()
            raise

    def read_head(self, sock: socket.socket) -> Response:
        data = bytearray()
        buf = memoryview(bytearray(16384))
        while (end := data.find(b"\r\n\r\n")) < 0:
            if len(data) > _MAX_HEAD:
                raise Fallback("response headers too large")
            n = self.recv_into(sock, buf)
            if not n:
                raise NetError("Remote end closed connection without response")
            data += buf[:n]
        lines = bytes(data[:end]).decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise Fallback(f"not an HTTP/1.x response: {lines[0][:80]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise Fallback("malformed response header")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        return Response(int(code), reason, headers, bytes(data[end + 4 :]))

    def http_error(self, response: Response) -> StageError:
        """The error for an HTTP failure status, as yt-dlp's would be, with the source's ``Retry-After``;
        a 429 (or a 503 with ``Retry-After``) starts the host's back-off: every job's requests wait."""
        error = map_error(Exception(f"HTTP Error {response.status}: {response.reason or 'Error'}"),
                          resolving=False)  # fmt: skip
        error.retry_after = parse_retry_after(response.headers.get("retry-after"), time.time())
        if self.pacer is not None and (response.status == 429 or error.retry_after is not None):
            self.pacer[0].back_off(self.host, error.retry_after)
        return error

    def ask(self, sock: socket.socket, url: str, span: tuple[int, int] | None = None) -> Response:
        """Send a GET of ``url`` (on this origin; bytes ``span`` of it) and read the response's head,
        after the host's pacer allows a request."""
        if self.pacer is not None:
            self.pacer[0].request(self.host, self.pacer[1], self.cancel)
        parts = urllib.parse.urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"GET {target} HTTP/1.1", f"Host: {self.host_header}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if span is not None:
            lines.append(f"Range: bytes={span[0]}-{span[1]}")
            if self.if_range:  # a source that changed sends the whole new file, never a mix
                lines.append(f"If-Range: {self.if_range}")
        if self.cookies is not None:
            probe = urllib.request.Request(url)
            self.cookies.add_cookie_header(probe)
            if cookie := probe.get_header("Cookie"):
                lines.append(f"Cookie: {cookie}")
        lines += ["Accept-Encoding: identity", "Connection: keep-alive"]
        try:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        except OSError as exc:
            raise NetError(_os_text(exc)) from None
        return self.read_head(sock)


_IN_PROGRESS = {
    0,
    *(getattr(errno, n) for n in ("EINPROGRESS", "EWOULDBLOCK", "EAGAIN") if hasattr(errno, n)),
}
_IN_PROGRESS.discard(0)


def _writable(sock: socket.socket, timeout: float) -> bool:
    """Connected yet? ``poll``, not ``select``: with hundreds of jobs, descriptors pass FD_SETSIZE (1024)."""
    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    return bool(poller.poll(timeout * 1000))


def _os_text(exc: OSError) -> str:
    """``[Errno 104] Connection reset by peer``: the wording yt-dlp's messages and our classifier use."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"[Errno {exc.errno}] {exc.strerror}" if exc.errno else str(exc) or type(exc).__name__
