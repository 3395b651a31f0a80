"""A TCP proxy on 127.0.0.1 that spoils the first upload passing through it, for the storage tests: it cuts
the connection (a network that drops a long upload) or flips one byte (a corrupted transfer) once the
client has sent ``after`` bytes on one connection (``"none"``: neither). Later connections pass untouched.
With ``tls``, it takes TLS from clients and forwards plain TCP (a TLS endpoint in front of an emulator)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from typing import Literal

__all__ = ["TamperingProxy"]


class TamperingProxy:
    def __init__(
        self,
        upstream: str,
        after: int,
        action: Literal["cut", "flip", "none"],
        tls: ssl.SSLContext | None = None,
    ) -> None:
        host, port = upstream.removeprefix("http://").split("/")[0].split(":")
        self.upstream, self.after, self.action, self.tls = (host, int(port)), after, action, tls
        self.spoiled = 0  # connections cut or corrupted
        self.forwarded = 0  # bytes clients sent that reached the upstream
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True, name="tampering-proxy").start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                if self.tls is not None:
                    client = self.tls.wrap_socket(client, server_side=True)
                server = socket.create_connection(self.upstream)
                threading.Thread(target=self._up, args=(client, server), daemon=True).start()
                threading.Thread(target=self._down, args=(server, client), daemon=True).start()

    def _spoil(self, sent: int, data: bytes) -> bool:
        with self._lock:
            if self.action == "none" or self.spoiled or sent + len(data) <= self.after:
                return False
            self.spoiled += 1
            return True

    def _up(self, client: socket.socket, server: socket.socket) -> None:
        sent = 0
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                if self._spoil(sent, data):
                    at = self.after - sent
                    if self.action == "cut":
                        server.sendall(data[:at])
                        self.forwarded += at
                        break
                    data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
                server.sendall(data)
                sent += len(data)
                self.forwarded += len(data)
        for sock in (client, server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _down(self, server: socket.socket, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                client.sendall(data)
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._listener.close()
