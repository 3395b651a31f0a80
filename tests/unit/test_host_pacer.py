"""The engine's per-host pacer (sources/pacer.py): the blocking hold of the fast path, the async waits of
the guard and the runner, and who is told of a back-off."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tornado_engine.errors import JobCancelled
from tornado_engine.sources.hostpace import HostPolicy
from tornado_engine.sources.pacer import HostPacer


def test_the_fast_path_holds_what_is_free_and_gives_it_back() -> None:
    pacer = HostPacer(HostPolicy(connections=3))
    never = threading.Event()
    with pacer.hold("a.example.com", "job1", 4, never) as got:
        assert got == 3 and pacer.holds("b.example.com", "job1")  # one domain
        cancel = threading.Event()
        threading.Timer(0.1, cancel.set).start()
        with pytest.raises(JobCancelled), pacer.hold("example.com", "job2", 1, cancel):
            pass  # nothing free: waits until cancelled
    assert not pacer.holds("example.com", "job1")
    with pacer.hold("example.com", "job2", 2, never) as got:
        assert got == 2


async def test_a_back_off_holds_every_caller_and_tells_each_owner_once() -> None:
    pacer = HostPacer(HostPolicy(backoff_base=0.2, backoff_cap=0.2))
    told: list[tuple[str, str]] = []
    pacer.on_wait = lambda owner, domain, until: told.append((owner, domain))
    left = pacer.back_off("cdn.example.com", 0.3)
    assert left == pytest.approx(0.3) and pacer.until("www.example.com") is not None
    started = time.monotonic()
    await asyncio.gather(pacer.enter("example.com", "job1"), pacer.clear("example.com", "job2"))
    assert time.monotonic() - started >= 0.29
    assert sorted(told) == [("job1", "example.com"), ("job2", "example.com")]
    assert pacer.until("example.com") is None
    pacer.back_off("example.com", 5.0)
    assert await pacer.enter("example.com", "job1", limit=1.0) is False  # outlasts the limit: refused


def test_requests_wait_for_a_token() -> None:
    pacer = HostPacer(HostPolicy(rate=10.0))  # a burst of 10, then one each 0.1 s
    never = threading.Event()
    started = time.monotonic()
    for _ in range(12):
        pacer.request("example.com", "job", never)
    assert time.monotonic() - started >= 0.15
