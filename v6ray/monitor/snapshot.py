"""What the monitor page shows, as one JSON-ready dict (pure: stats dicts in, dict out).

The monitor samples the queue's and the gateway's ``stats()`` (the numbers of
`v6ray status --json`) about once a second. ``History`` keeps 15 minutes of queue depth by
status and priority for the chart, and the totals that rates (requests finished and IB
messages sent per second) are computed from. ``build_snapshot`` turns one sample into
the page's numbers; every number is final (rounded), so the page shows it as is.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from v6ray.observability.gateway import pacing_use

HISTORY_SECONDS = 15 * 60
HISTORY_EVERY = 2.0  # one chart point per 2 s: 450 points per series
RATE_WINDOW = 5.0  # rates over the last ~5 s: steady, yet quick to follow a burst
MAX_FAILURES = 20
CHART_SERIES = tuple(
    (status, priority) for status in ("PENDING", "PROCESSING") for priority in ("1", "2", "3")
)
FINAL = ("SUCCESS", "FAILED", "CANCELLED")
BUDGET_LABELS = {
    "messages": "IB messages in the last second",
    "small_bar": "small-bar requests in IB's 10-minute window",
    "historical_open": "historical requests open at once",
    "lines": "market-data lines in use",
}


def _depth_by_priority(queue: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    return {str(p): dict(c) for p, c in (queue.get("by_priority") or {}).items()}


def _finished(queue: Mapping[str, Any]) -> int:
    depth = queue.get("depth") or {}
    return sum(int(depth.get(s, 0)) for s in FINAL)


class History:
    """Chart points (every ``HISTORY_EVERY`` s, 15 min) and recent totals for rates."""

    def __init__(self) -> None:
        self.points: deque[tuple[float, dict[str, int]]] = deque(
            maxlen=int(HISTORY_SECONDS / HISTORY_EVERY) + 1)
        self._totals: deque[tuple[float, int, int]] = deque()

    def add(self, now: float, queue: Mapping[str, Any], gateway: Mapping[str, Any]) -> None:
        by_priority = _depth_by_priority(queue)
        values = {f"{s} {p}": int((by_priority.get(p) or {}).get(s, 0)) for s, p in CHART_SERIES}
        if not self.points or now - self.points[-1][0] >= HISTORY_EVERY:
            self.points.append((now, values))
        else:
            self.points[-1] = (self.points[-1][0], values)  # the newest point stays current
        sent = int((gateway.get("pacing") or {}).get("messages_sent") or 0)
        self._totals.append((now, _finished(queue), sent))
        while len(self._totals) > 2 and now - self._totals[1][0] >= RATE_WINDOW:
            self._totals.popleft()

    def rates(self) -> dict[str, float]:
        if len(self._totals) < 2:
            return {"finished_per_s": 0.0, "messages_per_s": 0.0}
        (t0, f0, m0), (t1, f1, m1) = self._totals[0], self._totals[-1]
        span = max(t1 - t0, 1e-9)
        # A total that went down (a restarted actor) restarts the rate, never goes negative.
        return {"finished_per_s": round(max(0, f1 - f0) / span, 2),
                "messages_per_s": round(max(0, m1 - m0) / span, 2)}

    def chart(self) -> dict[str, Any]:
        return {
            "t": [round(t, 1) for t, _ in self.points],
            "series": {name: [v[name] for _, v in self.points]
                       for name in (f"{s} {p}" for s, p in CHART_SERIES)},
        }


def build_snapshot(seq: int, now: float, queue: Mapping[str, Any],
                   gateway: Mapping[str, Any], history: History,
                   service: Mapping[str, Any] | None = None) -> dict[str, Any]:
    depth = {k: int(v) for k, v in (queue.get("depth") or {}).items()}
    pacing = gateway.get("pacing") or {}
    oldest = queue.get("oldest_pending_age_s")
    failures = list(reversed(list(queue.get("recent_failures") or [])))[:MAX_FAILURES]
    return {
        "seq": seq,
        "generated_at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
        "service": {**dict(service or {}),
                    "mode": "SIMULATED" if (service or {}).get("simulate") else "live IB"},
        "connection": {
            "state": str(gateway.get("state", "unknown")),
            "circuit": str(gateway.get("circuit", "unknown")),
            "ib": f"{gateway.get('host', '?')}:{gateway.get('port', '?')}",
            "client_id": gateway.get("client_id"),
            "last_error": gateway.get("last_error") or gateway.get("error"),
            "reconnects": int((gateway.get("counters") or {}).get("reconnects", 0)),
        },
        "queue": {
            "depth": depth,
            "by_priority": _depth_by_priority(queue),
            "oldest_pending_age_s": None if oldest is None else round(float(oldest), 1),
            "submitted_total": int(queue.get("submitted_total") or 0),
        },
        "in_flight": {"queue": int(queue.get("in_flight") or 0),
                      "gateway": int(gateway.get("in_flight") or 0)},
        "throughput": history.rates(),
        "pacing": [
            {"budget": budget, "label": BUDGET_LABELS[budget], "used": int(used),
             "limit": int(limit),
             "percent": round(100.0 * used / limit, 1) if limit else 0.0}
            for budget, (used, limit) in pacing_use(pacing).items()
        ],
        "lines": {"in_use": int(pacing.get("lines_in_use", gateway.get("lines_in_use", 0))),
                  "budget": int(pacing.get("line_budget", gateway.get("line_budget", 0)) or 0),
                  "peak": int(pacing.get("peak_lines", 0))},
        "ib_errors": {str(code): int(n) for code, n in (gateway.get("ib_errors") or {}).items()},
        "failures": [
            {k: f.get(k) for k in ("request_id", "request_type", "symbol", "status",
                                   "attempts", "error_message", "updated_at")}
            for f in failures if isinstance(f, Mapping)
        ],
        "history": history.chart(),
    }
