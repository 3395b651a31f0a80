"""``engine.tenant(key)``: a light view (no copy of the engine), scoped to its tenant, sharing the engine's
store, scheduler and in-flight state, with no open or close of its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tornado_engine import Engine, InvalidRequest, NotFound, Quota, QuotaExceeded, Status
from tornado_engine.models import JobCreated
from tornado_engine.tenant_view import TenantView
from tornado_engine.testing.noop import NoopStages, noop_engine

URL = "http://127.0.0.1:9/noop"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    async with noop_engine(
        data_dir=tmp_path, poll_interval=0.05, stages=NoopStages(stage_seconds=0.2, file_size=10)
    ) as eng:
        yield eng


async def _create(view: TenantView, url: str = URL) -> str:
    created = await view.create_job({"url": url})
    assert isinstance(created, JobCreated)
    return created.job_id


async def test_a_view_holds_only_the_shared_services_and_its_key(engine: Engine) -> None:
    alice = engine.tenant("alice")
    assert type(alice) is TenantView and not isinstance(alice, Engine)
    assert not hasattr(alice, "__dict__")  # slots: nothing of the engine is copied into it
    assert {name: getattr(alice, name) for name in TenantView.__slots__} == {
        "_owner": "alice",
        "_services": engine._services,  # the very same services: one store, one scheduler
    }
    assert alice.owner == "alice" and engine.owner == ""
    for runs_the_engine in ("open", "start", "close", "store", "hub"):
        assert not hasattr(alice, runs_the_engine)
    assert alice.tenant("bob").owner == "bob"  # a view of a view: the same engine, another tenant


async def test_a_view_never_shows_its_key(engine: Engine) -> None:
    view = engine.tenant("sk_live_secret")
    assert "sk_live_secret" not in repr(view)
    assert repr(view) == repr(engine).replace("Engine(", "TenantView(", 1)


@pytest.mark.parametrize("key", ["", "x" * 201, "a\nb", "tab\there", 7])
async def test_bad_tenant_keys_are_refused(engine: Engine, key: object) -> None:
    with pytest.raises(InvalidRequest, match="tenant key"):
        engine.tenant(key)  # type: ignore[arg-type]


async def test_tenants_see_only_their_own_jobs_and_batches(engine: Engine) -> None:
    alice, bob = engine.tenant("alice"), engine.tenant("bob")
    job_id = await _create(alice)
    batch = await alice.create_bulk([URL + "/1", URL + "/2"], paused=True)
    assert batch.batch_id is not None
    done = await alice.wait(job_id, timeout=30)
    assert done.status is Status.COMPLETED and done.owner == "alice"
    for call in (bob.get_job, bob.wait, bob.cancel_job, bob.retry_job, bob.delete_file, engine.get_job):
        with pytest.raises(NotFound):
            await call(job_id)
    with pytest.raises(NotFound):
        await anext(aiter(bob.events(job_id)))
    for batch_call in (bob.get_batch, bob.start_batch, engine.get_batch):
        with pytest.raises(NotFound):
            await batch_call(batch.batch_id)
    with pytest.raises(NotFound):
        await bob.rename_batch_jobs(batch.batch_id, [])
    assert len(await alice.list_jobs(limit=10)) == 3 and await bob.list_jobs() == []
    assert (await alice.usage()).usage_count == 3 and (await bob.usage()).usage_count == 0
    await alice.set_quota(Quota(storage_bytes=10))  # alice's finished job holds 10 bytes
    with pytest.raises(QuotaExceeded):
        await _create(alice)
    await _create(bob)  # alice's quota is alice's
    assert (await alice.usage()).storage_limit_gb is not None and (await bob.usage()).storage_limit_gb is None


async def test_a_view_shares_the_engines_in_flight_state(engine: Engine) -> None:
    alice = engine.tenant("alice")
    job_id = await _create(alice)
    stream = alice.events(job_id)
    await anext(stream)
    assert engine.hub.has_subscribers(job_id)  # the view follows the engine's own events
    assert [event async for event in stream][-1].status is Status.COMPLETED
    # two views of one tenant wait on the same job together
    again = await _create(alice)
    jobs = await asyncio.gather(alice.wait(again, timeout=30), engine.tenant("alice").wait(again, timeout=30))
    assert [j.status for j in jobs] == [Status.COMPLETED, Status.COMPLETED]


async def test_a_views_cancel_stops_the_job_the_engine_runs(engine: Engine) -> None:
    alice = engine.tenant("alice")
    job_id = await _create(alice)
    while (await alice.get_job(job_id)).status is Status.PENDING:
        await asyncio.sleep(0.01)
    await alice.cancel_job(job_id)
    assert (await alice.wait(job_id, timeout=30)).status is Status.CANCELLED


async def test_close_is_the_engines_alone_and_idempotent(tmp_path: Path) -> None:
    async with noop_engine(data_dir=tmp_path, poll_interval=0.05) as engine:
        view = engine.tenant("alice")
        job_id = await _create(view)
        assert (await view.wait(job_id, timeout=30)).status is Status.COMPLETED
    await engine.close()  # a second close (after the context manager's) does nothing
