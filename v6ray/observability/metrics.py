"""The recorder v6ray's actors and tasks call: Ray's ``ray.util.metrics``, or memory.

``recorder()`` is this process's one recorder. In a Ray worker it records through
``ray.util.metrics`` (Ray's metrics agent exports the values on the node's Prometheus
endpoint); ``V6RAY_METRICS=0`` turns recording off. Tests install a ``MemoryRecorder``
with ``use_recorder`` and read what was recorded.

Cumulative numbers an actor already keeps (messages sent, IB errors by code) become
counters through ``CounterFromTotals``: it increments by what was added since last time.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, Protocol

from v6ray.observability.catalog import METRICS, Kind, MetricSpec

ENABLED_ENV = "V6RAY_METRICS"

Tags = Mapping[str, str]


class Recorder(Protocol):
    def inc(self, name: str, value: float = 1.0, tags: Tags | None = None) -> None: ...
    def set(self, name: str, value: float, tags: Tags | None = None) -> None: ...
    def observe(self, name: str, value: float, tags: Tags | None = None) -> None: ...


def _spec(name: str, kind: Kind) -> MetricSpec:
    spec = METRICS[name]  # a KeyError here is a typo in v6ray, caught by its tests
    if spec.kind is not kind:
        raise TypeError(f"{name} is a {spec.kind}, not a {kind}")
    return spec


class NullRecorder:
    """Metrics off: every call is a no-op."""

    def inc(self, name: str, value: float = 1.0, tags: Tags | None = None) -> None:
        pass

    def set(self, name: str, value: float, tags: Tags | None = None) -> None:
        pass

    def observe(self, name: str, value: float, tags: Tags | None = None) -> None:
        pass


class MemoryRecorder:
    """Keeps what was recorded: counters summed, gauges' last values, observations listed."""

    def __init__(self) -> None:
        self.counters: dict[tuple[str, tuple], float] = defaultdict(float)
        self.gauges: dict[tuple[str, tuple], float] = {}
        self.observations: dict[tuple[str, tuple], list[float]] = defaultdict(list)

    @staticmethod
    def _key(name: str, kind: Kind, tags: Tags | None) -> tuple[str, tuple]:
        spec = _spec(name, kind)
        tags = dict(tags or {})
        if set(tags) != set(spec.tags):
            raise ValueError(f"{name} takes tags {spec.tags}, got {tuple(tags)}")
        return name, tuple(sorted(tags.items()))

    def inc(self, name: str, value: float = 1.0, tags: Tags | None = None) -> None:
        if value <= 0:
            raise ValueError(f"{name}: a counter only goes up, got {value}")
        self.counters[self._key(name, Kind.COUNTER, tags)] += value

    def set(self, name: str, value: float, tags: Tags | None = None) -> None:
        self.gauges[self._key(name, Kind.GAUGE, tags)] = value

    def observe(self, name: str, value: float, tags: Tags | None = None) -> None:
        self.observations[self._key(name, Kind.HISTOGRAM, tags)].append(value)

    def counter(self, name: str, **tags: str) -> float:
        return self.counters.get((name, tuple(sorted(tags.items()))), 0.0)

    def gauge(self, name: str, **tags: str) -> float | None:
        return self.gauges.get((name, tuple(sorted(tags.items()))))

    def observed(self, name: str, **tags: str) -> list[float]:
        return list(self.observations.get((name, tuple(sorted(tags.items()))), []))


class RayRecorder:
    """Records through ``ray.util.metrics``; each metric object is made on first use."""

    def __init__(self) -> None:
        self._metrics: dict[str, Any] = {}

    def _metric(self, name: str, kind: Kind) -> Any:
        metric = self._metrics.get(name)
        if metric is None:
            from ray.util import metrics

            spec = _spec(name, kind)
            if kind is Kind.COUNTER:
                metric = metrics.Counter(name, spec.description, spec.tags)
            elif kind is Kind.GAUGE:
                metric = metrics.Gauge(name, spec.description, spec.tags)
            else:
                metric = metrics.Histogram(name, spec.description, list(spec.buckets), spec.tags)
            self._metrics[name] = metric
        return metric

    def inc(self, name: str, value: float = 1.0, tags: Tags | None = None) -> None:
        if value > 0:
            self._metric(name, Kind.COUNTER).inc(value, dict(tags) if tags else None)

    def set(self, name: str, value: float, tags: Tags | None = None) -> None:
        self._metric(name, Kind.GAUGE).set(value, dict(tags) if tags else None)

    def observe(self, name: str, value: float, tags: Tags | None = None) -> None:
        self._metric(name, Kind.HISTOGRAM).observe(value, dict(tags) if tags else None)


_recorder: Recorder | None = None


def enabled(env: Mapping[str, str] | None = None) -> bool:
    value = (os.environ if env is None else env).get(ENABLED_ENV, "1").strip().lower()
    return value not in ("0", "false", "no", "off")


def recorder() -> Recorder:
    """This process's recorder (made once: Ray's, or a no-op when metrics are off)."""
    global _recorder
    if _recorder is None:
        _recorder = RayRecorder() if enabled() else NullRecorder()
    return _recorder


def use_recorder(new: Recorder | None) -> None:
    """Install ``new`` as this process's recorder (tests); None goes back to the default."""
    global _recorder
    _recorder = new


class CounterFromTotals:
    """A counter fed with running totals: increments by the growth since the last total.

    A total that went down means its source started again (a restarted actor): the whole
    new total is counted, as Prometheus' rate() expects of a counter reset.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._last: dict[tuple, float] = {}

    def update(self, total: float, tags: Tags | None = None, *, to: Recorder) -> None:
        key = tuple(sorted((tags or {}).items()))
        last = self._last.get(key, 0.0)
        grown = total - last if total >= last else total
        self._last[key] = total
        if grown > 0:
            to.inc(self.name, grown, tags)
