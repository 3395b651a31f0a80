"""Delivers the webhook outbox in the background: signed, retried with backoff, never blocking a job.

Events are written to the store's outbox in the same transaction as the job's terminal status, so a
crash between the two cannot lose one; this dispatcher (in any engine process sharing the store) leases
due messages, POSTs them and records the outcome. Every attempt of a message carries the same
``webhook-id``, so receivers can deduplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import StoreError
from .models import Job
from .safety import NetworkPolicy, redact
from .states import Status, Step
from .store.base import JobStore, OutboxMessage
from .store.rules import BATCH_COMPLETED, BatchSummary
from .story import shown_url, webhook_outcome
from .supervise import restart_delay, supervised_task
from .webhooks import (
    WebhookPolicy,
    batch_payload,
    deliver,
    encode,
    generate_secret,
    job_payload,
    progress_payload,
    signature_header,
)

__all__ = [
    "SECRETS_ENV",
    "WebhookDispatcher",
    "default_secrets",
    "job_messages",
    "load_or_create_secret",
    "progress_messages",
]

_log = logging.getLogger("tornado_engine.webhooks")

_TERMINAL_EVENTS = {
    Status.COMPLETED: "job_completed",
    Status.FAILED: "job_failed",
    Status.WARNING: "job_skipped",  # a content issue: nothing to retry, reported with its reason
    Status.SKIPPED: "job_skipped",
    Status.CANCELLED: "job_cancelled",
}


def _payload(message: OutboxMessage) -> dict[str, Any]:
    """The JSON receivers get: a batch's message holds the store's neutral summary, rendered here."""
    if message.event != BATCH_COMPLETED:
        return message.payload
    summary = BatchSummary.from_data(message.payload)
    return batch_payload(summary.batch_id, summary.completed, summary.failed, summary.total)


def job_messages(job: Job) -> list[OutboxMessage]:
    """The terminal event of a job that has a webhook URL (none otherwise)."""
    url = job.request.webhook_url
    event = _TERMINAL_EVENTS.get(job.status)
    if not url or event is None:
        return []
    return [OutboxMessage(f"msg_{job.id}_{event}", job.owner, url, event, job_payload(event, job), job.id)]


_STAGE_EVENTS = {
    Step.DOWNLOADING: ("downloading",),
    Step.MUXING: ("download_complete", "muxing"),
    Step.UPLOADING: ("mux_complete", "uploading"),
    Step.FINISHED: ("completed",),
}


def progress_messages(job: Job, step: Step) -> list[OutboxMessage]:
    """Stage events for ``enable_progress_webhook`` jobs; ids are stable, so a re-run sends none twice."""
    url = job.request.webhook_url
    if not url or not job.request.enable_progress_webhook:
        return []
    return [
        OutboxMessage(f"msg_{job.id}_{event}", job.owner, url, event, progress_payload(event, job), job.id)
        for event in _STAGE_EVENTS.get(step, ())
    ]


SECRETS_ENV = "TORNADO_WEBHOOK_SECRETS"


def default_secrets(data_dir: Path) -> list[str]:
    """``$TORNADO_WEBHOOK_SECRETS`` (comma separated, newest first; what several workers must share),
    else one kept in the data folder."""
    from_env = [s.strip() for s in os.environ.get(SECRETS_ENV, "").split(",") if s.strip()]
    return from_env or [load_or_create_secret(data_dir)]


def load_or_create_secret(data_dir: Path) -> str:
    """The engine's signing secret, kept in the data folder (mode 0600) when none is configured."""
    path = data_dir / "webhook_secret"
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    # written whole under a private name, then linked into place: an engine starting at the same time
    # on this data folder either wins the link or reads the winner's secret, never a half-written one
    draft = data_dir / f".webhook_secret.{os.getpid()}.{uuid.uuid4().hex}"
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(generate_secret())
    try:
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        draft.unlink()
    return path.read_text().strip()


class WebhookDispatcher:
    def __init__(
        self,
        store: JobStore,
        network: NetworkPolicy,
        secrets: Sequence[str],
        policy: WebhookPolicy | None = None,
        *,
        poll_interval: float = 0.5,
        concurrency: int = 16,
    ) -> None:
        self.store = store
        self.network = network
        self.secrets = list(secrets)
        self.policy = policy or WebhookPolicy()
        self.poll_interval = poll_interval
        self.concurrency = concurrency
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Deliver due messages in a background task until :meth:`stop`."""
        self._task = supervised_task("tornado-webhooks", self._loop, _log)

    def wake(self) -> None:
        """Look at the outbox now instead of at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        """End the delivery task (a message it was sending stays leased and is sent again later)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        failures = 0  # reads of the outbox failed in a row: the next waits longer (the store may be down)
        while True:
            try:
                due = await self.store.claim_outbox(self.concurrency, self.policy.timeout * 2 + 5)
                failures = 0
            except Exception:
                failures += 1
                _log.exception("webhooks: reading the outbox failed (%d in a row)", failures)
                due = []
            if due:
                await asyncio.gather(*(self._send_or_fail(m) for m in due))
                continue
            self._wake.clear()
            pause = max(self.poll_interval, restart_delay(failures)) if failures else self.poll_interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)

    async def _send_or_fail(self, message: OutboxMessage) -> None:
        """:meth:`_send`; a message that cannot be signed or sent (a bad secret, a bug) is logged and
        marked failed with the reason, instead of staying pending for ever with nothing said."""
        try:
            await self._send(message)
        except StoreError:  # the outcome could not be written: the lease runs out, it is sent again
            _log.exception("webhook %s: recording the delivery failed; it is sent again later", message.id)
        except Exception as exc:
            reason = redact(f"could not be sent: {type(exc).__name__}: {exc}", self.secrets)
            _log.error("webhook %s to %s %s", message.id, shown_url(message.url), reason, exc_info=True)
            try:
                await self.store.finish_outbox(message, "failed", None, reason)
            except Exception:
                _log.exception("webhook %s: marking it failed did not work either", message.id)

    async def _send(self, message: OutboxMessage) -> None:
        body = encode(_payload(message))
        timestamp = int(time.time())
        headers = {
            "webhook-id": message.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(self.secrets, message.id, timestamp, body),
        }
        result = await deliver(message.url, body, headers, policy=self.network, timeout=self.policy.timeout,
                               secrets_=self.secrets)  # fmt: skip
        message.attempts += 1
        if result.delivered:
            webhook_outcome("delivered")
            await self.store.finish_outbox(message, "delivered", None, None)
            return
        error = redact(result.error or "delivery failed", self.secrets)
        if result.give_up or message.attempts >= self.policy.max_attempts:
            webhook_outcome("failed")
            _log.warning("webhook %s to %s failed for good: %s", message.id, shown_url(message.url), error)
            await self.store.finish_outbox(message, "failed", None, error)
            return
        delay = self.policy.next_delay(message.attempts, result.retry_after)
        webhook_outcome("retry")
        _log.warning("webhook %s to %s failed (attempt %d), again in %.0f s: %s", message.id,
                     shown_url(message.url), message.attempts, delay, error)  # fmt: skip
        await self.store.finish_outbox(message, "pending", delay, error)
