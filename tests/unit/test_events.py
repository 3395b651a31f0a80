"""EventHub: in-process fan-out of job events (asyncio, no I/O)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tornado_engine.events import EventHub, is_progress
from tornado_engine.progress import Event
from tornado_engine.states import Status, Step


def ev(
    status: Status = Status.PROCESSING, step: Step = Step.DOWNLOADING, pct: float = 0.0, job: str = "j1"
) -> Event:
    return Event(job, status, step, pct)


async def collect(hub: EventHub, job_id: str, first: Event | None = None) -> list[Event]:
    return [e async for e in hub.subscribe(job_id, first)]


async def started(hub: EventHub, job_id: str, n: int = 1) -> None:
    """Wait until ``n`` subscribers are registered (subscribe registers on first iteration)."""
    for _ in range(100):
        if len(hub._queues.get(job_id, ())) >= n:
            return
        await asyncio.sleep(0)
    raise AssertionError("subscriber never registered")


async def test_subscriber_gets_events_until_terminal() -> None:
    hub = EventHub()
    task = asyncio.create_task(collect(hub, "j1"))
    await started(hub, "j1")
    assert hub.has_subscribers("j1")
    sent = [ev(pct=10), ev(pct=20), ev(step=Step.MUXING, pct=50), ev(Status.COMPLETED, Step.FINISHED, 100)]
    for e in sent:
        hub.publish(e)
    hub.publish(ev(pct=99))  # after the terminal event: not delivered
    got = await asyncio.wait_for(task, 1)
    assert got == sent
    assert not hub.has_subscribers("j1")


@pytest.mark.parametrize("terminal", [Status.COMPLETED, Status.FAILED, Status.WARNING, Status.SKIPPED])
async def test_every_terminal_status_ends_the_stream(terminal: Status) -> None:
    hub = EventHub()
    task = asyncio.create_task(collect(hub, "j1"))
    await started(hub, "j1")
    hub.publish(ev(pct=5))
    hub.publish(ev(terminal, Step.FINISHED, 100))
    got = await asyncio.wait_for(task, 1)
    assert [e.status for e in got] == [Status.PROCESSING, terminal]


async def test_events_of_other_jobs_are_not_delivered() -> None:
    hub = EventHub()
    task = asyncio.create_task(collect(hub, "j1"))
    await started(hub, "j1")
    hub.publish(ev(pct=1, job="j2"))
    hub.publish(ev(Status.COMPLETED, Step.FINISHED, 100, job="j2"))
    hub.publish(ev(Status.FAILED, Step.DOWNLOADING, 3, job="j1"))
    got = await asyncio.wait_for(task, 1)
    assert [(e.job_id, e.status) for e in got] == [("j1", Status.FAILED)]


async def test_late_subscriber_gets_latest_state_first() -> None:
    hub = EventHub()
    hub.publish(ev(pct=10))
    hub.publish(ev(step=Step.MUXING, pct=40))  # no subscriber yet: only the latest is kept
    store_state = ev(Status.PENDING, Step.QUEUED, 0)  # older than what the hub has seen
    task = asyncio.create_task(collect(hub, "j1", first=store_state))
    await started(hub, "j1")
    hub.publish(ev(step=Step.UPLOADING, pct=80))
    hub.publish(ev(Status.COMPLETED, Step.FINISHED, 100))
    got = await asyncio.wait_for(task, 1)
    assert [e.percent for e in got] == [40, 80, 100]
    assert got[0].step is Step.MUXING


async def test_first_is_used_when_the_hub_has_nothing() -> None:
    hub = EventHub()
    first = ev(Status.PENDING, Step.QUEUED, 0)
    task = asyncio.create_task(collect(hub, "j1", first=first))
    await started(hub, "j1")
    hub.publish(ev(Status.COMPLETED, Step.FINISHED, 100))
    got = await asyncio.wait_for(task, 1)
    assert got[0] is first and got[-1].status is Status.COMPLETED


async def test_subscribing_to_a_finished_job_yields_its_state_and_ends() -> None:
    hub = EventHub()
    hub.publish(ev(pct=50))
    hub.publish(ev(Status.COMPLETED, Step.FINISHED, 100))  # terminal: the hub forgets the job
    done = ev(Status.COMPLETED, Step.FINISHED, 100)
    got = await asyncio.wait_for(collect(hub, "j1", first=done), 1)
    assert got == [done]
    assert not hub.has_subscribers("j1")
    assert "j1" not in hub._last


async def test_several_subscribers_each_get_everything() -> None:
    hub = EventHub()
    tasks = [asyncio.create_task(collect(hub, "j1")) for _ in range(3)]
    await started(hub, "j1", 3)
    sent = [ev(pct=p) for p in (1, 2, 3)] + [ev(Status.FAILED, Step.UPLOADING, 70)]
    for e in sent:
        hub.publish(e)
    results = await asyncio.wait_for(asyncio.gather(*tasks), 1)
    assert all(r == sent for r in results)
    assert not hub.has_subscribers("j1")
    assert "j1" not in hub._queues


async def test_unsubscribes_when_the_consumer_stops_early() -> None:
    hub = EventHub()
    hub.publish(ev(pct=10))
    async with contextlib.aclosing(hub.subscribe("j1", None)) as stream:
        async for event in stream:
            assert event.percent == 10
            assert hub.has_subscribers("j1")
            break
    assert not hub.has_subscribers("j1")
    assert "j1" not in hub._queues
    hub.publish(ev(pct=20))  # nobody listening: no error


async def test_unsubscribes_when_cancelled() -> None:
    hub = EventHub()
    task = asyncio.create_task(collect(hub, "j1"))
    await started(hub, "j1")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not hub.has_subscribers("j1")


async def test_one_subscriber_leaving_keeps_the_others() -> None:
    hub = EventHub()
    keeper = asyncio.create_task(collect(hub, "j1"))
    leaver = asyncio.create_task(collect(hub, "j1"))
    await started(hub, "j1", 2)
    leaver.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await leaver
    assert hub.has_subscribers("j1")
    hub.publish(ev(Status.COMPLETED, Step.FINISHED, 100))
    got = await asyncio.wait_for(keeper, 1)
    assert [e.status for e in got] == [Status.COMPLETED]
    assert not hub.has_subscribers("j1")


async def test_latest_is_kept_per_job_and_dropped_on_terminal() -> None:
    hub = EventHub()
    hub.publish(ev(pct=10, job="a"))
    hub.publish(ev(pct=20, job="b"))
    assert hub._last["a"].percent == 10 and hub._last["b"].percent == 20
    hub.publish(ev(Status.SKIPPED, Step.DOWNLOADING, 20, job="b"))
    assert "b" not in hub._last and "a" in hub._last


def test_publish_without_subscribers_needs_no_loop() -> None:
    hub = EventHub()
    hub.publish(ev(pct=1))
    assert not hub.has_subscribers("j1")


def test_watch_is_set_by_the_jobs_terminal_event_only() -> None:
    hub = EventHub()
    with hub.watch("j1") as done, hub.watch("j1") as other:
        with hub.watch("j1") as leaving:
            assert leaving is not done
        # a waiter that left takes nothing from the others
        hub.publish(ev(pct=50))
        hub.publish(ev(Status.COMPLETED, Step.FINISHED, 100, job="j2"))
        assert not done.is_set() and not other.is_set()
        hub.publish(ev(Status.FAILED, Step.MUXING, 60))
        assert done.is_set() and other.is_set() and not leaving.is_set()
    assert "j1" not in hub._finished  # nothing kept once the waiters are gone
    hub.publish(ev(Status.COMPLETED, Step.FINISHED, 100))  # no waiter: nothing to set, nothing kept
    assert not hub._finished


# -- the engine-wide stream ----------------------------------------------------------------------------


def job_events(job: str, ticks: int) -> list[Event]:
    """One job's life: the step entered, ``ticks`` progress events, the step finished, the terminal event."""
    progress = [
        Event(job, Status.PROCESSING, Step.DOWNLOADING, 0.0, (i + 1) * 99 / ticks) for i in range(ticks)
    ]
    return [
        Event(job, Status.PROCESSING, Step.DOWNLOADING, 0.0, 0.0),
        *progress,
        Event(job, Status.PROCESSING, Step.DOWNLOADING, 33.0, 100.0),
        Event(job, Status.COMPLETED, Step.FINISHED, 100.0, 100.0),
    ]


