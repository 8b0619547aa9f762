"""Bench 2, line utilization: one 400-contract option chain (SPY, 50 strikes per side,
calls and puts, two expiries) against the simulator with IB's limits on and IB's worst
snapshot hold time (11 s, time-scaled). Prints peak lines in use / line budget and
contracts per second.

    python bench/gateway_lines.py [--time-scale 0.1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import ray

from v6ray.gateway.testing import GatewayHarness
from v6ray.pacing import ib_limits


def two_expiries(symbol: str) -> dict[str, int]:
    """A dte range holding exactly two of the simulator's expiries (2 x 50 x 2 x 2 = 400)."""
    from v6ray.sim.lookup import today_in_new_york
    from v6ray.sim.universe import UNDERLYINGS, option_classes

    today = today_in_new_york()
    days = sorted({(e - today).days for c in option_classes(UNDERLYINGS[symbol], today)
                   for e in c.expiries if (e - today).days >= 1})
    return {"dte_min": days[0], "dte_max": days[1]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--time-scale", type=float, default=0.1)
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, configure_logging=False)
    with GatewayHarness(
        tempfile.mkdtemp(), "bench-lines", time_scale=args.time_scale,
        sim_overrides={"snapshot_latency": ib_limits.SNAPSHOT_MAX_SECONDS},
        gateway_overrides={"request_timeout": 30.0},
    ) as h:
        h.wait_all([h.submit("position_update", "*")], timeout=60)
        params = {**two_expiries("SPY"), "strikes": 50, "rights": "both"}
        started = time.monotonic()
        rid = h.submit("option_chain", "SPY", priority=1, parameters=params)
        final = h.wait_all([rid], timeout=300)[0]
        elapsed = time.monotonic() - started
        stats = h.gateway_stats()
        sim = h.sim.stats()
    contracts = (final.result_data or {}).get("rows", 0)
    budget = stats["line_budget"]
    peak = stats["pacing"]["peak_lines"]
    print(f"status                   {final.status.value} {final.error_message or ''}")
    print(f"contracts snapshotted    {contracts} (+1 underlying)")
    print(f"snapshot hold (scaled)   {ib_limits.SNAPSHOT_MAX_SECONDS * args.time_scale:.2f} s")
    print(f"line budget              {budget} of IB's {sim['market_data_lines']['capacity']}")
    print(f"peak lines (gateway)     {peak} -> utilization {peak / budget:.3f} (target >= 0.9)")
    print(f"peak lines (simulator)   {sim['market_data_lines']['peak']} (never above budget: "
          f"{sim['market_data_lines']['peak'] <= budget})")
    print(f"elapsed submit→SUCCESS   {elapsed:.2f} s")
    print(f"contracts per second     {contracts / elapsed:.1f}")
    print(f"simulator violations     {sim['violations'] or 'none'}")


if __name__ == "__main__":
    main()
