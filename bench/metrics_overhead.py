"""Bench: what metrics and logging cost the gateway. Capacity (bench/gateway_overhead.py's
measure: requests per second the busiest of v6ray's stages can carry on one core) with
metrics and INFO request logs on, and with both off, side by side in one run.

Each side runs in a Ray cluster of its own, started the way `v6ray up` starts its job:
on = ``V6RAY_METRICS=1`` and Ray's job logging config at INFO (one line per request
state change into Ray's log files); off = ``V6RAY_METRICS=0`` and WARNING. The sides
alternate (on, off, on, off, ...) so a busy moment of the machine does not favour one;
each side's best round counts. Goal: on / off >= 0.95.

    python bench/metrics_overhead.py [--requests 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import ray
from ray.job_config import JobConfig

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gateway_overhead as overhead  # noqa: E402  (a sibling bench script)

from v6ray.gateway.testing import GatewayHarness  # noqa: E402
from v6ray.observability.logs import LogSettings, logging_config  # noqa: E402
from v6ray.sim.testing import start_simulator_process  # noqa: E402

GOAL = 0.95


def one_round(on: bool, n: int, sim_port: int, sim_pid: int) -> dict[str, float]:
    job = JobConfig(runtime_env={"env_vars": {"V6RAY_METRICS": "1" if on else "0"}})
    job.set_py_logging_config(logging_config(LogSettings("INFO" if on else "WARNING")))
    for attempt in range(3):  # a busy 2-core machine can time out a Ray start-up
        try:
            ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                     log_to_driver=False, configure_logging=False, job_config=job)
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
            time.sleep(5)
    try:
        with GatewayHarness(tempfile.mkdtemp(), f"bench-metrics-{int(on)}", time_scale=1.0,
                            sim_port=sim_port,
                            gateway_overrides={"pacing": False, "max_in_flight": 2000,
                                               "claim_batch": 250}) as h:
            h.wait_all([h.submit("market_bars", "AAPL", parameters={
                "duration": "1 D", "bar_size": "1 day", "end": "2023-06-01"})], timeout=120)
            elapsed, _, cpu = overhead.through_v6ray(h, [overhead.bar_items(n)], sim_pid)
    finally:
        ray.shutdown()
        time.sleep(2)  # let the cluster's processes go before the next one starts
    per_request = {k: cpu[k] / n for k in ("queue", "gateway", "writers")}
    busiest = max(per_request, key=per_request.__getitem__)
    return {"capacity": 1 / per_request[busiest], "throughput": n / elapsed,
            **{f"{k}_ms": v * 1e3 for k, v in per_request.items()}, "busiest": busiest}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    sim, port = start_simulator_process("--no-limits")  # as gateway_overhead runs it
    results: dict[bool, list[dict]] = {True: [], False: []}
    try:
        for _ in range(args.rounds):
            for on in (True, False):
                result = one_round(on, args.requests, port, sim.pid)
                results[on].append(result)
                print(f"{'on ' if on else 'off'}  capacity {result['capacity']:7.0f} req/s  "
                      f"throughput {result['throughput']:6.0f} req/s  CPU/request queue "
                      f"{result['queue_ms']:.2f} ms, gateway {result['gateway_ms']:.2f} ms, "
                      f"writers {result['writers_ms']:.2f} ms", flush=True)
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    best = {on: max(r["capacity"] for r in rounds) for on, rounds in results.items()}
    ratio = best[True] / best[False]
    print(f"requests per round          {args.requests} single-bar historical, all at once "
          f"(simulator limits off, own process; v6ray pacing off); {args.rounds} rounds a side")
    print(f"capacity, metrics+logs on   {best[True]:8.0f} req/s (best round)")
    print(f"capacity, metrics+logs off  {best[False]:8.0f} req/s (best round)")
    print(f"ratio on / off              {ratio:8.3f}  (goal >= {GOAL}: "
          f"{'MET' if ratio >= GOAL else 'MISSED'})")


if __name__ == "__main__":
    main()
