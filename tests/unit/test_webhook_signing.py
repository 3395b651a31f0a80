"""Webhook signatures (checked with the Standard Webhooks reference library), payloads, backoff."""

from __future__ import annotations

import random
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tornado_engine.errors import InvalidRequest
from tornado_engine.models import Job, JobRequest
from tornado_engine.states import Status, Step
from tornado_engine.webhooks import (
    WebhookPolicy,
    _retry_after,
    batch_payload,
    encode,
    generate_secret,
    job_payload,
    progress_payload,
    sign,
    signature_header,
)


def _verify(secret: str, msg_id: str, ts: int, body: bytes, header: str) -> object:
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": header}
    return Webhook(secret).verify(body, headers)


def test_signature_verifies_with_the_reference_library() -> None:
    secret = generate_secret()
    body = encode({"event": "job_completed", "job_id": "j1"})
    ts = int(time.time())
    assert _verify(secret, "msg_1", ts, body, sign(secret, "msg_1", ts, body)) == {
        "event": "job_completed", "job_id": "j1",
    }  # fmt: skip
    with pytest.raises(WebhookVerificationError):
        _verify(secret, "msg_1", ts, body + b" ", sign(secret, "msg_1", ts, body))
    with pytest.raises(WebhookVerificationError):
        _verify(generate_secret(), "msg_1", ts, body, sign(secret, "msg_1", ts, body))


def test_rotation_sends_one_signature_per_secret() -> None:
    old, new = generate_secret(), generate_secret()
    body, ts = b'{"a":1}', int(time.time())
    header = signature_header([new, old], "msg_2", ts, body)
    assert header.count("v1,") == 2
    _verify(old, "msg_2", ts, body, header)  # a receiver still on the old key accepts it
    _verify(new, "msg_2", ts, body, header)


def test_bad_secret_refused() -> None:
    with pytest.raises(InvalidRequest, match="whsec_"):
        sign("plain-secret", "m", 1, b"")


def _job(status: Status) -> Job:
    job = Job(id="j1", url="https://h.example/v", request=JobRequest(url="https://h.example/v"))
    job.status, job.step = status, Step.FINISHED
    job.title, job.storage_key, job.s3_url, job.error = "T", "videos/t.mp4", "https://s/t.mp4", "boom"
    return job


def test_payloads() -> None:
    done = job_payload("job_completed", _job(Status.COMPLETED))
    assert (
        done["event"] == "job_completed"
        and done["key"] == "videos/t.mp4"
        and done["url"] == "https://s/t.mp4"
    )
    assert "error" not in done
    failed = job_payload("job_failed", _job(Status.FAILED))
    assert failed["error"] == "boom" and "url" not in failed
    assert job_payload("job_skipped", _job(Status.SKIPPED))["reason"] == "boom"
    assert progress_payload("muxing", _job(Status.PROCESSING))["progress"] == 33
    assert batch_payload("b1", 2, 1, 3) == {"event": "batch_completed", "batch_id": "b1", "completed": 2,
                                            "failed": 1, "total": 3}  # fmt: skip


def test_backoff_and_retry_after() -> None:
    policy = WebhookPolicy(base_delay=2, max_delay=60)
    random.seed(3)
    delays = [policy.next_delay(n, None) for n in range(1, 8)]
    assert all(1 <= d <= 60 for d in delays) and delays[-1] >= 30
    assert policy.next_delay(1, 7.0) == 7.0
    assert policy.next_delay(1, 99999.0) == 60
    assert _retry_after("5") == 5.0
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert _retry_after("garbage") is None and _retry_after(None) is None
