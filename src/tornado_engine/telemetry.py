"""The engine's metrics and traces, through the OpenTelemetry API (the optional extra ``[otel]``).

Instruments are made once, from the global providers: until the host configures an SDK (or without one)
they are the API's no-ops, and without the extra installed they are this module's own no-ops, so
recording costs a method call. Names follow OpenTelemetry's conventions, units are UCUM. Only
:mod:`tornado_engine.story` and the store's and pools' timing feed them; the README lists them.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

__all__ = ["Attributes", "Gauged", "Instruments", "NoSpan", "instruments", "span", "track"]

# seconds: a store write (ms) up to a long download (an hour)
_SECONDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
            300.0, 600.0, 1800.0, 3600.0)  # fmt: skip

Attributes = Mapping[str, str | int | float | bool]


class Gauged(Protocol):
    """Something whose current counts are read when a reader collects (nothing is recorded per job)."""

    def gauges(self) -> Iterable[tuple[str, int, Attributes]]:
        """(instrument name, value, attributes) now."""
        ...


_sources: weakref.WeakSet[Gauged] = weakref.WeakSet()


def track(source: Gauged) -> None:
    """Report ``source.gauges()`` at every collection, as long as ``source`` lives."""
    _sources.add(source)


def _observer(name: str) -> Callable[[Any], list[Any]]:
    def observe(options: Any) -> list[Any]:
        from opentelemetry.metrics import Observation

        totals: dict[frozenset[tuple[str, Any]], int] = {}
        for source in list(_sources):  # several engines in one process add up
            for gauge, value, attributes in source.gauges():
                if gauge == name:
                    key = frozenset(attributes.items())
                    totals[key] = totals.get(key, 0) + value
        return [Observation(value, dict(key)) for key, value in totals.items()]

    return observe


class _NoInstrument:
    def record(self, amount: float, attributes: Attributes | None = None) -> None:
        pass


class _Tally:
    """A counter kept here and read by the SDK when it collects (an observable counter): adding is a dict
    update, where the SDK's own counter costs ~10-20 us per call (it freezes and looks up the attributes
    under a lock each time), and counters are added to several times per job."""

    def __init__(self) -> None:
        self._totals: dict[frozenset[tuple[str, Any]], float] = {}
        self._lock = threading.Lock()

    def add(self, amount: float, attributes: Attributes | None = None) -> None:
        key = frozenset(attributes.items()) if attributes else frozenset()
        with self._lock:
            self._totals[key] = self._totals.get(key, 0) + amount

    def observe(self, options: Any) -> list[Any]:
        from opentelemetry.metrics import Observation

        with self._lock:
            totals = list(self._totals.items())
        return [Observation(value, dict(key)) for key, value in totals]


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
    """Every metric the engine records (``None`` meter: the extra is absent, nothing is recorded)."""

    def __init__(self, meter: Any) -> None:
        def counter(name: str, unit: str, text: str) -> _Tally:
            tally = _Tally()
            if meter is not None:
                meter.create_observable_counter(name, callbacks=[tally.observe], unit=unit, description=text)
            return tally

        def gauge(name: str, unit: str, text: str) -> None:
            if meter is not None:
                meter.create_observable_up_down_counter(
                    name, callbacks=[_observer(name)], unit=unit, description=text
                )

        def histogram(name: str, text: str) -> Any:
            if meter is None:
                return _NoInstrument()
            return meter.create_histogram(
                name, unit="s", description=text, explicit_bucket_boundaries_advisory=_SECONDS
            )

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


instruments = Instruments(_meter())
_TRACE = _trace_api()
_TRACER = _TRACE.get_tracer("tornado_engine") if _TRACE is not None else None


def _no_tracing() -> bool:
    """No SDK set (yet): the API's spans would be no-ops, but making them current still costs ~10 us."""
    return isinstance(_TRACE.get_tracer_provider(), _TRACE.ProxyTracerProvider)


@contextlib.contextmanager
def span(name: str, attributes: Attributes) -> Iterator[Any]:
    """A span made current for the block (a no-op one without the extra); exceptions are recorded."""
    if _TRACER is None or _no_tracing():
        yield NoSpan()
        return
    with _TRACER.start_as_current_span(name, attributes=attributes) as current:
        yield current
