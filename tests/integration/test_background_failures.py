"""Background tasks never fail silently: a fault injected into each (the claim loop, heartbeats, the
reaper, the sweeper, webhook delivery) through a real SQLite store that fails on cue, or a bad webhook
secret, is logged at ERROR with its traceback, and the task recovers (or marks the record it could not
handle). Real engines with the no-op stages: no media work, the engine's own loops as in production."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from jobkit import webhook_receiver

from tornado_engine import Engine, JobRequest, Status
from tornado_engine.errors import InvalidRequest, StoreError
from tornado_engine.ffmpeg import FFmpegPaths
from tornado_engine.store import JobStore, open_store
from tornado_engine.supervise import supervise
from tornado_engine.testing.noop import NoopStages, noop_engine
from tornado_engine.webhooks import generate_secret

pytestmark = pytest.mark.integration

_NOOP_URL = "http://127.0.0.1:9/noop"


class FlakyStore:
    """A real store whose named methods fail on cue: ``fail(name, times, after)`` lets ``after`` calls
    through, then raises :class:`StoreError` ``times`` times (as an outage would)."""

    def __init__(self, inner: JobStore) -> None:
        self._inner = inner
        self._plans: dict[str, list[int]] = {}
        self.failed: Counter[str] = Counter()

    def fail(self, name: str, times: int, after: int = 0) -> None:
        self._plans[name] = [after, times]

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if name not in self._plans:
            return target

        async def call(*args: Any, **kwargs: Any) -> Any:
            plan = self._plans[name]
            if plan[0] > 0:
                plan[0] -= 1
            elif plan[1] > 0:
                plan[1] -= 1
                self.failed[name] += 1
                raise StoreError(f"injected fault: {name}")
            return await target(*args, **kwargs)

        return call

    def as_store(self) -> JobStore:
        return cast(JobStore, self)


def _flaky(tmp_path: Path) -> FlakyStore:
    return FlakyStore(open_store(f"sqlite:///{tmp_path / 'jobs.db'}"))


def _errors(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    """ERROR records whose message has ``text``, each with its traceback."""
    found = [r for r in caplog.records if r.levelno == logging.ERROR and text in r.getMessage()]
    assert all(r.exc_info is not None for r in found), "logged without the traceback"
    return found


async def _until(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture(autouse=True)
def _errors_captured(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="tornado_engine")


async def test_claim_loop_logs_a_store_failure_and_claims_once_it_is_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = _flaky(tmp_path)
    flaky.fail("claim", 2)
    async with noop_engine(data_dir=tmp_path / "e", store=flaky.as_store(), poll_interval=0.1) as engine:
        created = await engine.create_job(JobRequest(url=_NOOP_URL))
        assert (await engine.wait(created.job_id, timeout=20)).status is Status.COMPLETED
    assert flaky.failed["claim"] == 2
    assert len(_errors(caplog, "claiming jobs failed")) == 2


async def test_heartbeat_failures_are_logged_and_the_lease_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = _flaky(tmp_path)
    options: dict[str, Any] = {"stages": NoopStages(stage_seconds=1.0), "lease_seconds": 4.0}
    async with noop_engine(data_dir=tmp_path / "e", store=flaky.as_store(), **options) as engine:
        flaky.fail("heartbeat", 2)
        created = await engine.create_job(JobRequest(url=_NOOP_URL))
        job = await engine.wait(created.job_id, timeout=20)
    assert job.status is Status.COMPLETED and job.attempts == 1  # the lease held through the outage
    assert flaky.failed["heartbeat"] == 2
    assert len(_errors(caplog, "heartbeat failed")) == 2


async def test_reaper_failures_are_logged_and_a_dead_workers_job_still_comes_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    async with Engine.open(data_dir=tmp_path / "e", store=url, run_jobs=False) as engine:
        job_id = (await engine.create_job(JobRequest(url=_NOOP_URL))).job_id
        await engine.store.claim("gone-host:1:x", 1, lease_seconds=2.5)  # then that worker died
    flaky = FlakyStore(open_store(url))
    flaky.fail("requeue_expired", 2, after=1)  # the reap at start passes; the next two fail
    async with noop_engine(data_dir=tmp_path / "e", store=flaky.as_store(), lease_seconds=1.0) as engine:
        job = await engine.wait(job_id, timeout=30)
    assert job.status is Status.COMPLETED
    assert flaky.failed["requeue_expired"] == 2
    assert len(_errors(caplog, "re-queuing expired jobs failed")) == 2


async def test_sweeper_failures_are_logged_and_the_next_round_sweeps(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = _flaky(tmp_path)
    engine = Engine(data_dir=tmp_path / "e", store=flaky.as_store(), stages=NoopStages(),
                    ffmpeg=FFmpegPaths("ffmpeg", "ffprobe"), expand_playlists=False)  # fmt: skip
    engine._runtime.sweep_interval = 0.2  # instead of 30 s, before the sweeper starts
    await engine.start()
    try:
        slot = engine._runtime.workspace
        assert slot is not None
        flaky.fail("get_job", 2)
        stray = slot.path / "left-by-nobody"
        stray.mkdir()
        await _until(lambda: not stray.exists())
    finally:
        await engine.close()
    assert flaky.failed["get_job"] == 2
    assert len(_errors(caplog, "sweeping temporary folders failed")) == 2


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []
    with webhook_receiver(lambda body, _headers: bodies.append(body)) as base:
        yield f"{base}/hook", bodies


async def _webhook_status(engine: Engine, job_id: str, wanted: str) -> None:
    for _ in range(200):
        if (await engine.get_job(job_id)).webhook_status == wanted:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"webhook_status never became {wanted}")


async def test_a_webhook_that_cannot_be_signed_is_marked_failed_with_the_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, receiver: tuple[str, list[bytes]]
) -> None:
    hook, bodies = receiver
    options: dict[str, Any] = {"webhook_secrets": ["not-a-secret"], "allow_networks": ["127.0.0.0/8"]}
    with pytest.raises(InvalidRequest, match="webhook_secrets: secret 1: webhook secrets must start"):
        Engine(data_dir=tmp_path / "e", **options)  # a malformed secret is refused at open (issue 14)
    options["webhook_secrets"] = [generate_secret()]
    async with noop_engine(data_dir=tmp_path / "e", poll_interval=0.1, **options) as engine:
        # a secret that goes bad after open (a bug) still ends the delivery failed, never pending
        engine._runtime._dispatcher.secrets[:] = ["not-a-secret"]  # type: ignore[union-attr]
        created = await engine.create_job(JobRequest(url=_NOOP_URL, webhook_url=hook))
        assert (await engine.wait(created.job_id, timeout=20)).status is Status.COMPLETED
        await _webhook_status(engine, created.job_id, "failed")
    with sqlite3.connect(tmp_path / "e" / "jobs.db") as db:
        [(status, error)] = db.execute("SELECT status, last_error FROM outbox").fetchall()
    assert status == "failed" and bodies == []
    assert error == "could not be sent: InvalidRequest: webhook secrets must start with 'whsec_'"
    [record] = _errors(caplog, "could not be sent")
    assert "not-a-secret" not in record.getMessage()


async def test_dispatcher_logs_an_outbox_failure_and_delivers_once_the_store_is_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, receiver: tuple[str, list[bytes]]
) -> None:
    hook, bodies = receiver
    flaky = _flaky(tmp_path)
    flaky.fail("claim_outbox", 2)
    options: dict[str, Any] = {"allow_networks": ["127.0.0.0/8"], "poll_interval": 0.1}
    async with noop_engine(data_dir=tmp_path / "e", store=flaky.as_store(), **options) as engine:
        created = await engine.create_job(JobRequest(url=_NOOP_URL, webhook_url=hook))
        await engine.wait(created.job_id, timeout=20)
        await _webhook_status(engine, created.job_id, "delivered")
    assert flaky.failed["claim_outbox"] == 2 and len(bodies) == 1
    assert len(_errors(caplog, "reading the outbox failed")) == 2


async def test_a_loop_that_raises_is_logged_and_restarted_with_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[float] = []

    async def loop() -> None:  # fails twice, then ends as a loop told to stop does
        runs.append(time.monotonic())
        if len(runs) <= 2:
            raise RuntimeError(f"bug number {len(runs)}")

    await asyncio.wait_for(supervise("tornado-test", loop, logging.getLogger("tornado_engine.test")), 10)
    assert len(runs) == 3
    assert runs[1] - runs[0] >= 0.45 and runs[2] - runs[1] >= 0.95  # 0.5 s, then 1 s
    records = _errors(caplog, "tornado-test failed")
    assert [r.getMessage() for r in records] == [
        "tornado-test failed (1 in a row); restarting in 0.5s",
        "tornado-test failed (2 in a row); restarting in 1.0s",
    ]
    assert [str(r.exc_info[1]) for r in records if r.exc_info] == ["bug number 1", "bug number 2"]