async def test_the_stream_carries_every_jobs_events_in_order_until_close() -> None:
    hub = EventHub()
    stream = hub.stream()
    sent = [e for pair in zip(job_events("a", 3), job_events("b", 3), strict=True) for e in pair]
    for e in sent:
        hub.publish(e)
    hub.close()
    assert [e async for e in stream] == sent  # ends once what it holds is read
    assert not hub._feeds
    late = [e async for e in hub.stream()]  # subscribing to a closed hub ends at once
    assert late == []


async def test_a_slow_stream_subscriber_keeps_the_newest_progress_and_every_state_change() -> None:
    hub = EventHub()
    stream = hub.stream(limit=10)  # subscribed now, read only at the end: the slowest reader there is
    sent = [e for trio in zip(*(job_events(job, 500) for job in "abc"), strict=True) for e in trio]
    for e in sent:
        hub.publish(e)
        assert sum(len(f.events) for f in hub._feeds) <= 10 + 3 * 3  # bounded all along
    hub.close()
    got = [e async for e in stream]
    assert [e for e in got if not is_progress(e)] == [e for e in sent if not is_progress(e)]
    assert [e for e in got if is_progress(e)] == [e for e in sent if is_progress(e)][-10:]  # oldest went
    for job in "abc":  # each job's own events still arrive in order, terminal last
        mine = [e for e in got if e.job_id == job]
        assert mine[0].stage_percent == 0.0 and mine[-1].status is Status.COMPLETED


async def test_the_stream_filters_and_an_unread_stream_unsubscribes_when_collected() -> None:
    hub = EventHub()
    only_b = hub.stream(lambda e: e.job_id == "b")
    ignored = hub.stream()
    assert len(hub._feeds) == 2
    del ignored
    assert len(hub._feeds) == 1  # never iterated, dropped: gone with it
    for e in job_events("a", 2) + job_events("b", 2):
        hub.publish(e)
    hub.close()
    assert {e.job_id async for e in only_b} == {"b"}
    with pytest.raises(ValueError, match="limit"):
        hub.stream(limit=0)
