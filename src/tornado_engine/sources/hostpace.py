"""Per-host pacing and back-off (pure: the clock and the random source are passed in).

A source host is paced by its **registrable domain** (``cdn1.example.co.uk`` and ``www.example.co.uk``
are one site): the last two labels of a name, the last three under a known second-level suffix
(``co.uk``, ``com.au``...), an IP address as it is. A small rule, not the Public Suffix List: no
dependency and no download, and sites that split their traffic across registrable domains (``ytimg.com``
beside ``youtube.com``) are paced per domain either way.

:class:`HostTable` keeps, per domain, the connections open, a token bucket of requests and the back-off:
after a ``429``/``503`` (with ``Retry-After``) or a bot check, every request to the domain waits until
``until``. Each new incident doubles the wait (``base * 2**(strikes-1)``, jitter between half and all of
it, up to ``cap``), never shorter than the source's ``Retry-After``; a success clears the strikes.
"""

from __future__ import annotations

import email.utils
import ipaddress
import random
from dataclasses import dataclass, field

from ..errors import InvalidRequest
from .ratelimit import TokenBucket

__all__ = [
    "BACKOFF_KINDS", "HELD_REASON", "HostPolicy", "HostTable", "parse_retry_after", "registrable_domain",
]  # fmt: skip

# the failures that make every job of the host wait (the kinds of retry.OUTCOMES)
BACKOFF_KINDS = frozenset({"rate_limited", "bot_check"})

# the network guard's reason phrase for a request it did not send: the host's back-off outlasts what a
# client waits for an answer. The job waits for the host and tries again, without spending a retry: the
# source did not refuse it.
HELD_REASON = "Too Many Requests (held for the host's back-off)"

# second-level suffixes under which a registrable domain has three labels (the common ccTLD ones)
_SECOND_LEVEL = frozenset(
    f"{sld}.{tld}"
    for tld in ("uk", "au", "nz", "jp", "kr", "br", "in", "za", "il", "tr", "mx", "ar", "cn", "tw", "hk",
                "sg", "my", "id", "th", "ph", "vn", "ua", "eg", "ng", "pk", "co", "pe", "ve")
    for sld in ("co", "com", "net", "org", "ac", "gov", "edu", "ne", "or", "go")
)  # fmt: skip


def registrable_domain(host: str) -> str:
    """The site a host belongs to: ``a.b.example.com`` -> ``example.com``, ``x.bbc.co.uk`` -> ``bbc.co.uk``,
    an IP address as it is."""
    text = host.strip().strip("[]").rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    labels = [label for label in text.split(".") if label]
    if len(labels) <= 2:
        return ".".join(labels)
    keep = 3 if ".".join(labels[-2:]) in _SECOND_LEVEL else 2
    return ".".join(labels[-keep:])


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay seconds, or an HTTP date; ``now`` in epoch
    seconds), None when absent or unreadable. Capped at a day."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), 86400.0)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return min(max(0.0, when.timestamp() - now), 86400.0)


