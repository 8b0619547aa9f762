"""What the simulator counts, and the JSON stats file.

``violations`` counts only real limit breaches (100, 101, 162 pacing, 322);
``errors_sent`` counts every error message by code, including user errors such as a
too-long duration (162 "Time length exceed max.", also counted in ``user_errors``).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Counters:
    started_at: float = field(default_factory=time.time)
    connections_total: int = 0
    connections_active: int = 0
    connections_refused: int = 0  # turned away: client id in use, refusal window, bad handshake
    disconnects_by_server: int = 0  # sessions the simulator closed (faults, rate breaches)
    messages_total: int = 0
    messages_by_type: Counter = field(default_factory=Counter)
    # The most messages one connection sent within any (scaled) 1-second window, counted
    # at receipt: the number IB's 50/s rule is about.
    messages_peak_per_window: int = 0
    violations: Counter = field(default_factory=Counter)  # error code -> limit breaches
    errors_sent: Counter = field(default_factory=Counter)  # error code -> messages sent
    user_errors: Counter = field(default_factory=Counter)  # e.g. hist_duration_exceeded
    requests_served: Counter = field(default_factory=Counter)  # kind -> answered in full
    injected_errors: Counter = field(default_factory=Counter)  # kind -> injected error answers

    def snapshot(self, *, lines_in_use: int, lines_peak: int, lines_capacity: int,
                 hist_open: int, hist_peak: int, faults: dict,
                 message_window_seconds: float = 1.0) -> dict:
        """A JSON-serialisable dict with string keys only."""

        def keyed(counter: Counter) -> dict[str, int]:
            return {str(k): v for k, v in sorted(counter.items(), key=lambda kv: str(kv[0]))}

        return {
            "uptime_seconds": round(time.time() - self.started_at, 3),
            "connections": {
                "total": self.connections_total,
                "active": self.connections_active,
                "refused": self.connections_refused,
                "dropped_by_server": self.disconnects_by_server,
            },
            "messages": {
                "total": self.messages_total,
                "by_type": keyed(self.messages_by_type),
                "peak_per_window": self.messages_peak_per_window,
                "window_seconds": message_window_seconds,
            },
            "market_data_lines": {"in_use": lines_in_use, "peak": lines_peak,
                                  "capacity": lines_capacity},
            "historical_open": {"current": hist_open, "peak": hist_peak},
            "violations": keyed(self.violations),
            "errors_sent": keyed(self.errors_sent),
            "user_errors": keyed(self.user_errors),
            "requests_served": keyed(self.requests_served),
            "injected_errors": keyed(self.injected_errors),
            "faults": faults,
        }


def write_stats_file(path: str, stats: dict) -> None:
    """Atomically replace ``path``: readers never see a half-written file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".sim-stats-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(stats, handle, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
