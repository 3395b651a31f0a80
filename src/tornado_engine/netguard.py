"""A filtering HTTP proxy on 127.0.0.1 that every yt-dlp request goes through (SSRF guard).

yt-dlp follows redirects and finds media URLs inside pages and manifests; checking only the submitted URL
would miss those. So the downloader talks to this proxy, which resolves each target host, refuses it when
any address is outside the :class:`NetworkPolicy`, and then connects to the **address it checked** (no DNS
rebinding between check and connect). ``CONNECT`` tunnels serve HTTPS; plain HTTP is forwarded one request
per connection, so a kept-alive client connection can never be reused for another host.

Each job talks to the guard with its own proxy credential (:meth:`NetGuard.job_proxy`), so the guard knows
whose connections are whose: a cancelled job's connections are cut at once (:meth:`NetGuard.cut`: a read
blocked in yt-dlp returns now, not at its next progress hook), and a response that drips slower than the
:class:`~tornado_engine.bounds.StallPolicy` is cut and remembered (:meth:`NetGuard.take_stall`), so the
download stage ends that job ``stalled`` rather than "truncated".
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import inspect
import logging
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Coroutine
from typing import Any

from .bounds import StallMeter, StallPolicy
from .errors import InvalidRequest, UnresolvableHost
from .safety import UNREACHABLE_REASON, NetworkPolicy
from .sources.hostpace import HELD_REASON, parse_retry_after
from .sources.pacer import HostPacer
from .sources.proxies import ProxyPool
from .sources.ratelimit import Throttle
from .sources.upstream import open_tunnel

__all__ = ["BLOCKED_REASON", "NetGuard"]

_log = logging.getLogger("tornado_engine.netguard")

BLOCKED_REASON = "Blocked by network policy"
_HOP_HEADERS = {"connection", "proxy-connection", "keep-alive", "proxy-authorization", "te", "upgrade"}
_BUFFER = 1 << 18
_PASSWORD = "guard"  # the job id is the proxy user name; the password only makes the URL well formed


class NetGuard:
    """Start with ``start()`` (returns the proxy URL); ``stop()`` ends it. Runs its own loop thread."""

    def __init__(
        self,
        policy: NetworkPolicy,
        connect_timeout: float = 20.0,
        stall: StallPolicy | None = None,
        upstream: ProxyPool | None = None,
        pacer: HostPacer | None = None,
    ) -> None:
        self.policy = policy
        self.connect_timeout = connect_timeout
        self.stall = stall or StallPolicy()
        self.url = ""
        self.blocked = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        # per job id: its open connections' writers (loop thread only), cut jobs, jobs cut for a stall
        self._links: dict[str, set[asyncio.StreamWriter]] = {}
        # asyncio's stream server drops its reference to a handler once the client hangs up: one still
        # waiting on a silent source was then garbage-collected ("Task was destroyed but it is pending!")
        # without its cleanup, leaking the upstream socket. Held here until they end.
        self._handlers: set[asyncio.Task[None]] = set()
        self._lock = threading.Lock()
        self._cut: set[str] = set()
        self._stalled: set[str] = set()
        # per job id: the upstream proxies its connections go through and the bandwidth it may use
        # (:meth:`route`); a connection of no routed job (a metadata resolve) goes through ``upstream``
        self.upstream = upstream
        self._routes: dict[str, tuple[ProxyPool | None, Throttle | None]] = {}
        # per source host: connections, requests/s and back-off, shared with the fast path and the runner
        self.pacer = pacer

    def job_proxy(self, job_id: str) -> str:
        """The proxy URL for one job's requests: the job id travels as the proxy user name."""
        if not self.url:
            return ""
        user = urllib.parse.quote(job_id, safe="")
        return self.url.replace("http://", f"http://{user}:{_PASSWORD}@", 1)

    def cut(self, job_id: str) -> None:
        """Close ``job_id``'s connections now and refuse its new ones (until :meth:`forget`). Any thread."""
        with self._lock:
            self._cut.add(job_id)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(self._abort, job_id)

    def route(self, job_id: str, proxies: ProxyPool | None, throttle: Throttle | None) -> None:
        """``job_id``'s connections go through ``proxies`` (None: straight to the source), its bytes
        from sources are charged to ``throttle``. Until :meth:`forget`. Any thread."""
        with self._lock:
            self._routes[job_id] = (proxies, throttle)

    def _route(self, job_id: str) -> tuple[ProxyPool | None, Throttle | None]:
        with self._lock:
            return self._routes.get(job_id, (self.upstream, None))

    def take_stall(self, job_id: str) -> bool:
        """Whether the guard cut one of ``job_id``'s transfers for a stall since the last call. Any thread."""
        with self._lock:
            found = job_id in self._stalled
            self._stalled.discard(job_id)
            return found

    def forget(self, job_id: str) -> None:
        """The job's attempt is over: nothing about it is kept. Any thread."""
        with self._lock:
            self._cut.discard(job_id)
            self._stalled.discard(job_id)
            self._routes.pop(job_id, None)

    def start(self) -> str:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
            port = self._server.sockets[0].getsockname()[1]
            self.url = f"http://127.0.0.1:{port}"
            ready.set()
            try:
                loop.run_forever()
                # as asyncio.run does: a handler that started after stop()'s last round (its connection
                # was accepted just before the listener closed) is cancelled and awaited here, never left
                # pending when the loop closes ("Task was destroyed but it is pending!")
                loop.run_until_complete(_cancel_all())
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

        self._thread = threading.Thread(target=serve, name="tornado-netguard", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self.url

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        async def shutdown() -> None:
            # connections already accepted get their transport first: closing the server under them
            # is a race inside asyncio ("Error on transport creation" in debug mode)
            for _ in range(100):
                if not [t for t in asyncio.all_tasks() if _is_accept(t)]:
                    break
                await asyncio.sleep(0)
            server.close()  # no await since the check above: no accept can start in between
            await _cancel_all()

        with contextlib.suppress(TimeoutError):
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = self._server = None

    def _abort(self, job_id: str) -> None:
        for writer in self._links.pop(job_id, set()):
            writer.transport.abort()

    def _enter(self, job: str, *writers: asyncio.StreamWriter) -> bool:
        """Count ``writers`` as ``job``'s; False (nothing counted) when the job was cut."""
        with self._lock:
            if job in self._cut:
                return False
        self._links.setdefault(job, set()).update(writers)
        return True

    def _leave(self, job: str, *writers: asyncio.StreamWriter) -> None:
        links = self._links.get(job)
        if links is not None:
            links.difference_update(writers)
            if not links:
                del self._links[job]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        job = ""
        if (task := asyncio.current_task()) is not None:
            self._handlers.add(task)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            job = _job_of(head)
            if not self._enter(job, writer):
                await _refuse(writer, 410, "Gone (job cancelled)", "the job was cancelled")
                return
            await self._dispatch(job, head, reader, writer)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            pass
        except asyncio.CancelledError:
            pass  # stop(): asyncio's stream callback would log a cancelled handler as an error
        except Exception:  # one bad client must never take the proxy down
            _log.exception("netguard: request failed")
        finally:
            self._leave(job, writer)
            writer.close()  # no await here: a handler closed at loop shutdown must not suspend again
            self._handlers.discard(task)

    async def _dispatch(
        self, job: str, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, version = [*request_line.split(" ", 2), "", ""][:3]
        tunnel = method.upper() == "CONNECT"
        if not tunnel and not target.lower().startswith("http://"):
            await _refuse(writer, 400, "Bad Request", "absolute http:// URL or CONNECT expected")
            return
        host = target.rpartition(":")[0] if tunnel else _authority(target)[0]
        paced = await self._paced(job, host.strip("[]"), writer)
        if paced is None:
            return
        try:
            if tunnel:
                await self._tunnel(job, target, reader, writer)
            else:
                await self._forward(job, (method, target, version), header_lines, reader, writer)
        finally:
            if paced and self.pacer is not None:
                self.pacer.leave(host.strip("[]"), job)

    async def _paced(self, job: str, host: str, writer: asyncio.StreamWriter) -> bool | None:
        """Wait for a connection and a request token of ``host``'s domain: True (counted: leave it after),
        False (not paced: no pacer, or the fast path's own tunnel, counted there), None (refused: the
        host's back-off outlasts what a client waits for an answer; it is told when to come back)."""
        pacer = self.pacer
        if pacer is None or (job and pacer.holds(host, job)):
            return False
        if await pacer.enter(host, job, limit=self.connect_timeout * 0.75):
            return True
        left = max(1, round(pacer.until(host) or 1))
        await _refuse(writer, 429, HELD_REASON, f"waiting for host {_printable(host)}",
                      f"Retry-After: {left}\r\n")  # fmt: skip
        return None

    async def _tunnel(
        self, job: str, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        host, _, port_text = target.rpartition(":")
        upstream = await self._open(job, host.strip("[]"), int(port_text or 443), writer)
        if upstream is None:
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await self._relay(job, reader, writer, *upstream, tunnel=True)

    async def _forward(
        self,
        job: str,
        request: tuple[str, str, str],
        header_lines: list[str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        method, target, version = request
        host, port_text, path = _authority(target)
        upstream = await self._open(job, host.strip("[]"), int(port_text or 80), writer)
        if upstream is None:
            return
        up_reader, up_writer = upstream
        headers = [h for h in header_lines if h and h.split(":", 1)[0].strip().lower() not in _HOP_HEADERS]
        out = f"{method} /{path} {version}\r\n" + "".join(f"{h}\r\n" for h in headers)
        up_writer.write((out + "Connection: close\r\n\r\n").encode("latin-1"))
        length = next(
            (int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length:")), 0
        )
        if length:
            up_writer.write(await reader.readexactly(length))
        await up_writer.drain()
        await self._relay(job, reader, writer, up_reader, up_writer, tunnel=False, host=host.strip("[]"))

    async def _relay(
        self,
        job: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
        *,
        tunnel: bool,
        host: str = "",
    ) -> None:
        """Copy the response (both ways for a tunnel) while a watchdog cuts it if it stalls."""
        meter = self.stall.meter(time.monotonic())
        last = [time.monotonic()]  # when the upstream last sent something

        def arrived(n: int) -> None:
            last[0] = time.monotonic()
            meter.feed(n, last[0])

        watch = asyncio.create_task(self._watch(job, meter, last, (writer, up_writer), tunnel))
        throttle = self._route(job)[1]
        try:
            if tunnel:
                # the client's next request on a kept-alive tunnel starts a fresh window for its answer
                await asyncio.gather(
                    _copy(reader, up_writer, lambda n: meter.restart(time.monotonic())),
                    _copy(up_reader, writer, arrived, throttle),
                )
            else:
                response = self._plain_response(up_reader, writer, arrived, throttle, host)
                await _unless_hung_up(reader, response)
        finally:
            watch.cancel()
            self._leave(job, up_writer)
            up_writer.close()

    async def _plain_response(
        self,
        up_reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        arrived: Callable[[int], None],
        throttle: Throttle | None,
        host: str,
    ) -> None:
        try:
            response_head = await up_reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            await _refuse(writer, 502, "Bad Gateway (bad response head)", "bad response from the source")
            return
        arrived(len(response_head))
        if self.pacer is not None:
            _judge(self.pacer, host, response_head)
        writer.write(_closing(response_head))
        await _copy(up_reader, writer, arrived, throttle)

    async def _watch(
        self,
        job: str,
        meter: StallMeter,
        last: list[float],
        ends: tuple[asyncio.StreamWriter, ...],
        tunnel: bool,
    ) -> None:
        window = self.stall.window_seconds
        while True:
            await asyncio.sleep(min(1.0, window / 8))
            now = time.monotonic()
            # a kept-alive tunnel that merely sits idle is no stall: there, only a source that still
            # drips counts (silence is the client's socket timeout's job)
            if meter.stalled(now) and (not tunnel or now - last[0] < window / 2):
                _log.info("netguard: cut a stalled transfer (%s)", self.stall.message)
                if job:
                    with self._lock:
                        self._stalled.add(job)
                for end in ends:
                    end.transport.abort()
                return

    async def _connect(
        self, job: str, host: str, address: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Straight to the checked address, or through the job's upstream proxy to it."""
        pool = self._route(job)[0]
        if pool is None:
            return await asyncio.open_connection(address, port, limit=_BUFFER)
        return await _through(pool, self.policy, job, host, address, port)

    async def _open(
        self, job: str, host: str, port: int, writer: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        loop = asyncio.get_running_loop()
        try:
            addresses = await loop.run_in_executor(None, self.policy.resolve, host, port)
        except UnresolvableHost:  # a DNS failure is the origin's, not a refusal: 502 like a dead port
            await _unreachable(writer, f"Cannot resolve host {_printable(host)}")
            return None
        except InvalidRequest as exc:
            self.blocked += 1
            _log.warning("netguard: %s", exc.message)
            await _refuse(writer, 403, BLOCKED_REASON, exc.message)
            return None
        cause = "no address"
        for address in addresses:  # connect to what was checked, not to a fresh lookup
            try:
                upstream = await asyncio.wait_for(self._connect(job, host, str(address), port),
                                                  self.connect_timeout)  # fmt: skip
            except TimeoutError:
                cause = f"Connection to {_where(host, port)} timed out"
            except OSError as exc:
                cause = _connect_failure(exc, host, port)
            else:
                if not self._enter(job, upstream[1]):  # cancelled while connecting
                    upstream[1].transport.abort()
                    return None
                return upstream
        await _unreachable(writer, cause)
        return None


async def _through(
    pool: ProxyPool, policy: NetworkPolicy, job: str, host: str, address: str, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A tunnel to the checked ``address`` through the pool's pick for (job, host). The proxy's own
    address must pass the policy too; a proxy that fails counts towards its bench."""
    loop = asyncio.get_running_loop()
    proxy = pool.choose(job, host, time.monotonic())
    try:
        proxy_at = await loop.run_in_executor(None, policy.resolve, proxy.host, proxy.port)
    except InvalidRequest:
        raise OSError(0, f"proxy {proxy.label} is not an allowed address (network policy)") from None
    try:
        tunnel = await open_tunnel(proxy, str(proxy_at[0]), address, port, limit=_BUFFER)
    except (OSError, asyncio.CancelledError, TimeoutError):
        if pool.failed(proxy, time.monotonic()):
            _log.warning("netguard: proxy %s benched for %.0f s", proxy.label, pool.bench_seconds)
        raise
    pool.succeeded(proxy)
    return tunnel


def _job_of(head: bytes) -> str:
    """The job id in the request's ``Proxy-Authorization: Basic`` user name ("" without one)."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() != b"proxy-authorization":
            continue
        scheme, _, token = value.strip().partition(b" ")
        if scheme.lower() != b"basic":
            return ""
        try:
            user = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return urllib.parse.unquote(user)
    return ""


async def _cancel_all() -> None:
    """Cancel and await every other task of this loop, in rounds: a connection accepted just before the
    listener closed gets its handler task only on a later loop turn.

    Only tasks that have started are cancelled: a handler cancelled before its first step ends
    "cancelled", which asyncio's stream callback logs as an error; once started, it catches the cancel.
    asyncio's own accept tasks are awaited, not cancelled (they end at once, starting a handler)."""
    for _ in range(50):
        await asyncio.sleep(0)
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if not tasks:
            return
        for task in tasks:
            coro = task.get_coro()
            started = not inspect.iscoroutine(coro) or inspect.getcoroutinestate(coro) != "CORO_CREATED"
            if started and not _is_accept(task):
                task.cancel()
        await asyncio.wait(tasks, timeout=0.05)


def _is_accept(task: asyncio.Task[object]) -> bool:
    """One of asyncio's own tasks that turns an accepted socket into a connection."""
    return getattr(task.get_coro(), "__name__", "") == "_accept_connection2"


def _closing(response_head: bytes) -> bytes:
    """The upstream response head with ``Connection: close``: this proxy serves one request per client
    connection, and a client that kept the connection for its next request would see it dropped unanswered
    (yt-dlp's live-stream check on a manifest is such a request, and it fails silently)."""
    status_line, *header_lines = response_head[:-4].split(b"\r\n")
    kept = [
        h for h in header_lines if h.split(b":", 1)[0].strip().lower().decode("latin-1") not in _HOP_HEADERS
    ]
    return b"\r\n".join([status_line, *kept, b"Connection: close"]) + b"\r\n\r\n"


async def _unless_hung_up(reader: asyncio.StreamReader, relay: Coroutine[Any, Any, None]) -> None:
    """Run ``relay`` until it ends or the client hangs up (EOF): a client that gave up on a silent source
    must not leave the upstream connection open until the stall watchdog's window is over."""
    response = asyncio.ensure_future(relay)
    hangup = asyncio.ensure_future(reader.read(1))  # the request was read whole: only EOF (or junk) is left
    try:
        await asyncio.wait({response, hangup}, return_when=asyncio.FIRST_COMPLETED)
        if not response.done() and hangup.exception() is None and hangup.result() != b"":
            await response  # the client sent more than its request and went on waiting
    finally:
        for task in (response, hangup):
            task.cancel()
        await asyncio.gather(response, hangup, return_exceptions=True)
    if response.done() and not response.cancelled() and (exc := response.exception()) is not None:
        raise exc


def _printable(host: str) -> str:
    """``host`` as it may appear in a reason phrase (no brackets or spaces that would end the cause)."""
    return re.sub(r"[^\w.:-]", "", host)[:253] or "?"


def _where(host: str, port: int) -> str:
    host = _printable(host)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _connect_failure(exc: OSError, host: str, port: int) -> str:
    """The origin's failure in words (asyncio's "Connect call failed ('127.0.0.1', 9)" says less)."""
    if isinstance(exc, ConnectionRefusedError):
        return f"Connection refused by {_where(host, port)}"
    # errno's own words over asyncio's address tuple; an upstream proxy's failure (errno 0) says itself
    text = os.strerror(exc.errno) if exc.errno else exc.strerror or type(exc).__name__
    return f"Cannot connect to {_where(host, port)}: {text}"


async def _unreachable(writer: asyncio.StreamWriter, cause: str) -> None:
    """The origin could not be reached: the cause goes in the reason phrase, which the downloader's error
    repeats, so the engine reports the origin's failure (a network failure), not this proxy's 502."""
    await _refuse(writer, 502, f"{UNREACHABLE_REASON} ({cause})", cause)


def _authority(target: str) -> tuple[str, str, str]:
    """(host, port text, path) of an absolute ``http://`` request target."""
    authority, _, path = target[len("http://") :].partition("/")
    host, _, port_text = authority.rpartition(":") if authority.count(":") == 1 else (authority, "", "")
    return host, port_text, path


def _judge(pacer: HostPacer, host: str, response_head: bytes) -> None:
    """A source's answer, for its host's back-off: a 429 or a 503 with ``Retry-After`` starts (or
    lengthens) it; a success ends the run of incidents."""
    status_line, *header_lines = response_head[:-4].decode("latin-1").split("\r\n")
    status = status_line.split(" ", 2)[1] if status_line.count(" ") else ""
    retry_after = next((h.split(":", 1)[1] for h in header_lines if h.lower().startswith("retry-after:")),
                       None)  # fmt: skip
    if status == "429" or (status == "503" and retry_after is not None):
        wait = pacer.back_off(host, parse_retry_after(retry_after, time.time()))
        _log.warning("netguard: %s answered %s: its requests wait %.1f s", _printable(host), status, wait)
    elif status.startswith("2"):
        pacer.succeeded(host)


async def _refuse(writer: asyncio.StreamWriter, code: int, reason: str, body: str, headers: str = "") -> None:
    data = body.encode()
    writer.write(
        f"HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(data)}\r\n"
        f"{headers}Connection: close\r\n\r\n".encode()
        + data
    )
    with contextlib.suppress(ConnectionError):
        await writer.drain()


async def _copy(
    src: asyncio.StreamReader,
    dst: asyncio.StreamWriter,
    arrived: Callable[[int], None],
    throttle: Throttle | None = None,
) -> None:
    try:
        while data := await src.read(_BUFFER):
            arrived(len(data))
            if throttle and (wait := throttle.charge(len(data))) > 0:
                await asyncio.sleep(wait)
            dst.write(data)
            await dst.drain()
    except ConnectionError:
        pass
    finally:
        if dst.can_write_eof():
            with contextlib.suppress(OSError):
                dst.write_eof()
