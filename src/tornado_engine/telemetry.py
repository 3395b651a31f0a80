"""The engine's metrics and traces, aggregated in the process and passed on through the OpenTelemetry API.

Counters and histograms are kept here (a dict update under a lock per call), where
:mod:`tornado_engine.prometheus` reads them for a worker's ``--metrics-port`` without any SDK; every
histogram record is also handed to an OpenTelemetry API histogram and the counters and gauges are
observable instruments, so a host that sets an SDK meter provider gets all of them through OpenTelemetry
(the optional extra ``[otel]``; without it nothing OpenTelemetry is imported). Names follow
OpenTelemetry's conventions, units are UCUM. Only :mod:`tornado_engine.story` and the store's and pools'
timing feed them; the README lists them.
"""

from __future__ import annotations

import abc
import bisect
import collections
import contextlib
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

__all__ = [
    "Attributes",
    "Gauge",
    "Gauged",
    "Histogram",
    "Instruments",
    "NoSpan",
    "Tally",
    "TracingSwitch",
    "instruments",
    "recheck_tracing",
    "span",
    "tracing",
    "track",
]

# seconds: a store write (ms) up to a long download (an hour)
_SECONDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
            300.0, 600.0, 1800.0, 3600.0)  # fmt: skip
_TRACING_RECHECK_S = 1.0
_FOLD_AT = 256  # values kept before the one that adds them up

Attributes = Mapping[str, str | int | float | bool]
_Key = frozenset[tuple[str, Any]]
_NONE: _Key = frozenset()


class Gauged(Protocol):
    """Something whose current counts are read when a reader collects (nothing is recorded per job)."""

    def gauges(self) -> Iterable[tuple[str, int, Attributes]]:
        """(instrument name, value, attributes) now."""
        ...


_sources: weakref.WeakSet[Gauged] = weakref.WeakSet()


def track(source: Gauged) -> None:
    """Report ``source.gauges()`` at every collection, as long as ``source`` lives."""
    _sources.add(source)


def _observations(values: Iterable[tuple[_Key, float]]) -> list[Any]:
    from opentelemetry.metrics import Observation

    return [Observation(value, dict(key)) for key, value in values]


class _Described:
    def __init__(self, name: str, unit: str, text: str) -> None:
        self.name, self.unit, self.text = name, unit, text


class Gauge(_Described):
    """A value read from the tracked sources when collected, added up across them (several engines)."""

    def read(self) -> list[tuple[_Key, float]]:
        totals: dict[_Key, float] = {}
        for source in list(_sources):
            for gauge, value, attributes in source.gauges():
                if gauge == self.name:
                    key = frozenset(attributes.items())
                    totals[key] = totals.get(key, 0) + value
        return list(totals.items())

    def observe(self, options: Any) -> list[Any]:
        return _observations(self.read())


class _Folded(_Described, abc.ABC):
    """Values kept as they come (an atomic deque append, ~0.1 us) and folded into the totals in batches,
    by a reader or by the value that fills a batch: folding each at once costs a lock, a frozenset and
    a lookup per call, several calls a job. A caller must not change an ``attributes`` mapping it gave."""

    def __init__(self, name: str, unit: str, text: str) -> None:
        super().__init__(name, unit, text)
        self._pending: collections.deque[tuple[float, Attributes | None]] = collections.deque()
        self._lock = threading.Lock()

    def _keep(self, amount: float, attributes: Attributes | None) -> None:
        pending = self._pending
        pending.append((amount, attributes))
        if len(pending) >= _FOLD_AT:
            self._fold()

    def _fold(self) -> None:
        """Fold what is pending (under the lock; values kept meanwhile wait for the next fold)."""
        with self._lock:
            pending = self._pending
            for _ in range(len(pending)):
                amount, attributes = pending.popleft()
                self._add(frozenset(attributes.items()) if attributes else _NONE, amount)

    @abc.abstractmethod
    def _add(self, key: _Key, amount: float) -> None:
        """Add one value to the totals (called under the lock)."""


class Tally(_Folded):
    """A counter kept here: adding is a deque append, where the SDK's own counter costs ~10-20 us per call
    (it freezes and looks up the attributes under a lock each time), and counters are added to several
    times per job. An SDK reads it as an observable counter."""

    def __init__(self, name: str, unit: str, text: str) -> None:
        super().__init__(name, unit, text)
        self._totals: dict[_Key, float] = {}

    def add(self, amount: float, attributes: Attributes | None = None) -> None:
        self._keep(amount, attributes)

    def _add(self, key: _Key, amount: float) -> None:
        self._totals[key] = self._totals.get(key, 0) + amount

    def read(self) -> list[tuple[_Key, float]]:
        self._fold()
        with self._lock:
            return list(self._totals.items())

    def observe(self, options: Any) -> list[Any]:
        return _observations(self.read())


