"""Tunnels through an upstream proxy, for the network guard: ``CONNECT`` on an HTTP or HTTPS proxy
(Basic credentials), or a SOCKS5 ``CONNECT`` (username/password, RFC 1929).

The target is always the **address the guard checked** (never a host name for the proxy to resolve), so
the SSRF policy still judges the origin. Failures raise ``OSError`` whose text names the proxy by its
label (never its credentials).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import ssl
import struct

from .proxies import ProxySpec

__all__ = ["open_tunnel"]

_SOCKS_REPLIES = {
    1: "general failure", 2: "not allowed by ruleset", 3: "network unreachable", 4: "host unreachable",
    5: "connection refused", 6: "TTL expired", 7: "command not supported", 8: "address type not supported",
}  # fmt: skip


async def open_tunnel(
    proxy: ProxySpec, proxy_address: str, address: str, port: int, *, limit: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A stream to ``address:port`` through ``proxy`` (reached at ``proxy_address``, already checked)."""
    tls = ssl.create_default_context() if proxy.scheme == "https" else None
    try:
        reader, writer = await asyncio.open_connection(
            proxy_address, proxy.port, ssl=tls, server_hostname=proxy.host if tls else None, limit=limit
        )
    except OSError as exc:  # ssl.SSLError too: the proxy's name, never the bare address tuple
        raise _fail(proxy, f"cannot connect ({exc.strerror or exc})") from None
    try:
        if proxy.scheme == "socks5":
            await _socks5(proxy, reader, writer, address, port)
        else:
            await _connect(proxy, reader, writer, address, port)
    except BaseException:
        writer.transport.abort()
        raise
    return reader, writer


def _fail(proxy: ProxySpec, what: str) -> OSError:
    return OSError(0, f"proxy {proxy.label}: {what}")


async def _connect(
    proxy: ProxySpec, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: str, port: int
) -> None:
    host = f"[{address}]" if ":" in address else address
    lines = [f"CONNECT {host}:{port} HTTP/1.1", f"Host: {host}:{port}"]
    if proxy.username or proxy.password:
        token = base64.b64encode(f"{proxy.username}:{proxy.password}".encode()).decode("ascii")
        lines.append(f"Proxy-Authorization: Basic {token}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        raise _fail(proxy, "closed the connection without answering CONNECT") from None
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or parts[1] != "200":
        raise _fail(proxy, f"refused the tunnel ({status_line[:80]})")


async def _socks5(
    proxy: ProxySpec, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: str, port: int
) -> None:
    auth = bool(proxy.username or proxy.password)
    writer.write(b"\x05\x01\x02" if auth else b"\x05\x01\x00")
    try:
        version, method = await reader.readexactly(2)
        if version != 5 or method != (2 if auth else 0):
            raise _fail(proxy, "offers no acceptable SOCKS5 authentication")
        if auth:
            user, password = proxy.username.encode(), proxy.password.encode()
            writer.write(bytes([1, len(user)]) + user + bytes([len(password)]) + password)
            if (await reader.readexactly(2))[1] != 0:
                raise _fail(proxy, "refused the credentials")
        ip = ipaddress.ip_address(address)
        kind = b"\x01" if ip.version == 4 else b"\x04"
        writer.write(b"\x05\x01\x00" + kind + ip.packed + struct.pack("!H", port))
        reply = await reader.readexactly(4)
        if reply[1] != 0:
            raise _fail(proxy, f"SOCKS5 connect failed ({_SOCKS_REPLIES.get(reply[1], reply[1])})")
        bound = {1: 4, 4: 16}.get(reply[3])
        size = bound if bound is not None else (await reader.readexactly(1))[0]
        await reader.readexactly(size + 2)
    except asyncio.IncompleteReadError:
        raise _fail(proxy, "closed the SOCKS5 handshake") from None
