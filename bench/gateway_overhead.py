"""Bench 3, overhead: 1,000 requests with the simulator's limits off, once through v6ray
(durable queue → gateway → Delta MERGE; SUCCESS only after the rows are committed) and once
by a bare ib_async loop that writes nothing, in one run. Prints the throughput ratio and
p50/p99 latency enqueue → row visible.

Two workloads, because the queue coalesces identical live requests:
  A. futures snapshots: only 90 distinct questions exist (5 roots x 9 months x 2 exchange
     names), so 1,000 are asked in closed-loop waves of 90 on both sides (latency-bound);
  B. single-bar historical requests (1 day bar, distinct end dates): 1,000 distinct, all
     submitted at once on both sides (capacity-bound).

The simulator runs in its own process (``python -m v6ray.sim``), the same one for both
sides: in the driver's process it would compete with the driver for the GIL, and with
v6ray the driver is busier (it submits and waits through Ray) than the bare loop is.

    python bench/gateway_overhead.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

import ray

from v6ray.gateway.testing import GatewayHarness

ROOTS = ["ES", "MES", "NQ", "MNQ", "RTY"]


def snapshot_items() -> list[dict]:
    from v6ray.sim.lookup import today_in_new_york
    from v6ray.sim.universe import FUTURE_ROOTS, future_months

    items = []
    for root in ROOTS:
        months = [m.expiry[:6] for m in future_months(FUTURE_ROOTS[root], today_in_new_york())]
        for exchange in ("CME", "GLOBEX"):
            items.append({"request_type": "futures_snapshot", "symbol": root,
                          "parameters": {"exchange": exchange}})
            items += [{"request_type": "futures_snapshot", "symbol": root,
                       "parameters": {"exchange": exchange, "contract_month": month}}
                      for month in months]
    return items


def bar_items(total: int) -> list[dict]:
    base = datetime(2024, 1, 5, 21, 0, tzinfo=UTC)
    return [{"request_type": "market_bars", "symbol": ["SPY", "QQQ", "IWM"][i % 3],
             "parameters": {"duration": "1 D", "bar_size": "1 day",
                            "end": (base + timedelta(days=i // 3)).isoformat()}}
            for i in range(total)]


def waves(items: list[dict], total: int) -> list[list[dict]]:
    out, done = [], 0
    while done < total:
        out.append(items[: min(len(items), total - done)])
        done += len(out[-1])
    return out


def _process_table() -> dict[int, tuple[int, float, str]]:
    """pid -> (parent pid, CPU seconds so far, command line) of every process."""
    tick = os.sysconf("SC_CLK_TCK")
    table = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        table[int(pid)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick, cmdline)
    return table


def cpu_seconds(simulator_pid: int) -> dict[str, float]:
    """CPU seconds so far of this cluster's Ray workers (children of our raylet: the
    queue, the gateway, the writer tasks) and of the simulator. Other Ray clusters on
    the machine are not counted."""
    raylet = ray._private.worker._global_node.all_processes["raylet"][0].process.pid
    table = _process_table()
    workers = sum(cpu for parent, cpu, cmd in table.values()  # not the raylet's agents
                  if parent == raylet and cmd.startswith("ray::") and "Agent" not in cmd)
    return {"ray workers": workers,
            "simulator": table.get(simulator_pid, (0, 0.0, ""))[1]}


def through_v6ray(h: GatewayHarness, batches: list[list[dict]], simulator_pid: int
                  ) -> tuple[float, list[float], dict[str, float]]:
    latencies: list[float] = []
    before = cpu_seconds(simulator_pid)
    started = time.monotonic()
    for wave in batches:
        finals = h.wait_all(h.submit_many(wave), timeout=600)
        bad = [f.error_message for f in finals if f.status.value != "SUCCESS"]
        assert not bad, bad[:3]
        latencies += [(f.updated_at - f.created_at).total_seconds() for f in finals]
    elapsed = time.monotonic() - started
    after = cpu_seconds(simulator_pid)
    return elapsed, latencies, {k: after[k] - before[k] for k in after}


def bare_ib_async(port: int, batches: list[list[dict]]) -> tuple[float, list[float]]:
    from ib_async import IB, Future, Stock  # a bench may import ib_async (not the package)

    async def run() -> tuple[float, list[float]]:
        ib = IB()
        ib.client.MaxRequests = 0
        await ib.connectAsync("127.0.0.1", port, clientId=99, readonly=True)
        latencies: list[float] = []

        async def one(item: dict) -> None:
            t0 = time.monotonic()
            p = item["parameters"]
            if item["request_type"] == "futures_snapshot":
                details = await ib.reqContractDetailsAsync(
                    Future(item["symbol"], p.get("contract_month", ""), p["exchange"]))
                front = min(details, key=lambda d: d.contract.lastTradeDateOrContractMonth)
                await ib.reqTickersAsync(front.contract)
            else:
                await ib.reqHistoricalDataAsync(
                    Stock(item["symbol"], "SMART", "USD"), datetime.fromisoformat(p["end"]),
                    p["duration"], p["bar_size"], "TRADES", True, formatDate=2)
            latencies.append(time.monotonic() - t0)

        started = time.monotonic()
        for wave in batches:
            await asyncio.gather(*(one(i) for i in wave))
        elapsed = time.monotonic() - started
        ib.disconnect()
        return elapsed, latencies

    return asyncio.run(run())


def start_simulator() -> tuple[subprocess.Popen, int]:
    """``python -m v6ray.sim`` (limits off, seed 7) on an ephemeral loopback port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "v6ray.sim", "--host", "127.0.0.1", "--port", "0",
         "--seed", "7", "--no-limits"],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "IB simulator listening on 127.0.0.1:PORT (...)"
    match = re.search(r":(\d+) ", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"simulator did not start: {line!r}")
    return proc, int(match.group(1))


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def report(name: str, n: int, v: tuple[float, list[float], dict[str, float]],
           b: tuple[float, list[float]], messages_per_request: int) -> None:
    (v_time, v_lat, cpu), (b_time, b_lat) = v, b
    v_rate, b_rate = n / v_time, n / b_time
    print(f"--- {name}")
    print(f"v6ray   throughput          {v_rate:8.1f} req/s  ({v_time:.2f} s)")
    print(f"bare    throughput          {b_rate:8.1f} req/s  ({b_time:.2f} s)")
    print(f"ratio v6ray / bare          {v_rate / b_rate:8.3f}")
    for who, lat, what in (("v6ray", v_lat, "enqueue -> rows committed"),
                           ("bare ", b_lat, "request -> answer, nothing stored")):
        print(f"{who}   latency p50 / p99   {pct(lat, 50) * 1e3:7.1f} / "
              f"{pct(lat, 99) * 1e3:7.1f} ms  ({what})")
    capacity = v_rate * messages_per_request / 50
    print(f"v6ray IB messages/s vs 50   {capacity:8.2f}x  ({messages_per_request} per request; "
          "target >= 20x)")
    # What v6ray itself costs, apart from the simulator sharing this machine's cores.
    per_request = cpu["ray workers"] / n
    print(f"v6ray CPU per request       {per_request * 1e3:8.2f} ms  (queue + gateway + writers; "
          f"{1 / per_request:,.0f} req/s per core = "
          f"{messages_per_request / per_request / 50:.1f}x of 50/s); simulator "
          f"{cpu['simulator'] / n * 1e3:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, configure_logging=False)
    n = args.requests
    workloads = [("A. futures snapshots, closed-loop waves of 90",
                  waves(snapshot_items(), n), 2),
                 ("B. single-bar historical, all at once", [bar_items(n)], 1)]
    results = []
    sim, port = start_simulator()
    try:
        with GatewayHarness(tempfile.mkdtemp(), "bench-overhead", time_scale=1.0,
                            sim_port=port,
                            gateway_overrides={"pacing": False, "max_in_flight": 2000,
                                               "claim_batch": 250}) as h:
            h.wait_all([h.submit("position_update", "*")], timeout=60)  # connected and warm
            for _, batches, _ in workloads:
                results.append(through_v6ray(h, batches, sim.pid))
            counters = h.gateway_stats()["counters"]
        bare = [bare_ib_async(port, batches) for _, batches, _ in workloads]
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    print(f"requests per workload       {n} (simulator limits off, own process; "
          "v6ray pacing off)")
    print(f"v6ray writer commits        {counters['writer_commits']} for "
          f"{counters['rows_written']} rows")
    for (name, _, msgs), v, b in zip(workloads, results, bare, strict=True):
        report(name, n, v, b, msgs)


if __name__ == "__main__":
    main()
