"""The open files limit an engine sets itself at start: raised toward what its concurrency may need, never
above the hard limit, never lowered."""

from __future__ import annotations

import resource
from collections.abc import Iterator

import pytest

from tornado_engine.fdlimit import raise_open_files_limit, wanted_open_files


@pytest.fixture
def limits() -> Iterator[tuple[int, int]]:
    """The limits as they were, put back afterwards (a process may lower its soft limit and raise it again
    up to the hard one)."""
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    yield before
    resource.setrlimit(resource.RLIMIT_NOFILE, before)


def test_a_low_soft_limit_is_raised_toward_what_the_concurrency_needs(limits: tuple[int, int]) -> None:
    hard = limits[1]
    if hard != resource.RLIM_INFINITY and hard < 1100:
        pytest.skip(f"hard limit {hard}: no room to raise a soft limit")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    now = raise_open_files_limit(2000)
    expected = (
        wanted_open_files(2000) if hard == resource.RLIM_INFINITY else min(hard, wanted_open_files(2000))
    )
    assert now == expected == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[1] == hard  # the hard limit is left alone


def test_a_soft_limit_already_high_enough_is_left_as_it_is(limits: tuple[int, int]) -> None:
    soft, hard = limits
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 1024), hard))
    assert raise_open_files_limit(10) == min(soft, 1024)  # 10 jobs need less: never lowered, not raised
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (min(soft, 1024), hard)
