"""Per-host pacing policy (sources/hostpace.py): registrable domains, connections, request tokens,
back-off with jitter and Retry-After. Pure: the clock and the random source are given."""

from __future__ import annotations

import random

import pytest

from tornado_engine.errors import InvalidRequest
from tornado_engine.sources.hostpace import HostPolicy, HostTable, parse_retry_after, registrable_domain


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("www.example.com", "example.com"),
        ("a.b.cdn.example.com.", "example.com"),
        ("EXAMPLE.com", "example.com"),
        ("news.bbc.co.uk", "bbc.co.uk"),
        ("x.y.abc.com.au", "abc.com.au"),
        ("example.co", "example.co"),
        ("localhost", "localhost"),
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("rr3---sn-abc.googlevideo.com", "googlevideo.com"),
    ],
)
def test_registrable_domain(host: str, domain: str) -> None:
    assert registrable_domain(host) == domain


def test_retry_after_seconds_and_dates() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("2", now) == 2.0
    assert parse_retry_after(" 120 ", now) == 120.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:30 GMT", now) == pytest.approx(10.0)
    assert parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now) == 0.0  # in the past: go now
    assert parse_retry_after("99999999", now) == 86400.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_policy_validation() -> None:
    for bad in ({"connections": 0}, {"rate": 0}, {"backoff_base": 10, "backoff_cap": 5}):
        with pytest.raises(InvalidRequest):
            HostPolicy(**bad)  # type: ignore[arg-type]


def test_connections_per_domain_are_limited_and_given_back() -> None:
    table = HostTable(HostPolicy(connections=2))
    assert table.enter("example.com", "a", 0.0) == 1
    assert table.enter("example.com", "b", 0.0) == 1
    assert not table.holds("example.com", "a")  # counted, not held for itself (the guard's)
    assert table.enter("example.com", "c", 0.0) == 0  # full
    assert table.enter("other.org", "c", 0.0) == 1  # another domain has its own
    table.leave("example.com", "a")
    assert table.enter("example.com", "c", 0.0) == 1


def test_a_download_takes_as_many_connections_as_are_free() -> None:
    table = HostTable(HostPolicy(connections=3))
    assert table.enter("example.com", "job", 0.0, want=4, hold=True) == 3
    assert table.holds("example.com", "job") and not table.holds("example.com", "other")
    table.leave("example.com", "job", 3, hold=True)
    assert not table.holds("example.com", "job")
    assert table.enter("example.com", "x", 0.0, want=2) == 2


def test_request_rate_is_a_token_bucket() -> None:
    table = HostTable(HostPolicy(rate=2.0))  # 2 a second, a burst of 2
    took = [table.enter("example.com", "j", 0.0, connect=False) for _ in range(3)]
    assert took == [1, 1, 0]
    assert table.wait_hint("example.com", 0.0) == pytest.approx(0.5)
    assert table.enter("example.com", "j", 0.5, connect=False) == 1
    assert table.enter("example.com", "j", 0.5, connect=False) == 0


def test_back_off_blocks_every_caller_and_grows_per_incident() -> None:
    policy = HostPolicy(backoff_base=2.0, backoff_cap=10.0)
    table = HostTable(policy, random.Random(7))
    until, new = table.back_off("example.com", None, 100.0)
    assert new and 101.0 <= until <= 102.0  # base 2 with jitter: between half and all of it
    assert table.enter("example.com", "anyone", 100.5) == 0
    assert table.wait_hint("example.com", 100.5) == pytest.approx(until - 100.5)
    # another report during the back-off is the same incident: it only lengthens the wait
    again, new = table.back_off("example.com", 5.0, 101.0)
    assert not new and again == 106.0
    assert table.enter("example.com", "anyone", 106.0) == 1
    second, _ = table.back_off("example.com", None, 200.0)
    assert 202.0 <= second <= 204.0  # the second incident in a row: twice the base
    table.back_off("example.com", None, 300.0)
    capped, _ = table.back_off("example.com", None, 400.0)
    assert 405.0 <= capped <= 410.0  # 16 s capped at 10
    table.succeeded("example.com")
    fresh, _ = table.back_off("example.com", None, 500.0)
    assert fresh <= 502.0  # a success in between: from the base again


def test_retry_after_is_never_cut_short_by_the_jitter() -> None:
    policy = HostPolicy(backoff_base=1.0, backoff_cap=300.0)
    rng = random.Random(1)
    assert all(policy.backoff(1, 2.0, rng) >= 2.0 for _ in range(200))
    assert all(policy.backoff(20, None, rng) <= 300.0 for _ in range(200))
    assert HostTable(policy).until("example.com", 0.0) is None


def test_workers_on_one_store_share_the_limits() -> None:
    table = HostTable(HostPolicy(connections=4, rate=4.0))
    table.share(2)  # two workers run jobs: this one gets half
    assert table.enter("example.com", "a", 0.0, want=4) == 2
    assert table.wait_hint("example.com", 0.0) == 0.05  # a connection must end first
    table.leave("example.com", "a", 2)
    assert [table.enter("example.com", "a", 0.0, connect=False) for _ in range(3)] == [1, 0, 0]
    table.share(9)  # more workers than connections: one each still
    assert table.enter("example.com", "b", 10.0) == 1
    table.leave("example.com", "b")
    assert table.enter("example.com", "c", 10.0) == 0  # 4/9 requests a second: a burst of one, taken
