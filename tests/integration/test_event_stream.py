"""``engine.events()`` without a job id: every job's events over one subscription, filtered by tenant or
batch, ending when the engine closes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tornado_engine import Engine, InvalidRequest, Status
from tornado_engine.models import JobCreated
from tornado_engine.progress import Event
from tornado_engine.results import BulkCreated
from tornado_engine.states import TERMINAL
from tornado_engine.testing.noop import NoopStages, noop_engine

URL = "http://127.0.0.1:9/noop"


async def _until_ended(stream: AsyncIterator[Event], jobs: int) -> list[Event]:
    """Events until ``jobs`` jobs have ended."""
    got: list[Event] = []
    async for event in stream:
        got.append(event)
        if sum(e.status in TERMINAL for e in got) == jobs:
            return got
    raise AssertionError(f"the stream ended early: {got}")


async def test_one_subscription_sees_every_job_and_filters_by_tenant_and_batch(tmp_path: Path) -> None:
    stages = NoopStages(stage_seconds=0.1, file_size=10)
    async with noop_engine(data_dir=tmp_path, poll_interval=0.05, stages=stages) as engine:
        alice = engine.tenant("alice")
        streams = {
            "all": engine.events(),
            "alice": alice.events(),
            "bob": engine.events(tenant="bob"),
            "default": engine.events(tenant=""),
        }
        bulk = await alice.create_bulk([f"{URL}/1", f"{URL}/2"])
        assert isinstance(bulk, BulkCreated)
        streams["batch"] = engine.events(batch_id=bulk.batch_id)  # subscribed before the jobs run
        bob = await engine.tenant("bob").create_job({"url": f"{URL}/3"})
        assert isinstance(bob, JobCreated)
        expected = {"all": 3, "alice": 2, "bob": 1, "batch": 2}
        got = {
            name: await asyncio.wait_for(_until_ended(streams[name], jobs), 30)
            for name, jobs in expected.items()
        }
        await engine.close()
        assert [e async for e in streams["default"]] == []  # nothing of the default tenant ran; ended
    ids = {name: {e.job_id for e in events} for name, events in got.items()}
    assert ids["all"] == {*bulk.job_ids, bob.job_id}
    assert ids["alice"] == ids["batch"] == set(bulk.job_ids)
    assert ids["bob"] == {bob.job_id}
    for job_id in ids["all"]:  # each job's life, in order, in the one stream
        life = [e for e in got["all"] if e.job_id == job_id]
        assert life[-1].status is Status.COMPLETED and life[-1].percent == 100.0
        assert [e.percent for e in life] == sorted(e.percent for e in life)
        assert "owner" not in life[-1].to_dict()  # the tenant key is never shown
    assert {e.batch_id for e in got["batch"]} == {bulk.batch_id}


async def test_the_stream_ends_when_the_engine_closes(tmp_path: Path) -> None:
    async with noop_engine(data_dir=tmp_path, poll_interval=0.05) as engine:
        reader = asyncio.create_task(anext(aiter(engine.events()), None))
        await asyncio.sleep(0.05)
        assert not reader.done()
    assert await asyncio.wait_for(reader, 5) is None  # ended cleanly, not cancelled


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    async with noop_engine(data_dir=tmp_path, poll_interval=0.05) as eng:
        yield eng


async def test_bad_stream_arguments_are_refused(engine: Engine) -> None:
    with pytest.raises(InvalidRequest, match="buffer"):
        engine.events(buffer=0)
    with pytest.raises(InvalidRequest, match="not both"):
        engine.events("job-1", batch_id="batch-1")


async def test_a_jobs_events_end_when_another_engine_runs_it(tmp_path: Path) -> None:
    """No event of the job is published here: the stored state moves the stream along and ends it (it
    used to wait forever, as it did for a job that ended while its stored state was being read)."""
    stages = NoopStages(stage_seconds=0.3, file_size=10)
    async with (
        noop_engine(data_dir=tmp_path, poll_interval=0.05, stages=stages),
        noop_engine(data_dir=tmp_path, run_jobs=False, poll_interval=0.05) as reader,
    ):
        created = await reader.create_job({"url": f"{URL}/elsewhere"})
        seen = await asyncio.wait_for(_until_ended(reader.events(created.job_id), 1), 30)
    assert seen[-1].status is Status.COMPLETED and seen[-1].percent == 100.0
    steps = [e.step for e in seen]
    assert steps == sorted(set(steps), key=steps.index)  # in order, each step once at least
    assert len(set(steps)) >= 2  # it moved along before it ended, read from the store
