"""Every stage fails with secrets configured; no secret shows up in job records, errors, logs, webhook
payloads, CLI output or reprs. A job that completes logs its whole story at DEBUG without one either.
The tenant's sources carry secrets too: its cookies and the password of the upstream proxy every source
request goes through."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from jobkit import webhook_receiver
from proxykit import upstream_proxy
from storage_fixtures import BUCKET, S3_REGION

from tornado_engine import Engine, RetryPolicy, Status, StoreError
from tornado_engine.cli_logs import JsonFormatter, TextFormatter
from tornado_engine.models import Job
from tornado_engine.storage import S3Config, StorageTarget
from tornado_engine.store import open_store
from tornado_engine.tenant_view import TenantView
from tornado_engine.testing import MediaServer, MediaSet
from tornado_engine.webhooks import WebhookPolicy, generate_secret

pytestmark = pytest.mark.integration

SOURCE_TOKEN = "srcTOKEN-5f1e2d3c"
HOOK_TOKEN = "hookTOKEN-9a8b7c6d"
S3_SECRET = "s3SECRET-0123456789abcdef"
DSN_PASSWORD = "dsnPASSWORD-77aa"
PROXY_PASSWORD = "proxyPASSWORD-3c2b1a"
COOKIE_VALUE = "cookieVALUE-6e5d4c3b"
WEBHOOK_SECRET = generate_secret()
SECRETS = [SOURCE_TOKEN, HOOK_TOKEN, S3_SECRET, DSN_PASSWORD, WEBHOOK_SECRET, WEBHOOK_SECRET[6:],
           PROXY_PASSWORD, COOKIE_VALUE]  # fmt: skip


@pytest.fixture
def hook() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []
    with webhook_receiver(lambda body, _headers: bodies.append(body)) as base:
        yield f"{base}/hook?token={HOOK_TOKEN}", bodies


@pytest.fixture
def junk_server(tmp_path: Path) -> Iterator[MediaServer]:
    root = tmp_path / "junk"
    root.mkdir()
    (root / "junk.mp4").write_bytes(b"this is not media at all\n" * 400)
    with MediaServer(root) as server:
        yield server


def _assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret[:6]}... leaked into {where}"


async def test_no_secret_leaks_from_any_failing_stage(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet, junk_server: MediaServer,
    s3_iam: tuple[str, str, str], hook: tuple[str, list[bytes]], caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    hook_url, bodies = hook
    endpoint, key, _ = s3_iam  # checks signatures: our secret is wrong on purpose
    bad_s3 = S3Config(bucket=BUCKET, region=S3_REGION, endpoint_url=endpoint, access_key_id=key,
                      secret_access_key=S3_SECRET)  # fmt: skip
    token = f"?token={SOURCE_TOKEN}"
    cases = {
        "resolve": media_server.url(f"status/404/gone.mp4{token}"),
        "download": media_server.url(f"drop/{media_set.progressive_mp4}{token}"),
        "mux": junk_server.url(f"junk.mp4{token}"),
        "upload": media_server.url(f"{media_set.progressive_mp4}{token}"),
    }
    data = tmp_path / "engine"
    with upstream_proxy("http", "user", PROXY_PASSWORD) as proxy:
        async with Engine.open(
            data_dir=data, poll_interval=0.1, webhook_secrets=[WEBHOOK_SECRET],
            webhook_policy=WebhookPolicy(timeout=5), retry=RetryPolicy(max_retries=1, base_delay=0.01),
        ) as engine:  # fmt: skip
            tenant = engine.tenant("t")
            await tenant.configure_storage(bad_s3, verify=False)  # accepted unverified: fails at upload
            await tenant.set_cookies([{"domain": "127.0.0.1", "name": "sid", "value": COOKIE_VALUE}])
            await tenant.set_proxies([proxy.url])
            jobs = await _run_cases(tenant, cases, hook_url, bodies)
            reprs = [repr(engine), repr(tenant), repr(bad_s3), repr(StorageTarget(bad_s3))]
            reprs += [repr(j) for j in jobs.values()] + [repr(j.request) for j in jobs.values()]
            reprs += [repr(engine._runtime.sources), repr(await tenant.sources())]
            listed = [j.to_api() for j in await tenant.list_jobs(limit=100)]
        assert proxy.tunnels_to(media_server.port) >= len(cases)  # the sources were reached through it
    with sqlite3.connect(data / "jobs.db") as db:  # sealed at rest
        _assert_clean(repr(db.execute("SELECT * FROM tenant_sources").fetchall()), "the stored sources")

    assert {stage: job.status for stage, job in jobs.items()} == dict.fromkeys(cases, Status.FAILED)
    assert jobs["upload"].error_type == "error" and jobs["upload"].upload_retries == 0
    assert len(bodies) == len(cases)
    _assert_clean(json.dumps(listed), "job records")
    _assert_clean(" ".join(j.error or "" for j in jobs.values()), "errors")
    _assert_clean(b"".join(bodies).decode(), "webhook payloads")
    _assert_clean(caplog.text, "logs")
    _assert_clean(" ".join(reprs), "reprs")
    await _check_cli_and_store(data, jobs["upload"].id)


async def _run_cases(
    tenant: TenantView, cases: dict[str, str], hook_url: str, bodies: list[bytes]
) -> dict[str, Job]:
    jobs = {}
    for stage, url in cases.items():
        created = await tenant.create_job({"url": url, "webhook_url": hook_url, "filename": stage})
        jobs[stage] = await tenant.wait(created.job_id, timeout=90)
    for _ in range(100):
        if len(bodies) >= len(cases):
            break
        await asyncio.sleep(0.1)
    return jobs


async def _check_cli_and_store(data: Path, upload_job: str) -> None:
    env = {**os.environ, "TORNADO_ENGINE_HOME": str(data)}
    for args in (["jobs", "list", "--tenant", "t", "--json"], ["usage", "--tenant", "t", "--json"],
                 ["jobs", "get", upload_job, "--tenant", "t"],
                 ["tenant", "sources", "--tenant", "t"]):  # fmt: skip
        proc = subprocess.run([sys.executable, "-m", "tornado_engine", *args], capture_output=True, text=True,
                              env=env, timeout=60, check=True)  # fmt: skip
        _assert_clean(proc.stdout + proc.stderr, f"CLI {args[0]} {args[1]}")

    dsn = f"postgresql://tornado:{DSN_PASSWORD}@127.0.0.1:1/nothing"  # nothing listens on port 1
    store = open_store(dsn)
    _assert_clean(repr(store), "the store's repr")
    with pytest.raises(StoreError) as refused:
        await asyncio.wait_for(store.open(), 60)
    _assert_clean(str(refused.value), "the store's error")


async def test_a_full_runs_log_at_debug_has_no_secret(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet, hook: tuple[str, list[bytes]],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """Every record of a completed job's run (submit, claim, stages, end, webhook), in both CLI formats."""
    caplog.set_level(logging.DEBUG)
    hook_url, bodies = hook
    url = media_server.url(f"{media_set.progressive_mp4}?token={SOURCE_TOKEN}")
    async with Engine.open(data_dir=tmp_path / "engine", poll_interval=0.1,
                           webhook_secrets=[WEBHOOK_SECRET]) as engine:  # fmt: skip
        created = await engine.create_job(
            {"url": url, "webhook_url": hook_url, "enable_progress_webhook": True}
        )
        job = await engine.wait(created.job_id, timeout=90)
        for _ in range(100):
            if len(bodies) >= 5:  # downloading, download_complete, muxing, ... completed, job_completed
                break
            await asyncio.sleep(0.1)
    assert job.status is Status.COMPLETED
    story = [r for r in caplog.records if getattr(r, "job_id", None) == job.id]
    assert {r.name for r in story} >= {"tornado_engine.job", "tornado_engine.stage"}
    for formatter in (TextFormatter(), JsonFormatter()):
        _assert_clean("\n".join(formatter.format(r) for r in caplog.records), type(formatter).__name__)
