"""Bench: IB's 50 messages/s at time scale 1, counted where IB counts it (at receipt).

A snapshot-heavy workload (option chains and futures snapshots: one message per snapshot,
plus contract details) through v6ray's gateway against the simulator in its own process
with IB's limits on, twice in one run: on the idle machine and with the CPU busy (spinners
on every core and loops starting short-lived interpreters). For each it prints

* the simulator's peak messages in any 1-second window, over IB's 50 (goal <= 0.9);
* the sustained message rate while the backlog lasts, over IB's 50 (goal >= 0.85);
* whether the pacer's count of messages sent equals the simulator's count received.

    python bench/message_rate.py [--chains 6] [--futures-rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from contextlib import nullcontext

import ray

from v6ray.gateway.testing import GatewayHarness
from v6ray.pacing import ib_limits
from v6ray.sim.cpu_load import cpu_load
from v6ray.sim.lookup import today_in_new_york
from v6ray.sim.testing import start_simulator_process
from v6ray.sim.universe import FUTURE_ROOTS, future_months

CHAIN_SYMBOLS = ["SPY", "QQQ", "IWM"]
ROOTS = ["ES", "MES", "NQ", "MNQ", "RTY"]


def workload(chains: int, futures_rounds: int, salt: int) -> list[dict]:
    """Distinct requests (identical pending ones would coalesce into one IB call)."""
    items = [{"request_type": "option_chain", "symbol": CHAIN_SYMBOLS[i % 3],
              "parameters": {"dte": 20 + 7 * i + salt}} for i in range(chains)]
    for round_ in range(futures_rounds):
        for root in ROOTS:
            for listed in future_months(FUTURE_ROOTS[root], today_in_new_york()):
                items.append({"request_type": "futures_snapshot", "symbol": root,
                              "parameters": {"contract_month": listed.contract_month,
                                             "exchange": ("CME", "GLOBEX")[round_ % 2]},
                              "priority": 1 + (round_ + salt) % 3})
    return items


def read_stats(path: str) -> dict:
    for _ in range(50):
        try:
            with open(path) as handle:
                return json.load(handle)
        except (OSError, ValueError):
            time.sleep(0.1)
    raise RuntimeError(f"no simulator stats in {path}")


def sustained_rate(samples: list[tuple[float, int]]) -> float:
    """Messages/s between 10% and 90% of the run's messages: the backlog's steady state,
    free of the ramp-up and of the tail."""
    total = samples[-1][1] - samples[0][1]
    low = next(s for s in samples if s[1] - samples[0][1] >= 0.1 * total)
    high = next(s for s in samples if s[1] - samples[0][1] >= 0.9 * total)
    return (high[1] - low[1]) / (high[0] - low[0]) if high[0] > low[0] else float("nan")


def phase(name: str, items: list[dict], busy: bool) -> dict:
    stats_file = os.path.join(tempfile.mkdtemp(), "sim.json")
    sim, port = start_simulator_process("--time-scale", "1", "--stats-file", stats_file)
    try:
        with GatewayHarness(tempfile.mkdtemp(), f"bench-rate-{name}", time_scale=1.0,
                            sim_port=port, gateway_overrides={"request_timeout": 30.0}) as h:
            h.wait_all([h.submit("position_update", "*")], timeout=60)  # connected and warm
            with cpu_load() if busy else nullcontext():
                time.sleep(1.0 if busy else 0.0)  # let the load take the cores first
                ids = h.submit_many(items)
                unused_before = h.gateway_stats()["pacing"]["unused_seconds"]
                samples: list[tuple[float, int]] = []
                pending = True
                while pending:
                    sent = h.gateway_stats()["pacing"]["messages_sent"]
                    samples.append((time.monotonic(), sent))
                    pending = len(samples) < 5 or samples[-1][1] != samples[-5][1]
                    time.sleep(0.25)
                finals = h.wait_all(ids, timeout=300)
            time.sleep(1.5)  # the stats file is rewritten every second
            stats = read_stats(stats_file)
            pacer = h.gateway_stats()["pacing"]
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    return {
        "name": name,
        "requests": len(items),
        "ok": sum(f.status.value == "SUCCESS" for f in finals),
        "received": stats["messages"]["total"],
        "sent": pacer["messages_sent"],
        "peak": stats["messages"]["peak_per_window"],
        "pacer_peak": pacer["peak_messages_per_window"],
        "rate": sustained_rate(samples),
        "violations": stats["violations"],
        "budget": pacer["messages_per_window"],
        "send_window": pacer["message_send_window_seconds"],
        "lateness": pacer["timer_lateness"],
        "unused": {k: v - unused_before[k] for k, v in pacer["unused_seconds"].items()},
        "span": samples[-1][0] - samples[0][0],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chains", type=int, default=6)
    parser.add_argument("--futures-rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, configure_logging=False)
    limit = ib_limits.MAX_MESSAGES_PER_SECOND
    results = [phase("idle", workload(args.chains, args.futures_rounds, 0), busy=False),
               phase("cpu-hog", workload(args.chains, args.futures_rounds, 1), busy=True)]
    first = results[0]
    print(f"budget: {first['budget']} messages per 1 s at receipt = {first['budget']} per "
          f"{first['send_window']:.3f} s written (IB's limit {limit}/s); time scale 1")
    print(f"{'phase':<8} {'requests':>8} {'ok':>5} {'received':>8} {'sent':>6} "
          f"{'peak/1s':>7} {'peak/50':>7} {'rate/s':>7} {'rate/50':>7}  violations")
    for r in results:
        print(f"{r['name']:<8} {r['requests']:>8} {r['ok']:>5} {r['received']:>8} "
              f"{r['sent']:>6} {r['peak']:>7} {r['peak'] / limit:>7.3f} {r['rate']:>7.2f} "
              f"{r['rate'] / limit:>7.3f}  {r['violations'] or 'none'}")
    for r in results:
        agree = "agree" if r["sent"] == r["received"] else "DIFFER"
        print(f"{r['name']}: pacer counted {r['sent']} sent, simulator {r['received']} received"
              f" ({agree}); pacer's own peak {r['pacer_peak']}; pump timers late by "
              f"{r['lateness']['p50_ms']} ms (p50) / {r['lateness']['p99_ms']} ms (p99); "
              f"budget unused {r['unused']['nothing_ready']:.2f} s (nothing ready) + "
              f"{r['unused']['timer_late']:.2f} s (timer late) of {r['span']:.1f} s")
    worst_peak = max(r["peak"] for r in results) / limit
    worst_rate = min(r["rate"] for r in results) / limit
    print(f"peak at receipt / 50: worst {worst_peak:.3f} (goal <= 0.9: "
          f"{'MET' if worst_peak <= 0.9 else 'MISSED'})")
    print(f"sustained rate / 50:  worst {worst_rate:.3f} (goal >= 0.85: "
          f"{'MET' if worst_rate >= 0.85 else 'MISSED'})")
    print(f"hog / idle sustained rate: {results[1]['rate'] / results[0]['rate']:.3f}")


if __name__ == "__main__":
    main()
