"""Bench 1, pacing efficiency: a backlog of small-bar historical requests against the
simulator with IB's limits on (time-scaled). Prints the achieved rate as a fraction of IB's
60-per-10-minutes and the simulator's violation counts.

    python bench/gateway_pacing.py [--requests 300] [--time-scale 0.01]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta

import ray

from v6ray.gateway.config import GatewayConfig
from v6ray.gateway.testing import GatewayHarness
from v6ray.pacing import ib_limits

STOCKS = ["SPY", "QQQ", "IWM", "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA"]


def items(count: int) -> list[dict]:
    base = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)
    return [{"request_type": "market_bars", "symbol": STOCKS[i % len(STOCKS)],
             "parameters": {"duration": "1800 S", "bar_size": "5 secs", "use_rth": False,
                            "end": (base + timedelta(days=7 * (i // len(STOCKS)))).isoformat()}}
            for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--time-scale", type=float, default=0.01)
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, configure_logging=False)
    window = ib_limits.HIST_SMALL_BAR_WINDOW_SECONDS * args.time_scale
    per_window = ib_limits.HIST_SMALL_BAR_REQUESTS_PER_WINDOW
    margin = GatewayConfig().window_margin_seconds  # the production default, not the tests'
    with GatewayHarness(tempfile.mkdtemp(), "bench-pacing", time_scale=args.time_scale,
                        gateway_overrides={"window_margin_seconds": margin}) as h:
        h.wait_all([h.submit("position_update", "*")], timeout=60)  # connected and warm
        ids = h.submit_many(items(args.requests))
        sent_at: dict[int, float] = {}
        deadline = time.monotonic() + 600
        while len(sent_at) < args.requests and time.monotonic() < deadline:
            sent = h.gateway_stats()["pacing"]["historical_sent"]
            now = time.monotonic()
            for n in range(len(sent_at) + 1, sent + 1):
                sent_at[n] = now
            time.sleep(0.05)  # gently: the simulator shares this process
        finals = h.wait_all(ids, timeout=300)
        sim = h.sim.stats()
        last_error = h.gateway_stats()["last_error"]
    n = args.requests
    span = sent_at[n] - sent_at[1]
    # A perfect pacer sends request k at floor((k-1)/60) windows after the first.
    ideal = ((n - 1) // per_window) * window
    # Steady state: with a sliding window, send k happens one window after send k-60, so
    # the sends after the first window's last one measure the sustained rate, free of the
    # ramp-up (how fast the first 60 were claimed).
    steady = sent_at[n] - sent_at[per_window]
    achieved_rate = (n - per_window) / steady if steady else float("inf")
    allowed_rate = per_window / window
    ok = sum(f.status.value == "SUCCESS" for f in finals)
    print(f"requests                 {n} small-bar (5 secs) historical requests")
    print(f"time scale               {args.time_scale}")
    print(f"IB window (scaled)       {per_window} per {window:.2f} s")
    print(f"first→last send          {span:.2f} s (ideal {ideal:.2f} s)")
    print(f"sustained rate           {achieved_rate:.3f}/s vs allowed {allowed_rate:.3f}/s")
    print(f"efficiency (sustained)   {achieved_rate / allowed_rate:.3f} (target >= 0.95)")
    print(f"efficiency (incl. ramp)  {ideal / span:.3f}")
    print(f"succeeded                {ok}/{n}")
    print(f"simulator violations     {sim['violations'] or 'none'}")
    if sim["violations"]:
        print(f"last IB error            {last_error}")
    print(f"historical open peak     {sim['historical_open']['peak']}")


if __name__ == "__main__":
    main()
