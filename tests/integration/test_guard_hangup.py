"""The network guard lets go of a silent source as soon as its client hangs up (found by the soak: every
stalled source whose client gave up kept an upstream socket, and its handler was garbage-collected
mid-wait with "Task was destroyed but it is pending!")."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tornado_engine.netguard import NetGuard
from tornado_engine.safety import NetworkPolicy


@pytest.fixture
def silent_source() -> Iterator[tuple[int, list[socket.socket]]]:
    """A source that answers headers, then never sends the body; yields (port, accepted connections)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
            accepted.append(conn)

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1], accepted
    server.close()
    for conn in accepted:
        conn.close()


def test_a_client_that_hangs_up_on_a_silent_source_frees_the_upstream(
    silent_source: tuple[int, list[socket.socket]], caplog: pytest.LogCaptureFixture
) -> None:
    port, accepted = silent_source
    guard = NetGuard(NetworkPolicy.build(["127.0.0.0/8"]))
    proxy_port = int(guard.start().rsplit(":", 1)[1])
    try:
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", proxy_port)) as client:
                client.sendall(f"GET http://127.0.0.1:{port}/x HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                client.settimeout(5)
                assert client.recv(1000).startswith(b"HTTP/1.1 200")
        deadline = time.monotonic() + 5
        while len(accepted) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        for conn in accepted:  # the guard closed its side: the source reads EOF (no 30 s stall window)
            conn.settimeout(3)
            assert conn.recv(1) == b""
    finally:
        guard.stop()
    assert "Task was destroyed" not in caplog.text
