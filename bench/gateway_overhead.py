"""Bench 3, overhead: 1,000 requests with the simulator's limits off, once through v6ray
(durable queue → gateway → Delta MERGE; SUCCESS only after the rows are committed) and once
by a bare ib_async loop that writes nothing, in one run. Prints the throughput ratio and
p50/p99 latency enqueue → row visible.

Two workloads, because the queue coalesces identical live requests:
  A. futures snapshots: only 90 distinct questions exist (5 roots x 9 months x 2 exchange
     names), so 1,000 are asked in closed-loop waves of 90 on both sides (latency-bound);
  B. single-bar historical requests (1 day bar, distinct end dates): 1,000 distinct, all
     submitted at once on both sides (capacity-bound);
  C. as B with 4,000: a run of ~1 s is mostly pipeline start-up and drain, this one less.

Capacity: v6ray's stages (queue, gateway, writers) are separate processes working as a
pipeline, so it carries as many requests per second as its busiest stage can on one core.
This machine has 2 cores for the simulator, the bench driver and all of v6ray, so the end
to end figure is also bounded by them; the bare loop shows where that bound is.

The simulator runs in its own process (``python -m v6ray.sim``), the same one for both
sides: in the driver's process it would compete with the driver for the GIL, and with
v6ray the driver is busier (it submits and waits through Ray) than the bare loop is.

    python bench/gateway_overhead.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta

import ray

from v6ray.gateway.testing import GatewayHarness
from v6ray.sim.testing import start_simulator_process

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


# The simulator's stocks: distinct (symbol, end date) pairs, all in the past.
STOCKS = ["SPY", "QQQ", "IWM", "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA"]


def bar_items(total: int) -> list[dict]:
    base = datetime(2024, 1, 5, 21, 0, tzinfo=UTC)
    return [{"request_type": "market_bars", "symbol": STOCKS[i % len(STOCKS)],
             "parameters": {"duration": "1 D", "bar_size": "1 day",
                            "end": (base + timedelta(days=i // len(STOCKS))).isoformat()}}
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


STAGES = {"RequestQueue": "queue", "IBGateway": "gateway"}  # other Ray workers: writers


class CpuMeter:
    """CPU seconds of each v6ray stage and of the simulator while a ``with`` block runs.

    Counts this cluster's Ray workers (children of our raylet: other clusters on the
    machine are not counted). Ray ends idle workers (writers) at any time, taking their
    CPU counters with them, so processes are sampled every ``every`` seconds and each
    one counts what it used between its first and last sighting.
    """

    def __init__(self, simulator_pid: int, every: float = 0.1) -> None:
        self.raylet = ray._private.worker._global_node.all_processes["raylet"][0].process.pid
        self.simulator_pid = simulator_pid
        self.every = every
        self.first: dict[int, float] = {}
        self.last: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)

    def __enter__(self) -> CpuMeter:
        self._sample(baseline=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def _sample(self, baseline: bool = False) -> None:
        for pid, (parent, cpu, cmd) in _process_table().items():
            if pid == self.simulator_pid:
                stage = "simulator"
            elif parent == self.raylet and cmd.startswith("ray::") and "Agent" not in cmd:
                stage = next((v for k, v in STAGES.items() if cmd.startswith(f"ray::{k}")),
                             "writers")
            else:
                continue
            self.first.setdefault(pid, cpu if baseline else 0.0)
            self.last[pid] = (stage, cpu)

    def seconds(self) -> dict[str, float]:
        out = {"queue": 0.0, "gateway": 0.0, "writers": 0.0, "simulator": 0.0}
        for pid, (stage, cpu) in self.last.items():
            out[stage] += cpu - self.first[pid]
        return out


def through_v6ray(h: GatewayHarness, batches: list[list[dict]], simulator_pid: int
                  ) -> tuple[float, list[float], dict[str, float]]:
    latencies: list[float] = []
    with CpuMeter(simulator_pid) as meter:
        started = time.monotonic()
        for wave in batches:
            finals = h.wait_all(h.submit_many(wave), timeout=600)
            bad = [f.error_message for f in finals if f.status.value != "SUCCESS"]
            assert not bad, bad[:3]
            latencies += [(f.updated_at - f.created_at).total_seconds() for f in finals]
        elapsed = time.monotonic() - started
    return elapsed, latencies, meter.seconds()


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
    end_to_end = v_rate * messages_per_request / 50
    print(f"v6ray IB messages/s vs 50   {end_to_end:8.2f}x  end to end ({messages_per_request} "
          "per request)")
    # Capacity: the stages are separate processes working as a pipeline, so v6ray can
    # carry as many requests per second as its busiest stage can on one core.
    per_request = {k: cpu[k] / n for k in ("queue", "gateway", "writers")}
    busiest = max(per_request, key=per_request.__getitem__)
    capacity = 1 / per_request[busiest]
    print("v6ray CPU per request       " + ", ".join(
        f"{k} {v * 1e3:.2f} ms" for k, v in per_request.items())
          + f"; simulator {cpu['simulator'] / n * 1e3:.2f} ms")
    one_core = 1 / sum(per_request.values())
    print(f"v6ray on a single core      {one_core:8.0f} req/s = "
          f"{one_core * messages_per_request / 50:.1f}x of 50/s (all stages sharing one core)")
    print(f"v6ray capacity              {capacity:8.0f} req/s = "
          f"{capacity * messages_per_request / 50:.1f}x of 50/s (busiest stage: {busiest}, "
          f"one core each; target >= 20x: "
          f"{'MET' if capacity * messages_per_request / 50 >= 20 else 'MISSED'})")


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
                 ("B. single-bar historical, all at once", [bar_items(n)], 1),
                 (f"C. single-bar historical, {4 * n:,} at once (sustained: start-up and "
                  "drain weigh less)", [bar_items(4 * n)], 1)]
    results = []
    sim, port = start_simulator_process("--no-limits")
    try:
        with GatewayHarness(tempfile.mkdtemp(), "bench-overhead", time_scale=1.0,
                            sim_port=port,
                            gateway_overrides={"pacing": False, "max_in_flight": 2000,
                                               "claim_batch": 250}) as h:
            # Connected, and each result table's writer path warm (a worker's first Delta
            # MERGE costs ~0.25 s of set-up): the bare loop is connected and writes nothing.
            h.wait_all([h.submit("position_update", "*"),
                        h.submit("futures_snapshot", "MES", parameters={"exchange": "CME"}),
                        h.submit("market_bars", "AAPL", parameters={
                            "duration": "1 D", "bar_size": "1 day", "end": "2023-06-01"})],
                       timeout=60)
            for _, batches, _ in workloads:
                results.append(through_v6ray(h, batches, sim.pid))
            counters = h.gateway_stats()["counters"]
        bare = [bare_ib_async(port, batches) for _, batches, _ in workloads]
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    print(f"requests per workload       {n} ({4 * n} for C; simulator limits off, own "
          "process; v6ray pacing off)")
    print(f"v6ray writer commits        {counters['writer_commits']} for "
          f"{counters['rows_written']} rows")
    for (name, batches, msgs), v, b in zip(workloads, results, bare, strict=True):
        report(name, sum(map(len, batches)), v, b, msgs)


if __name__ == "__main__":
    main()
