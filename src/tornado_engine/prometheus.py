"""A worker's metrics in Prometheus' text format (``--metrics-port``), read at each scrape from the
process's own aggregates (:mod:`tornado_engine.telemetry`) with prometheus-client: no OpenTelemetry SDK.

Names, label names and label values are the ones the OpenTelemetry Prometheus exporter gave, which the
README's queries and existing dashboards use: the name's dots turned into ``_`` and the unit's word
appended (``s`` -> ``_seconds``, ``By`` -> ``_bytes``, a ``{job}`` annotation dropped), ``_total`` on a
counter, attribute keys sanitized alike, and the exporter's ``otel_scope_*`` labels on every sample.
No ``_created`` samples (the exporter gave none) and no ``target_info`` (it described the SDK).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from .telemetry import Gauge, Histogram, Instruments, Tally, instruments

__all__ = ["EngineCollector", "label_name", "metric_name", "serve", "unit_word"]

# the UCUM units a metric here may have, as the exporter spelled them (OpenTelemetry's Prometheus mapping)
_UNITS = {"d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
          "us": "microseconds", "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes",
          "MiBy": "mebibytes", "GiBy": "gibibytes", "1": "", "%": "percent"}  # fmt: skip
_ANNOTATION = re.compile(r"{.*}")
_NOT_IN_NAME = re.compile(r"[^a-zA-Z0-9:]+")
_NOT_IN_LABEL = re.compile(r"[^a-zA-Z0-9]+")
# the exporter's labels for the instrumentation scope: the meter "tornado_engine", no version, no schema
_SCOPE = {"otel_scope_name": "tornado_engine", "otel_scope_schema_url": "", "otel_scope_version": ""}


def _leading_digit(text: str) -> str:
    return "_" + text[1:] if text[:1].isdigit() else text


def unit_word(unit: str) -> str:
    """The Prometheus suffix for a UCUM unit: ``s`` -> ``seconds``, ``{job}`` -> ``""``."""
    unit = _ANNOTATION.sub("", unit)
    return _UNITS[unit] if unit in _UNITS else _NOT_IN_NAME.sub("_", unit).strip("_")


def metric_name(name: str, unit: str, *, counter: bool = False) -> str:
    """The exposed name: ``("tornado.job.io", "By", counter=True)`` -> ``tornado_job_io_bytes_total``."""
    base = _NOT_IN_NAME.sub("_", _leading_digit(name))
    if counter:
        base = base.removesuffix("_total")
    word = unit_word(unit)
    if word and not base.endswith("_" + word):
        base += "_" + word
    return base + "_total" if counter else base


def label_name(key: str) -> str:
    """An attribute key as a label name: ``tornado.job.status`` -> ``tornado_job_status``."""
    return _NOT_IN_LABEL.sub("_", _leading_digit(key))


def _label_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _label_rows(keys: Iterable[frozenset[tuple[str, Any]]]) -> tuple[list[str], list[list[str]]]:
    """Sorted label names over all points, and each point's values ("" for a label it lacks)."""
    points = [_SCOPE | {label_name(k): _label_value(v) for k, v in key} for key in keys]
    names = sorted({name for labels in points for name in labels})
    return names, [[labels.get(name, "") for name in names] for labels in points]


def _cumulative(counts: list[float]) -> list[tuple[str, float]]:
    buckets, total = [], 0.0
    for bound, count in zip([*map(str, Histogram.bounds), "+Inf"], counts, strict=True):
        total += count
        buckets.append((bound, total))
    return buckets


def _family(instrument: Tally | Gauge | Histogram) -> Metric | None:
    """One instrument's family now (``None`` before anything was recorded: the exporter left it out)."""
    unit = unit_word(instrument.unit)
    if isinstance(instrument, Histogram):
        points = instrument.read()
        names, rows = _label_rows(key for key, _, _ in points)
        histogram = HistogramMetricFamily(
            metric_name(instrument.name, instrument.unit), instrument.text, labels=names, unit=unit
        )
        for row, (_, counts, total) in zip(rows, points, strict=True):
            histogram.add_metric(row, _cumulative(counts), sum_value=total)
        return histogram if points else None
    values = instrument.read()
    names, rows = _label_rows(key for key, _ in values)
    counter = isinstance(instrument, Tally)
    name = metric_name(instrument.name, instrument.unit, counter=counter)
    kind = CounterMetricFamily if counter else GaugeMetricFamily
    family = kind(name, instrument.text, labels=names, unit=unit)
    for row, (_, value) in zip(rows, values, strict=True):
        family.add_metric(row, value)
    return family if values else None


class EngineCollector:
    """A prometheus-client collector of every engine metric in this process (several engines add up)."""

    def __init__(self, source: Instruments = instruments) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        for instrument in self._source.all:
            family = _family(instrument)
            if family is not None:
                yield family


def serve(port: int, host: str) -> None:
    """Serve the metrics on ``host:port`` from a thread, with prometheus-client's own process, platform
    and GC metrics (its default registry); an ``OSError`` when the port cannot be listened on."""
    start_http_server(port, addr=host)
    REGISTRY.register(EngineCollector())
