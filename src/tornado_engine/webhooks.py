"""Webhooks: payloads, Standard Webhooks signatures, and one delivery attempt (no redirects followed).

Signing follows the Standard Webhooks spec: ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, one ``v1,`` entry per secret
so receivers keep verifying while keys rotate. Secrets look like ``whsec_<base64>``.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import hmac
import json
import random
import secrets
import ssl
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InvalidRequest
from .models import Job
from .safety import NetworkPolicy, redact

__all__ = [
    "DeliveryResult",
    "WebhookPolicy",
    "batch_payload",
    "deliver",
    "encode",
    "generate_secret",
    "job_payload",
    "parse_secrets",
    "progress_payload",
    "sign",
    "signature_header",
]

_PREFIX = "whsec_"
_PROGRESS_EVENTS = {
    "downloading": 0,
    "download_complete": 33,
    "muxing": 33,
    "mux_complete": 66,
    "uploading": 66,
    "completed": 100,
}


def generate_secret() -> str:
    return _PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    if not secret.startswith(_PREFIX):
        raise InvalidRequest("webhook secrets must start with 'whsec_'", field="webhook_secret")
    try:
        return base64.b64decode(secret[len(_PREFIX) :], validate=True)
    except ValueError:
        raise InvalidRequest(
            "webhook secret is not valid base64 after 'whsec_'", field="webhook_secret"
        ) from None


def parse_secrets(value: str | Sequence[str], field: str = "webhook_secrets") -> list[str]:
    """``Engine(webhook_secrets=)``: one secret (a str) or several (newest first), each checked now, so a
    malformed one is refused at open instead of leaving every delivery unsigned."""
    found = [value] if isinstance(value, str) else list(value)
    if not found:
        raise InvalidRequest(f"{field}: give at least one secret (or leave it unset)", field=field)
    for position, secret in enumerate(found, 1):
        if not isinstance(secret, str):
            raise InvalidRequest(f"{field}: secret {position} is a {type(secret).__name__}, not a str", field)
        try:
            if not _key(secret):
                raise InvalidRequest("webhook secret is empty after 'whsec_'", field=field)
        except InvalidRequest as exc:  # the message names the option; never the secret itself
            raise InvalidRequest(f"{field}: secret {position}: {exc.message}", field=field) from None
    return found


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def signature_header(secrets_: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets_)


# -- payloads (TornadoAPI's events) ------------------------------------------------------------------


def job_payload(event: str, job: Job) -> dict[str, Any]:
    base: dict[str, Any] = {"event": event, "job_id": job.id, "status": job.status.value}
    if event == "job_completed":
        base.update(
            key=job.storage_key, folder=job.folder, title=job.title, description=job.description,
            release_date=job.release_date, url=job.s3_url, subtitle_url=job.subtitle_url,
            file_size=job.file_size, batch_id=job.batch_id,
        )  # fmt: skip
    elif event == "job_skipped":
        base.update(reason=job.error, error_type=job.error_type, batch_id=job.batch_id)
    else:
        base.update(error=job.error, error_type=job.error_type, batch_id=job.batch_id)
    return {k: v for k, v in base.items() if v is not None}


def progress_payload(event: str, job: Job) -> dict[str, Any]:
    return {"event": event, "job_id": job.id, "progress": _PROGRESS_EVENTS[event], "step": job.step.value}


def batch_payload(batch_id: str, completed: int, failed: int, total: int) -> dict[str, Any]:
    return {"event": "batch_completed", "batch_id": batch_id, "completed": completed, "failed": failed,
            "total": total}  # fmt: skip


# -- delivery ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookPolicy:
    max_attempts: int = 4  # the first try and TornadoAPI's 3 retries
    base_delay: float = 2.0
    max_delay: float = 3600.0
    timeout: float = 30.0

    def next_delay(self, attempts: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(self.max_delay, max(0.0, retry_after))
        ceiling = min(self.max_delay, self.base_delay * 2 ** min(attempts - 1, 30))
        return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class DeliveryResult:
    delivered: bool
    give_up: bool  # 410 Gone: the receiver asked us to stop
    status: int | None
    error: str | None
    retry_after: float | None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


async def deliver(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    policy: NetworkPolicy,
    timeout: float,
    secrets_: Sequence[str] = (),
) -> DeliveryResult:
    """POST once to the address the policy checked (no DNS rebinding), never following redirects."""
    parts = urllib.parse.urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    try:
        addresses = await asyncio.get_running_loop().run_in_executor(
            None, policy.check_url, url, "webhook_url"
        )
    except InvalidRequest as exc:
        return DeliveryResult(False, False, None, exc.message, None)
    context = ssl.create_default_context() if https else None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\nUser-Agent: tornado-engine\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + "\r\n"
    ).encode() + body
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                str(addresses[0]), port, ssl=context, server_hostname=parts.hostname if https else None
            )
            try:
                writer.write(request)
                await writer.drain()
                status_line = await reader.readline()
                head = await reader.readuntil(b"\r\n\r\n")
            finally:
                writer.close()
    except (
        OSError,
        TimeoutError,
        asyncio.IncompleteReadError,
        asyncio.LimitOverrunError,
        ssl.SSLError,
    ) as exc:
        text = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
        return DeliveryResult(False, False, None, redact(f"connection failed: {text}", secrets_), None)
    try:
        status = int(status_line.split()[1])
    except (IndexError, ValueError):
        return DeliveryResult(False, False, None, "malformed HTTP response", None)
    header_map = {
        k.strip().lower(): v.strip()
        for k, _, v in (line.partition(":") for line in head.decode("latin-1").split("\r\n") if line)
    }
    if 200 <= status < 300:
        return DeliveryResult(True, False, status, None, None)
    error = f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
    return DeliveryResult(False, status == 410, status, error, _retry_after(header_map.get("retry-after")))


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
