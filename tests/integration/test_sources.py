"""Sources with real parts on 127.0.0.1 (issue 16): upstream proxies chained behind the network guard
(pproxy, HTTP CONNECT and SOCKS5 with credentials), cookie jars, bandwidth limits, impersonation."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from jobkit import record_events, run_job
from proxykit import self_signed, upstream_proxy

from tornado_engine import Engine, RetryPolicy, Status
from tornado_engine.netguard import NetGuard
from tornado_engine.pipeline import fastpath
from tornado_engine.progress import Event
from tornado_engine.safety import NetworkPolicy
from tornado_engine.sources import JobSources, SourceSettings
from tornado_engine.sources.proxies import parse_proxy
from tornado_engine.sources.ratelimit import Throttle, TokenBucket
from tornado_engine.sources.upstream import open_tunnel
from tornado_engine.testing import MediaServer, MediaSet

pytestmark = pytest.mark.integration

PASSWORD = "pxPASS-4e3d2c1b"
COOKIE = "ckVALUE-8f7e6d5c"
SECRETS = (PASSWORD, COOKIE)


def _clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret[:6]}... leaked into {where}"


async def _engine(tmp_path: Path, events: list[Event], **sources: Any) -> AsyncIterator[Engine]:
    async with Engine.open(data_dir=tmp_path / "engine", poll_interval=0.1, expand_playlists=False,
                           retry=RetryPolicy(max_retries=0), sources=SourceSettings.build(**sources),
                           ) as engine:  # fmt: skip
        record_events(engine, events)
        yield engine


@pytest.mark.parametrize("scheme", ["http", "socks5"])
async def test_every_source_request_goes_through_the_upstream_proxy(
    scheme: str, tmp_path: Path, media_server: MediaServer, media_set: MediaSet,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    events: list[Event] = []
    with upstream_proxy(scheme, "user", PASSWORD) as proxy:
        async for engine in _engine(tmp_path, events, proxy=proxy.url):
            before = media_server.connections
            fast = await run_job(engine, url=media_server.url(media_set.progressive_mp4), timeout=60)
            slow = await run_job(engine, url=media_server.url(media_set.hls_master), timeout=60)
            carried, origin = proxy.tunnels_to(media_server.port), media_server.connections - before
            records = json.dumps([fast.to_api(), slow.to_api()])
    assert (fast.status, slow.status) == (Status.COMPLETED, Status.COMPLETED), records
    assert (fast.download_strategy, slow.download_strategy) == ("fastpath", "ytdlp")
    assert origin > 3 and carried == origin  # every connection the origin saw, the proxy made
    _clean(records + repr(events) + caplog.text, "records, events or logs")


async def test_bad_proxy_credentials_fail_the_job_without_showing_them(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    events: list[Event] = []
    with upstream_proxy("http", "user", "the-right-one") as proxy:
        wrong = f"http://user:{PASSWORD}@127.0.0.1:{proxy.port}"
        async for engine in _engine(tmp_path, events, proxy=wrong):
            before = media_server.connections
            job = await run_job(engine, url=media_server.url(media_set.progressive_mp4), timeout=60)
        assert proxy.refused() >= 1  # the proxy really checks credentials (the recipe's pitfall)
    assert job.status is Status.FAILED
    assert f"proxy http://127.0.0.1:{proxy.port}" in (job.error or ""), job.error
    assert media_server.connections == before  # nothing went around the proxy
    _clean(json.dumps(job.to_api()) + repr(events) + caplog.text + repr(job), "the failure")


async def test_a_redirect_to_a_refused_address_is_refused_with_the_proxy_in_the_chain(
    tmp_path: Path, media_server: MediaServer
) -> None:
    events: list[Event] = []
    with upstream_proxy("socks5", "user", PASSWORD) as proxy:
        async for engine in _engine(tmp_path, events, proxy=proxy.url):
            job = await run_job(engine, url=media_server.url("redirect/169.254.169.254/latest/a.mp4"))
            blocked = engine._runtime._netguard.blocked
    assert job.status is Status.FAILED and blocked >= 1
    assert not any("169.254.169.254" in line for line in proxy.lines)  # judged before the proxy


def _jar(value: str = COOKIE) -> str:
    return f"127.0.0.1\tFALSE\t/\tFALSE\t0\tsid\t{value}\n"


async def test_tenant_cookies_open_the_door_and_stay_sealed(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    events: list[Event] = []
    media_server.cookies["sid"] = COOKIE
    url = media_server.url(f"cookie/sid/{media_set.progressive_mp4}")
    async for engine in _engine(tmp_path, events):
        tenant = engine.tenant("t")
        without = await run_job(tenant, url=url, timeout=60)  # type: ignore[arg-type]
        stored = await tenant.set_cookies(_jar())
        described = await tenant.sources()
        with sqlite3.connect(tmp_path / "engine" / "jobs.db") as db:
            rows = db.execute("SELECT owner, kind, sealed FROM tenant_sources").fetchall()
        fast = await run_job(tenant, url=url, timeout=60)  # type: ignore[arg-type]
        hls = media_server.url(f"cookie/sid/{media_set.hls_master}")
        slow = await run_job(tenant, url=hls, timeout=60)  # type: ignore[arg-type]
        other = await run_job(engine, url=url, timeout=60)  # another tenant: no jar
        removed = await tenant.remove_sources("cookies"), await tenant.remove_sources("cookies")
        gone = await run_job(tenant, url=url, timeout=60)  # type: ignore[arg-type]
    assert without.status is other.status is gone.status is Status.FAILED
    assert removed == (True, False)
    assert (fast.status, fast.download_strategy) == (Status.COMPLETED, "fastpath"), fast.error
    assert slow.status is Status.COMPLETED, slow.error
    assert stored == {"domains": ["127.0.0.1"], "count": 1}
    assert described["cookie_domains"] == ["127.0.0.1"]
    assert [(owner, kind) for owner, kind, _ in rows] == [("t", "cookies")]
    records = json.dumps([j.to_api() for j in (without, fast, slow, other)])
    _clean(records + repr(events) + caplog.text + json.dumps(rows) + repr(described), "records")


async def test_cookies_are_dropped_on_a_redirect_to_another_host(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet
) -> None:
    events: list[Event] = []
    media_server.cookies["sid"] = COOKIE
    target = f"localhost:{media_server.port}/cookie/sid/{media_set.progressive_mp4}"
    async for engine in _engine(tmp_path, events, cookies=_jar()):
        start = len(media_server.seen)
        job = await run_job(engine, url=media_server.url(f"redirect/{target}"), timeout=60)
    seen = media_server.seen[start:]
    assert job.status is Status.FAILED  # localhost got no cookie: 403
    assert any(path.startswith("/redirect/") and "Cookie" in h for path, h in seen)  # sent to 127.0.0.1
    at_target = [h.get("Cookie") for path, h in seen if path.startswith("/cookie/")]
    assert at_target and not any(at_target), seen  # never to the other host


async def test_impersonated_request_reaches_the_local_server(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet
) -> None:
    pytest.importorskip("curl_cffi")
    events: list[Event] = []
    start = len(media_server.seen)
    async for engine in _engine(tmp_path, events, impersonate={"127.0.0.1": "chrome"}):
        job = await run_job(engine, url=media_server.url(media_set.audio_mp3), timeout=60)
        asked = await run_job(engine, url=media_server.url(media_set.progressive_mp4), timeout=60,
                              impersonate="safari-18.0")  # fmt: skip
    assert (job.status, asked.status) == (Status.COMPLETED, Status.COMPLETED), (job.error, asked.error)
    assert job.download_strategy == asked.download_strategy == "ytdlp"  # curl_cffi's, not the fast path's
    assert asked.request.impersonate == "safari-18.0"
    heads = {path: [{k.lower(): v for k, v in h.items()} for p, h in media_server.seen[start:] if p == path]
             for path in ("/audio.mp3", "/progressive.mp4")}  # fmt: skip
    assert heads["/audio.mp3"] and heads["/progressive.mp4"]
    # curl_cffi sends the browser's own headers (yt-dlp's plain requests have no sec-ch-ua)
    assert all("sec-ch-ua" in h and "Chrome/" in h["user-agent"] for h in heads["/audio.mp3"])
    assert all("Chrome/" not in h["user-agent"] for h in heads["/progressive.mp4"])  # the request's safari


async def test_bandwidth_cap_of_two_megabytes_per_second(tmp_path: Path, media_server: MediaServer) -> None:
    """A real 7 MiB download at 2 MiB/s, straight (the fast path's own throttle) and through the guard
    (which meters a job's tunnels, as it does yt-dlp's): the rate is within 15% both ways."""
    rate, size, name = 2 * 1024 * 1024, 7 * 1024 * 1024, "bandwidth.mp4"
    (media_server.root / name).write_bytes(bytes(range(256)) * (size // 256))
    info = {"url": media_server.url(name), "format_id": "mp4", "ext": "mp4", "protocol": "http",
            "filesize": size}  # fmt: skip
    loopback = NetworkPolicy.build(["127.0.0.0/8"])
    guard = NetGuard(loopback)
    guard.start()
    rates = {}
    try:
        for way in ("straight", "guard"):
            bucket = TokenBucket(rate, time.monotonic())
            sources = JobSources(throttle=Throttle(bucket))
            guard.route("bw", None, sources.throttle)
            folder = tmp_path / way
            folder.mkdir()
            started = time.monotonic()
            result = fastpath.download_sync(
                info, folder, on_progress=lambda *a: None, cancel=threading.Event(), sources=sources,
                policy=loopback if way == "straight" else None, proxy=guard.job_proxy("bw"),
            )  # fmt: skip
            assert result is not None and result.bytes == size
            # the bucket starts full: its burst came at once, the rest at the rate
            rates[way] = (size - bucket.burst) / (time.monotonic() - started)
    finally:
        guard.stop()
        (media_server.root / name).unlink()
    for way, measured in rates.items():
        assert abs(measured - rate) / rate < 0.15, f"{way}: {measured / 2**20:.2f} MiB/s"


def _cli(*args: str, home: Path) -> dict[str, Any]:
    env = {**os.environ, "TORNADO_ENGINE_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-m", "tornado_engine", *args], capture_output=True, text=True,
                          env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    _clean(proc.stdout + proc.stderr, f"CLI {args[0]}")
    found: dict[str, Any] = json.loads(proc.stdout)
    return found


def test_cli_sources_and_tenant_commands(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet
) -> None:
    media_server.cookies["sid"] = COOKIE
    jar, pool = tmp_path / "cookies.txt", tmp_path / "proxies.txt"
    jar.write_text(_jar())
    url, home = media_server.url(f"cookie/sid/{media_set.progressive_mp4}"), tmp_path / "home"
    with upstream_proxy("socks5", "user", PASSWORD) as proxy:
        found = _cli("metadata", url, "--json", "--proxy", proxy.url, "--cookies", str(jar),
                     "--limit-rate", "4M", home=home)  # fmt: skip
        assert proxy.tunnels_to(media_server.port) >= 1  # the resolve went through the proxy
    assert found["title"] == "progressive"  # found: the cookie opened the door (403 without it)
    pool.write_text(f"# one a line\n{proxy.url}\n")
    assert _cli("tenant", "set-cookies", str(jar), "--tenant", "t", "--json", home=home) == {
        "domains": ["127.0.0.1"], "count": 1}  # fmt: skip
    _cli("tenant", "set-proxies", str(pool), "--rule", "per_host", "--tenant", "t", home=home)
    assert _cli("tenant", "sources", "--tenant", "t", home=home) == {
        "cookie_domains": ["127.0.0.1"], "proxies": [f"socks5://127.0.0.1:{proxy.port}"],
        "proxy_rule": "per_host"}  # fmt: skip


async def test_an_https_proxy_tunnel(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard's tunnel through an ``https://`` proxy: TLS to the proxy (verified), CONNECT inside."""
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the proxy's certificate is the one trusted here
    with upstream_proxy("http", "user", PASSWORD, tls=(cert, key)) as proxy:
        spec = parse_proxy(proxy.url)
        reader, writer = await open_tunnel(spec, "127.0.0.1", "127.0.0.1", media_server.port, limit=65536)
        writer.write(f"HEAD /{media_set.progressive_mp4} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        writer.close()
        monkeypatch.delenv("SSL_CERT_FILE")  # an untrusted certificate is refused, naming the proxy
        with pytest.raises(OSError, match=rf"proxy https://127.0.0.1:{proxy.port}: cannot connect"):
            await open_tunnel(spec, "127.0.0.1", "127.0.0.1", media_server.port, limit=65536)
    assert head.startswith(b"HTTP/1.1 200") and proxy.tunnels_to(media_server.port) == 1
