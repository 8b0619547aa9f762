"""The gateway's stats → Ray metrics: pacing budgets against IB's limits, messages sent,
IB errors by code, connection and circuit state.

``record_gateway_stats`` is pure (stats dict in, recorder calls out); ``GatewayPublisher``
runs it every ``interval`` seconds inside the gateway actor, from the same ``stats()`` that
`v6ray status` shows, so the metrics and the status never disagree.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from v6ray.observability.catalog import CIRCUIT_STATES, CONNECTION_STATES
from v6ray.observability.logs import install_masking
from v6ray.observability.metrics import CounterFromTotals, Recorder, recorder

log = logging.getLogger(__name__)

PUBLISH_SECONDS = 1.0  # Ray's agent exports every few seconds; 1 s keeps gauges current


def pacing_use(pacing: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """budget → (used, limit), from the pacer's ``budgets()`` view."""
    out: dict[str, tuple[float, float]] = {}
    if "messages_per_window" in pacing:
        limit = pacing["messages_per_window"]
        out["messages"] = (limit - pacing.get("messages_available", limit), limit)
    if "small_bar_limit" in pacing:
        limit = pacing["small_bar_limit"]
        out["small_bar"] = (limit - pacing.get("small_bar_available", limit), limit)
    if "historical_open_limit" in pacing:
        out["historical_open"] = (pacing.get("historical_open", 0),
                                  pacing["historical_open_limit"])
    if "line_budget" in pacing:
        out["lines"] = (pacing.get("lines_in_use", 0), pacing["line_budget"])
    return out


class GatewayMetrics:
    """Keeps the running totals between calls (counters grow by what was added)."""

    def __init__(self, to: Recorder | None = None) -> None:
        self._to = to
        self._messages = CounterFromTotals("v6ray_ib_messages_sent")
        self._errors = CounterFromTotals("v6ray_ib_errors")
        self._reconnects = CounterFromTotals("v6ray_gateway_reconnects")

    def record(self, stats: Mapping[str, Any]) -> None:
        rec = self._to if self._to is not None else recorder()
        state, circuit = stats.get("state"), stats.get("circuit")
        for name in CONNECTION_STATES:
            rec.set("v6ray_gateway_connection", 1.0 if name == state else 0.0, {"state": name})
        for name in CIRCUIT_STATES:
            rec.set("v6ray_gateway_circuit", 1.0 if name == circuit else 0.0, {"state": name})
        rec.set("v6ray_gateway_in_flight", float(stats.get("in_flight") or 0))
        pacing = stats.get("pacing") or {}
        for budget, (used, limit) in pacing_use(pacing).items():
            rec.set("v6ray_pacing_used", float(used), {"budget": budget})
            rec.set("v6ray_pacing_limit", float(limit), {"budget": budget})
        if "messages_sent" in pacing:
            self._messages.update(float(pacing["messages_sent"]), to=rec)
        for code, n in (stats.get("ib_errors") or {}).items():
            self._errors.update(float(n), {"code": str(code)}, to=rec)
        counters = stats.get("counters") or {}
        if "reconnects" in counters:
            self._reconnects.update(float(counters["reconnects"]), to=rec)


class GatewayPublisher:
    """Inside the gateway actor: ``stats()`` → metrics, every ``interval`` seconds."""

    def __init__(self, stats: Callable[[], Awaitable[Mapping[str, Any]]],
                 interval: float = PUBLISH_SECONDS) -> None:
        install_masking()  # the gateway logs IB's error texts: no account id in full
        self._stats = stats
        self._interval = interval
        self.metrics = GatewayMetrics()

    async def run(self) -> None:
        while True:
            try:
                self.metrics.record(await self._stats())
            except Exception:  # metrics must never take the gateway down
                log.exception("publishing gateway metrics failed")
            await asyncio.sleep(self._interval)
