"""An origin that cannot be reached (a dead port, a host that does not resolve) is the source's network
failure: the job says what happened at the origin, never the network guard's 502, and is retried.

Host names are looked up with an injected resolver (``Engine(resolver=...)``) that fails ``.invalid`` names
at once: no test sends a DNS query off this machine.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tornado_engine import Engine, JobRequest, ResolveError, RetryPolicy, Status
from tornado_engine.netguard import NetGuard
from tornado_engine.safety import NetworkPolicy

pytestmark = pytest.mark.integration

RETRIES = 2
LOOPBACK = ["127.0.0.0/8"]


def offline_resolver(host: str, port: int) -> Sequence[str]:
    """Names under ``.invalid`` fail like a DNS miss; literal addresses resolve without a lookup."""
    if host.lower().rstrip(".").endswith(".invalid"):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, flags=socket.AI_NUMERICHOST)]


@pytest.fixture
def dead_port() -> int:
    with socket.socket() as s:  # free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def guard() -> Iterator[NetGuard]:
    guard = NetGuard(NetworkPolicy.build(LOOPBACK, offline_resolver), connect_timeout=5)
    guard.start()
    yield guard
    guard.stop()


@pytest.fixture
async def engine(tmp_path: Path) -> Any:
    policy = RetryPolicy(max_retries=RETRIES, base_delay=0.01, max_delay=0.05)
    async with Engine.open(
        data_dir=tmp_path / "engine", poll_interval=0.1, retry=policy, expand_playlists=False,
        allow_networks=LOOPBACK, resolver=offline_resolver,
    ) as eng:  # fmt: skip
        yield eng


def _ask(proxy: str, request: str) -> bytes:
    host, port = proxy.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request.encode())
        return sock.recv(400)


def test_guard_answers_a_dead_port_with_the_origins_cause(guard: NetGuard, dead_port: int) -> None:
    head = _ask(guard.url, f"GET http://127.0.0.1:{dead_port}/v.mp4 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.startswith(
        f"HTTP/1.1 502 Origin unreachable (Connection refused by 127.0.0.1:{dead_port})\r\n".encode()
    )


def test_guard_answers_an_unresolvable_host_as_unreachable_not_blocked(guard: NetGuard) -> None:
    head = _ask(guard.url, "CONNECT media.invalid:443 HTTP/1.1\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 502 Origin unreachable (Cannot resolve host media.invalid)\r\n")
    assert guard.blocked == 0  # a DNS miss is no policy refusal


async def test_dead_port_job_fails_with_connection_refused_after_retries(
    engine: Engine, dead_port: int
) -> None:
    created = await engine.create_job(JobRequest(url=f"http://127.0.0.1:{dead_port}/v.mp4"))
    job = await engine.wait(created.job_id, timeout=60)
    assert (job.status, job.error_type, job.download_retries) == (Status.FAILED, "error", RETRIES)
    assert job.error == f"Connection refused by 127.0.0.1:{dead_port}"


async def test_unresolvable_host_is_accepted_then_fails_as_a_network_failure(engine: Engine) -> None:
    created = await engine.create_job(JobRequest(url="http://nonexistent.invalid/v.mp4"))  # no InvalidRequest
    job = await engine.wait(created.job_id, timeout=60)
    assert (job.status, job.error_type, job.download_retries) == (Status.FAILED, "error", RETRIES)
    assert job.error == "Cannot resolve host nonexistent.invalid"


async def test_metadata_of_an_unresolvable_host_is_a_network_failure(engine: Engine) -> None:
    with pytest.raises(ResolveError) as caught:
        await engine.extract_metadata("https://nonexistent.invalid/v.mp4")
    assert (caught.value.kind, caught.value.message) == ("network", "Cannot resolve host nonexistent.invalid")


async def test_metadata_of_a_dead_https_port_names_the_refusal(engine: Engine, dead_port: int) -> None:
    with pytest.raises(ResolveError) as caught:  # a CONNECT tunnel the guard cannot open
        await engine.extract_metadata(f"https://127.0.0.1:{dead_port}/v.mp4")
    assert (caught.value.kind, caught.value.message) == (
        "network",
        f"Connection refused by 127.0.0.1:{dead_port}",
    )