@dataclass(frozen=True)
class HostPolicy:
    """``connections``: open connections per domain at most; ``rate``: requests per second per domain
    (a burst of one second's worth); None: no limit. Back-off: ``base`` doubled per incident, ``cap``."""

    connections: int | None = None
    rate: float | None = None
    backoff_base: float = 2.0
    backoff_cap: float = 300.0

    def __post_init__(self) -> None:
        if self.connections is not None and self.connections < 1:
            raise InvalidRequest("host_connections must be at least 1", field="host_connections")
        if self.rate is not None and self.rate <= 0:
            raise InvalidRequest("host_rate must be positive (requests per second)", field="host_rate")
        if not 0 < self.backoff_base <= self.backoff_cap:
            raise InvalidRequest("host back-off: 0 < base <= cap", field="host_backoff")

    def backoff(self, strikes: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after the ``strikes``-th incident in a row (1 for the first)."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** min(max(strikes - 1, 0), 30))
        return max(retry_after or 0.0, rng.uniform(ceiling / 2, ceiling))


@dataclass
class _Host:
    open: int = 0
    bucket: TokenBucket | None = None
    until: float = 0.0  # back-off: no request before this (the table's clock)
    strikes: int = 0
    holders: dict[str, int] = field(default_factory=dict)  # owner -> connections it holds for itself


class HostTable:
    """Per-domain state. Not thread-safe: :class:`~tornado_engine.sources.pacer.HostPacer` locks around it."""

    def __init__(self, policy: HostPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self._rng = rng or random.Random()
        self._hosts: dict[str, _Host] = {}
        self._workers = 1  # processes the limits are shared by (this one included)

    def share(self, workers: int) -> None:
        """The limits are for ``workers`` processes together: this one gets its share of each (at least
        one connection, so a share may pass the limit when there are more workers than connections)."""
        self._workers = max(1, workers)
        for state in self._hosts.values():
            if state.bucket is not None:
                state.bucket.rate = self._rate()
                state.bucket.burst = max(1.0, state.bucket.rate)

    def _rate(self) -> float:
        return (self.policy.rate or 0.0) / self._workers

    def _connections(self) -> int | None:
        limit = self.policy.connections
        return None if limit is None else max(1, limit // self._workers)

    def _host(self, domain: str, now: float) -> _Host:
        state = self._hosts.get(domain)
        if state is None:
            rate = self._rate()
            bucket = TokenBucket(rate, now, burst=max(1.0, rate)) if rate else None
            state = self._hosts[domain] = _Host(bucket=bucket)
        return state

    def until(self, domain: str, now: float) -> float | None:
        """When ``domain``'s back-off ends, or None when it has none now."""
        state = self._hosts.get(domain)
        return state.until if state is not None and state.until > now else None

    def enter(
        self, domain: str, owner: str, now: float, *, connect: bool = True, want: int = 1, hold: bool = False
    ) -> int:
        """Take up to ``want`` connections (``connect``) and one request token: the number taken, 0 when
        the caller must wait (back-off, no free connection, no token; :meth:`wait_hint` says how long).
        ``hold``: ``owner`` makes these connections itself (the fast path): :meth:`holds` says so."""
        state = self._host(domain, now)
        if state.until > now:
            return 0
        limit = self._connections()
        free = want if not connect or limit is None else min(want, limit - state.open)
        if free < 1:
            return 0
        if state.bucket is not None and state.bucket.take(1, now) > 0:
            state.bucket.tokens += 1  # not taken after all: the caller comes back for it
            return 0
        if connect:
            state.open += free
        if connect and hold:
            state.holders[owner] = state.holders.get(owner, 0) + free
        return free

    def wait_hint(self, domain: str, now: float) -> float:
        """How long before :meth:`enter` may succeed: the back-off's end, a token's refill, else a short
        poll (a connection is freed by another caller)."""
        state = self._host(domain, now)
        if state.until > now:
            return state.until - now
        bucket = state.bucket
        if bucket is not None:
            tokens = min(bucket.burst, bucket.tokens + (now - bucket.stamp) * bucket.rate)
            if tokens < 1:
                return (1 - tokens) / bucket.rate
        return 0.05

    def leave(self, domain: str, owner: str, count: int = 1, *, hold: bool = False) -> None:
        state = self._hosts.get(domain)
        if state is None:
            return
        state.open = max(0, state.open - count)
        if not hold:
            return
        left = state.holders.get(owner, 0) - count
        if left > 0:
            state.holders[owner] = left
        else:
            state.holders.pop(owner, None)

    def holds(self, domain: str, owner: str) -> bool:
        """Whether ``owner`` holds connections of ``domain`` (the fast path's: its tunnels are counted)."""
        state = self._hosts.get(domain)
        return state is not None and owner in state.holders

    def back_off(self, domain: str, retry_after: float | None, now: float) -> tuple[float, bool]:
        """The source said "slow down": (the back-off's end, whether this began a new incident). A report
        while a back-off runs (another job's, the same answer seen twice) only lengthens it to
        ``retry_after``."""
        state = self._host(domain, now)
        if state.until > now:
            state.until = max(state.until, now + (retry_after or 0.0))
            return state.until, False
        state.strikes += 1
        state.until = now + self.policy.backoff(state.strikes, retry_after, self._rng)
        return state.until, True

    def succeeded(self, domain: str) -> None:
        """A request to ``domain`` went through: the next incident starts from the base again."""
        state = self._hosts.get(domain)
        if state is not None:
            state.strikes = 0
