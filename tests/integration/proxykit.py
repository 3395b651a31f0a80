"""Upstream proxies for the source tests: pproxy on 127.0.0.1, one scheme per listener (with credentials
on a combined ``http+socks5`` listener pproxy enforces none: shared/recipes/sources-and-ops.md)."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class UpstreamProxy:
    scheme: str
    port: int
    user: str
    password: str
    lines: list[str] = field(default_factory=list)  # pproxy -v: one line per connection it carried

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.user}:{self.password}@127.0.0.1:{self.port}"

    def tunnels_to(self, port: int) -> int:
        """Connections it opened to 127.0.0.1:``port`` (``http 127.0.0.1:5605 -> 127.0.0.1:PORT``)."""
        pattern = re.compile(rf"^{self.scheme} \S+ -> 127\.0\.0\.1:{port}$")
        return sum(1 for line in list(self.lines) if pattern.match(line.strip()))

    def refused(self) -> int:
        return sum(1 for line in list(self.lines) if "Unauthorized" in line or "Authentication" in line)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def upstream_proxy(scheme: str, user: str, password: str) -> Iterator[UpstreamProxy]:
    """pproxy listening for ``scheme`` (http or socks5) with basic credentials, as a child process."""
    proxy = UpstreamProxy(scheme, _free_port(), user, password)
    listen = f"{scheme}://127.0.0.1:{proxy.port}#{user}:{password}"
    child = subprocess.Popen([sys.executable, "-m", "pproxy", "-l", listen, "-v"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)  # fmt: skip
    assert child.stdout is not None
    stdout = child.stdout

    def read() -> None:
        for line in stdout:
            proxy.lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + 15
        while not any("Serving on" in line for line in proxy.lines):
            assert child.poll() is None and time.monotonic() < deadline, "pproxy did not start"
            time.sleep(0.05)
        yield proxy
    finally:
        child.terminate()
        child.wait(10)
