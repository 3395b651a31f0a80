"""Webhook delivery from real jobs to a receiver on 127.0.0.1: signatures, retries, Retry-After, 410, no
redirects, a dead receiver that never delays the job, and delivery after a crash."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from tornado_engine import Engine, JobRequest, Status
from tornado_engine.outbox import job_messages
from tornado_engine.testing import MediaServer, MediaSet
from tornado_engine.webhooks import WebhookPolicy, generate_secret

pytestmark = pytest.mark.integration

SECRET = generate_secret()


@dataclass
class Receiver:
    url: str
    calls: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    # path -> statuses to answer in turn (the last one repeats)
    script: dict[str, list[int]] = field(default_factory=dict)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [c["body"] for c in self.calls[path]]

    async def wait_for(self, path: str, count: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.calls[path]) < count:
            assert time.monotonic() < deadline, f"{path}: {len(self.calls[path])} calls of {count}"
            await asyncio.sleep(0.05)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            verified = Webhook(SECRET).verify(body, headers)  # raises on a bad signature
            state.calls[self.path].append({"headers": headers, "body": verified})
            if self.path == "/slow":
                time.sleep(3)
            statuses = state.script.get(self.path, [200])
            status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "1")
            if status == 302:
                self.send_header("Location", "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()


def _engine(tmp_path: Path, **options: Any) -> Any:
    policy = WebhookPolicy(max_attempts=3, base_delay=0.2, max_delay=2, timeout=1)
    return Engine.open(data_dir=tmp_path / "engine", poll_interval=0.1, webhook_secrets=[SECRET],
                       webhook_policy=policy, **options)  # fmt: skip


async def test_completed_and_failed_jobs_post_signed_events(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet, receiver: Receiver
) -> None:
    async with _engine(tmp_path) as engine:
        ok = await engine.create_job(
            JobRequest(url=media_server.url(media_set.progressive_mp4), webhook_url=receiver.url + "/ok",
                       enable_progress_webhook=True)
        )  # fmt: skip
        bad = await engine.create_job(
            JobRequest(url=media_server.url("status/404/x.mp4"), webhook_url=receiver.url + "/ok")
        )
        await engine.wait(ok.job_id, timeout=60)
        await engine.wait(bad.job_id, timeout=60)
        await receiver.wait_for("/ok", 8)  # 6 stage events + 2 terminal events
        events = {(b["event"], b["job_id"]) for b in receiver.bodies("/ok")}
        assert ("job_completed", ok.job_id) in events and ("job_failed", bad.job_id) in events
        stages = [b["event"] for b in receiver.bodies("/ok") if b["job_id"] == ok.job_id and "progress" in b]
        assert sorted(stages) == sorted(
            ["downloading", "download_complete", "muxing", "mux_complete", "uploading", "completed"]
        )
        completed = next(b for b in receiver.bodies("/ok") if b["event"] == "job_completed")
        assert completed["url"].startswith("file://") and completed["key"]
        job = await engine.get_job(ok.job_id)
        for _ in range(50):
            if job.webhook_status == "delivered":
                break
            await asyncio.sleep(0.1)
            job = await engine.get_job(ok.job_id)
        # one attempt, or more when a loaded machine let the 1 s delivery timeout pass: then the same event
        assert job.to_api()["webhook_status"] == "delivered" and job.webhook_attempts >= 1
        finals = [c for c in receiver.calls["/ok"] if c["body"]["event"] == "job_completed"]
        assert 1 <= len(finals) <= job.webhook_attempts
        assert len({c["headers"]["webhook-id"] for c in finals}) == 1


async def test_retries_keep_the_same_id_and_honour_retry_after(
    tmp_path: Path, media_server: MediaServer, receiver: Receiver
) -> None:
    receiver.script = {"/flaky": [500, 429, 200], "/gone": [410], "/redirect": [302], "/ok": [200]}
    async with _engine(tmp_path) as engine:
        ids = {}
        for path in ("/flaky", "/gone", "/redirect"):
            created = await engine.create_job(
                {"url": media_server.url("status/404/x"), "webhook_url": receiver.url + path}
            )
            ids[path] = created.job_id
        await receiver.wait_for("/flaky", 3)
        flaky = receiver.calls["/flaky"]
        assert len({c["headers"]["webhook-id"] for c in flaky}) == 1  # one id on every retry
        gap = int(flaky[2]["headers"]["webhook-timestamp"]) - int(flaky[1]["headers"]["webhook-timestamp"])
        assert gap >= 1  # Retry-After: 1 honoured
        await receiver.wait_for("/redirect", 3)
        await asyncio.sleep(1.0)
        assert len(receiver.calls["/gone"]) == 1  # 410 stops further attempts
        assert receiver.calls["/ok"] == []  # the redirect was never followed
        statuses = {path: (await engine.get_job(job_id)) for path, job_id in ids.items()}
        assert statuses["/flaky"].webhook_status == "delivered" and statuses["/flaky"].webhook_attempts == 3
        assert statuses["/gone"].webhook_status == "failed" and statuses["/gone"].webhook_attempts == 1
        assert (
            statuses["/redirect"].webhook_status == "failed" and statuses["/redirect"].webhook_attempts == 3
        )


async def test_slow_or_dead_receiver_never_delays_the_job(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet, receiver: Receiver
) -> None:
    async with _engine(tmp_path) as engine:
        started = time.monotonic()
        slow = await engine.create_job(
            {"url": media_server.url(media_set.progressive_mp4), "webhook_url": receiver.url + "/slow",
             "enable_progress_webhook": True}
        )  # fmt: skip
        dead = await engine.create_job(
            {"url": media_server.url(media_set.progressive_mp4), "webhook_url": "http://127.0.0.1:9/dead",
             "filename": "dead"}
        )  # fmt: skip
        jobs = [await engine.wait(slow.job_id, timeout=60), await engine.wait(dead.job_id, timeout=60)]
        assert all(j.status is Status.COMPLETED for j in jobs)
        assert time.monotonic() - started < 10  # six 3-second stage deliveries were not waited for


async def test_batch_completed_event(
    tmp_path: Path, media_server: MediaServer, media_set: MediaSet, receiver: Receiver
) -> None:
    async with _engine(tmp_path) as engine:
        created = await engine.create_playlist(
            {"url": media_server.url(media_set.feed_xml), "webhook_url": receiver.url + "/ok"}
        )
        await receiver.wait_for("/ok", 4, timeout=60)
        batch_events = [b for b in receiver.bodies("/ok") if b["event"] == "batch_completed"]
        assert batch_events == [
            {
                "event": "batch_completed",
                "batch_id": created.batch_id,
                "completed": 3,
                "failed": 0,
                "total": 3,
            }
        ]


async def test_event_written_before_a_crash_is_delivered_after_restart(
    tmp_path: Path, media_server: MediaServer, receiver: Receiver
) -> None:
    # The terminal write and its outbox row commit together; the process then dies before delivering.
    async with _engine(tmp_path, run_jobs=False) as engine:
        created = await engine.create_job(
            {"url": media_server.url("status/404/x"), "webhook_url": receiver.url + "/ok"}
        )
        [claim] = await engine.store.claim("doomed-worker", 1, 30)
        claim.job.status, claim.job.error = Status.FAILED, "boom"
        await engine.store.save(claim.job, claim.token, job_messages(claim.job))
    assert receiver.calls["/ok"] == []
    async with _engine(tmp_path) as engine:
        await receiver.wait_for("/ok", 1)
        assert receiver.bodies("/ok") == [
            {"event": "job_failed", "job_id": created.job_id, "status": "Failed", "error": "boom"}
        ]
        assert json.loads(json.dumps(receiver.calls["/ok"][0]["headers"]))["webhook-id"] == (
            f"msg_{created.job_id}_job_failed"
        )