class Histogram(_Folded):
    """Seconds counted into the fixed :data:`_SECONDS` buckets per attribute set (a deque append a record;
    the SDK's histogram ~10-20 us), each record also handed to ``forward`` (an OpenTelemetry API
    histogram: a no-op until a host sets an SDK meter provider)."""

    bounds = _SECONDS

    def __init__(self, name: str, text: str, forward: Any = None) -> None:
        super().__init__(name, "s", text)
        self._forward = forward
        # per attribute set: a count per bucket (the last one above every bound), then the sum
        self._rows: dict[_Key, list[float]] = {}

    def record(self, amount: float, attributes: Attributes | None = None) -> None:
        self._keep(amount, attributes)
        if self._forward is not None:
            self._forward.record(amount, attributes)

    def _add(self, key: _Key, amount: float) -> None:
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = [0.0] * (len(_SECONDS) + 2)
        row[bisect.bisect_left(_SECONDS, amount)] += 1  # a value equal to a bound counts in its bucket (le)
        row[-1] += amount

    def read(self) -> list[tuple[_Key, list[float], float]]:
        """(attributes, count per bucket (not cumulative; the last one is +Inf), sum) per attribute set."""
        self._fold()
        with self._lock:
            return [(key, row[:-1], row[-1]) for key, row in self._rows.items()]


class NoSpan:
    """What :func:`span` gives without the extra (and an attempt before its span starts)."""

    def set_attribute(self, key: str, value: object) -> None:
        pass

    def set_status(self, status: object) -> None:
        pass


def _meter() -> Any:
    try:
        from opentelemetry import metrics
    except ImportError:
        return None
    return metrics.get_meter("tornado_engine")


def _trace_api() -> Any:
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    return trace


class Instruments:
    """Every metric the engine records (``None`` meter: the extra is absent, only the local aggregates)."""

    def __init__(self, meter: Any) -> None:
        self.all: list[Tally | Gauge | Histogram] = []

        def counter(name: str, unit: str, text: str) -> Tally:
            tally = Tally(name, unit, text)
            if meter is not None:
                meter.create_observable_counter(name, callbacks=[tally.observe], unit=unit, description=text)
            self.all.append(tally)
            return tally

        def gauge(name: str, unit: str, text: str) -> None:
            level = Gauge(name, unit, text)
            if meter is not None:
                meter.create_observable_up_down_counter(
                    name, callbacks=[level.observe], unit=unit, description=text
                )
            self.all.append(level)

        def histogram(name: str, text: str) -> Histogram:
            forward = None
            if meter is not None:
                forward = meter.create_histogram(
                    name, unit="s", description=text, explicit_bucket_boundaries_advisory=_SECONDS
                )
            self.all.append(made := Histogram(name, text, forward))
            return made

        self.submitted = counter("tornado.jobs.submitted", "{job}", "Jobs stored by a submit")
        self.finished = counter("tornado.jobs.finished", "{job}", "Jobs ended, by status and error kind")
        self.retries = counter("tornado.job.retries", "{retry}", "Stage retries, by error kind")
        self.io = counter("tornado.job.io", "By", "Media bytes downloaded and uploaded, by direction")
        self.webhooks = counter("tornado.webhook.deliveries", "{delivery}", "Webhook POSTs, by outcome")
        gauge("tornado.jobs.active", "{job}", "Attempts running, by step")
        gauge("tornado.pool.active", "{slot}", "Pool slots held, by pool")
        self.queue_wait = histogram("tornado.job.queue_wait", "From submit to the first claim")
        self.duration = histogram("tornado.job.duration", "From submit to the end, by status")
        self.stage_duration = histogram("tornado.stage.duration", "One stage try, by stage and outcome")
        self.store_duration = histogram("tornado.store.duration", "One store operation, by backend")


class TracingSwitch:
    """Whether spans are made: only once an SDK tracer provider is set, else the API's no-op spans would
    still cost ~10 us each to make current. Asking the API costs ~1.3 us (an ``os.environ`` lookup while
    none is set), 5 times a job, so the answer is kept: "on" for good (OpenTelemetry sets a provider only
    once), "off" for ``interval`` seconds. A provider set while the engine runs is seen within a second;
    one set before an engine starts, from its first job (:func:`recheck_tracing`)."""

    def __init__(
        self,
        provider_set: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
        interval: float = _TRACING_RECHECK_S,
    ) -> None:
        self._provider_set, self._clock, self._interval = provider_set, clock, interval
        self._on = False
        self._next = -math.inf

    def on(self) -> bool:
        if self._on:
            return True
        now = self._clock()
        if now >= self._next:
            self._next = now + self._interval
            self._on = self._provider_set()
        return self._on

    def recheck(self) -> None:
        """Ask the API again at the next :meth:`on`."""
        self._next = -math.inf


instruments = Instruments(_meter())
_TRACE = _trace_api()
_TRACER = _TRACE.get_tracer("tornado_engine") if _TRACE is not None else None


def _provider_set() -> bool:
    return not isinstance(_TRACE.get_tracer_provider(), _TRACE.ProxyTracerProvider)


_tracing = TracingSwitch(_provider_set)


def recheck_tracing() -> None:
    """Have the next span ask whether a tracer provider is set (an engine starting: the host may have
    set one just before)."""
    _tracing.recheck()


def tracing() -> bool:
    """Whether :func:`span` makes spans (the extra is installed and an SDK tracer provider is set): a
    caller can skip gathering a span's attributes when not."""
    return _TRACER is not None and _tracing.on()


@contextlib.contextmanager
def span(name: str, attributes: Attributes) -> Iterator[Any]:
    """A span made current for the block (a no-op one without the extra or an SDK); exceptions are
    recorded."""
    tracer = _TRACER if tracing() else None
    if tracer is None:
        yield NoSpan()
        return
    with tracer.start_as_current_span(name, attributes=attributes) as current:
        yield current
