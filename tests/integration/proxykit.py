"""Upstream proxies for the source tests: pproxy on 127.0.0.1, one scheme per listener (with credentials
on a combined ``http+socks5`` listener pproxy enforces none: shared/recipes/sources-and-ops.md; nor on its
TLS listener, ``http+ssl``, seen here: an HTTPS proxy test cannot rely on it refusing)."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


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
        scheme = "http" if self.scheme == "https" else self.scheme  # pproxy logs its TLS listener as http
        pattern = re.compile(rf"^{scheme} \S+ -> 127\.0\.0\.1:{port}$")
        return sum(1 for line in list(self.lines) if pattern.match(line.strip()))

    def refused(self) -> int:
        return sum(1 for line in list(self.lines) if "Unauthorized" in line or "Authentication" in line)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, as PEM files in ``folder``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = folder / "proxy-cert.pem", folder / "proxy-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_file, key_file


@contextlib.contextmanager
def upstream_proxy(
    scheme: str, user: str, password: str, tls: tuple[Path, Path] | None = None
) -> Iterator[UpstreamProxy]:
    """pproxy listening for ``scheme`` (http or socks5; with ``tls`` (cert, key): http over TLS, an
    ``https://`` proxy) with basic credentials, as a child process."""
    proxy = UpstreamProxy("https" if tls else scheme, _free_port(), user, password)
    listen = f"{scheme}{'+ssl' if tls else ''}://127.0.0.1:{proxy.port}#{user}:{password}"
    extra = ["--ssl", f"{tls[0]},{tls[1]}"] if tls else []
    child = subprocess.Popen([sys.executable, "-m", "pproxy", "-l", listen, "-v", *extra],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
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
