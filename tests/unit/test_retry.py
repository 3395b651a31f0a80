"""Outcome table and retry policy (pure, seeded randomness)."""

from __future__ import annotations

import random
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tornado_engine.errors import ErrorKind
from tornado_engine.retry import OUTCOMES, Outcome, RetryPolicy, outcome_for
from tornado_engine.states import TERMINAL, Status

TRANSIENT = {
    "network", "timeout", "truncated", "server_error", "rate_limited", "storage_transient", "disk_full",
    "stalled",
}  # fmt: skip
FAILED = {
    "network",
    "timeout",
    "truncated",
    "server_error",
    "rate_limited",
    "bot_check",
    "not_found",
    "http_error",
    "unsupported_url",
    "no_formats",
    "extractor_bug",
    "invalid_media",
    "mux_failed",
    "verify_failed",
    "storage_transient",
    "storage_denied",
    "storage_error",
    "quota_exceeded",
    "no_live_from_start",
    "clip_out_of_range",
    "unknown",
    "disk_full",
    "too_large",
    "stalled",
}
WARNING = {"private", "members_only", "login_required", "geo_restricted", "unavailable", "upcoming"}
SKIPPED = {"drm", "live_stream"}


def test_outcome_table_covers_exactly_these_kinds() -> None:
    assert set(OUTCOMES) == FAILED | WARNING | SKIPPED


@pytest.mark.parametrize("kind", sorted(OUTCOMES))
def test_outcome_row(kind: str) -> None:
    outcome = outcome_for(kind)
    assert outcome is OUTCOMES[kind]
    assert isinstance(outcome, Outcome)
    assert outcome.status in TERMINAL
    assert outcome.status is not Status.COMPLETED
    if kind in FAILED:
        assert (outcome.status, outcome.error_type) == (Status.FAILED, "error")
    elif kind in WARNING:
        assert (outcome.status, outcome.error_type) == (Status.WARNING, "warning")
    else:
        assert (outcome.status, outcome.error_type) == (Status.SKIPPED, "warning")
    assert outcome.transient == (kind in TRANSIENT)
    # only technical failures are ever worth another try
    assert not outcome.transient or outcome.status is Status.FAILED
    # messages are for people: a sentence, no internal tool names
    assert outcome.message and outcome.message[0].isupper()
    low = outcome.message.lower()
    assert "yt-dlp" not in low and "youtube-dl" not in low and "ffmpeg" not in low


def test_every_error_kind_has_an_outcome_and_no_other() -> None:
    assert set(OUTCOMES) == set(get_args(ErrorKind))
    assert len(get_args(ErrorKind)) == len(set(get_args(ErrorKind)))


@pytest.mark.parametrize("kind", ["", "nonsense", "NETWORK", "http_403"])
def test_a_misspelt_kind_is_an_error_not_unknown(kind: str) -> None:
    with pytest.raises(KeyError):
        outcome_for(kind)  # type: ignore[arg-type]


def test_unknown_kind_fails_without_retry() -> None:
    outcome = outcome_for("unknown")
    assert outcome.status is Status.FAILED and outcome.error_type == "error" and not outcome.transient


def test_outcome_is_frozen() -> None:
    with pytest.raises(AttributeError):
        OUTCOMES["network"].transient = False  # type: ignore[misc]


# --------------------------------------------------------------------------- should_retry


@pytest.mark.parametrize("kind", sorted(TRANSIENT))
def test_transient_kinds_retried_until_max(kind: str) -> None:
    policy = RetryPolicy(max_retries=3)
    assert [policy.should_retry(kind, n) for n in range(6)] == [True, True, True, False, False, False]


@pytest.mark.parametrize("kind", sorted(set(OUTCOMES) - TRANSIENT))
def test_permanent_kinds_never_retried(kind: str) -> None:
    policy = RetryPolicy(max_retries=10)
    assert not any(policy.should_retry(kind, n) for n in range(12))


def test_zero_max_retries_never_retries() -> None:
    policy = RetryPolicy(max_retries=0)
    assert not any(policy.should_retry(kind, 0) for kind in OUTCOMES)


def test_default_policy() -> None:
    policy = RetryPolicy()
    assert (policy.max_retries, policy.base_delay, policy.max_delay) == (3, 0.5, 30.0)


# --------------------------------------------------------------------------- delay


def ceiling(policy: RetryPolicy, n: int) -> float:
    return min(policy.max_delay, policy.base_delay * 2**n)


@pytest.mark.parametrize("seed", range(20))
def test_delay_within_half_and_full_ceiling(seed: int) -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0)
    rng = random.Random(seed)
    for n in range(100):
        c = ceiling(policy, n)
        d = policy.delay(n, rng)
        assert c / 2 <= d <= c
        assert d <= policy.max_delay


@pytest.mark.parametrize("seed", range(20))
def test_delay_grows_until_the_cap(seed: int) -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0)
    rng = random.Random(seed)
    delays = [policy.delay(n, rng) for n in range(12)]
    uncapped = [n for n in range(12) if policy.base_delay * 2**n <= policy.max_delay]
    # retry n+1 waits at least ceiling(n+1)/2 == ceiling(n) >= delay(n) while uncapped
    for n in uncapped[:-1]:
        assert delays[n + 1] >= delays[n]
    # and the later (capped) ones all sit in [max/2, max]
    assert all(policy.max_delay / 2 <= d <= policy.max_delay for d in delays[uncapped[-1] + 1 :])
    assert delays[-1] > delays[0]


def test_delay_is_reproducible_with_a_seed() -> None:
    policy = RetryPolicy()
    a = [policy.delay(n, random.Random(42)) for n in range(8)]
    b = [policy.delay(n, random.Random(42)) for n in range(8)]
    assert a == b


def test_delay_has_jitter() -> None:
    policy = RetryPolicy()
    rng = random.Random(7)
    assert len({policy.delay(3, rng) for _ in range(20)}) > 1


def test_delay_without_rng_uses_module_random() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    for n in range(6):
        assert ceiling(policy, n) / 2 <= policy.delay(n) <= ceiling(policy, n)


@given(
    base=st.floats(min_value=0.001, max_value=10),
    cap=st.floats(min_value=0.001, max_value=300),
    n=st.integers(min_value=0, max_value=60),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_delay_bounds_property(base: float, cap: float, n: int, seed: int) -> None:
    policy = RetryPolicy(max_retries=3, base_delay=base, max_delay=cap)
    d = policy.delay(n, random.Random(seed))
    c = min(cap, base * 2**n)
    assert c / 2 <= d <= c <= cap
