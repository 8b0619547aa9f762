"""Bench 4, the old way: the same mixed workload through 4 independent ib_async clients
(the pre-v6ray design: each script its own connection, no shared pacing) and through
v6ray, each against a fresh simulator with IB's limits on (time-scaled). Prints
connections, peak market-data lines, violations and outcomes side by side.

    python bench/gateway_oldway.py [--time-scale 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from datetime import UTC, date, datetime, timedelta

import ray

from v6ray.gateway import planning
from v6ray.gateway.testing import GatewayHarness

STOCKS = ["SPY", "QQQ", "IWM", "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA"]
BASE = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)


def workload() -> list[dict]:
    items = []
    for i in range(150):
        items.append({"request_type": "market_bars", "symbol": STOCKS[i % 10], "parameters": {
            "duration": "1800 S", "bar_size": "5 secs", "use_rth": False,
            "end": (BASE + timedelta(days=7 * (i // 10))).isoformat()}})
    for i in range(60):
        items.append({"request_type": "market_bars", "symbol": STOCKS[i % 10], "parameters": {
            "duration": "1 W", "bar_size": "1 hour", "use_rth": False,
            "end": (BASE + timedelta(days=i)).isoformat()}})
    items += [{"request_type": "futures_snapshot", "symbol": ["ES", "NQ", "RTY"][i % 3],
               "priority": 1 + i % 3, "parameters": {}} for i in range(60)]
    items += [{"request_type": "option_chain", "symbol": STOCKS[i % 3],
               "parameters": {"dte": 10 + i, "strikes": 5}} for i in range(20)]
    items += [{"request_type": "position_update", "symbol": s, "parameters": {}} for s in STOCKS]
    return items


async def old_client(port: int, client_id: int, items: list[dict]) -> tuple[int, int]:
    """One pre-v6ray script: its own connection, everything at once, ib_async defaults."""
    from ib_async import IB, Future, Option, Stock  # a bench may import ib_async

    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=client_id, readonly=True)

    async def one(item: dict) -> bool:
        p, sym = item["parameters"], item["symbol"]
        kind = item["request_type"]
        if kind == "market_bars":
            bars = await ib.reqHistoricalDataAsync(
                Stock(sym, "SMART", "USD"), datetime.fromisoformat(p["end"]), p["duration"],
                p["bar_size"], "TRADES", False, formatDate=2, timeout=20)
            return bool(bars)
        if kind == "futures_snapshot":
            details = await ib.reqContractDetailsAsync(Future(sym, exchange="CME"))
            if not details:
                return False
            front = min(details, key=lambda d: d.contract.lastTradeDateOrContractMonth)
            [ticker] = await ib.reqTickersAsync(front.contract)
            return ticker.bid == ticker.bid  # not NaN
        if kind == "position_update":
            await ib.reqPositionsAsync()
            return True
        [under] = await ib.qualifyContractsAsync(Stock(sym, "SMART", "USD"))
        chains = await ib.reqSecDefOptParamsAsync(sym, "", "STK", under.conId)
        [spot] = await ib.reqTickersAsync(under)
        chain = next(c for c in chains if c.exchange == "SMART")
        expiry = planning.choose_expiries(chain.expirations, date.today(), dte=p["dte"])[0]
        strikes = planning.choose_strikes(chain.strikes, spot.marketPrice(), p["strikes"])
        options = await ib.qualifyContractsAsync(
            *[Option(sym, expiry, k, r, "SMART", tradingClass=sym) for k in strikes
              for r in ("C", "P")])
        tickers = await ib.reqTickersAsync(*[o for o in options if o])
        return all(t.bid == t.bid for t in tickers)

    async def guarded(item: dict) -> bool:
        try:
            return await asyncio.wait_for(one(item), 30)
        except Exception:
            return False

    results = await asyncio.gather(*(guarded(i) for i in items))
    ib.disconnect()
    return sum(results), len(results) - sum(results)


def run_old_way(items: list[dict], scale: float) -> dict:
    from v6ray.sim import SimConfig, SimulatorThread

    with SimulatorThread(SimConfig(time_scale=scale, seed=7)) as sim:
        started = time.monotonic()

        async def all_clients() -> list[tuple[int, int]]:
            return await asyncio.gather(*(old_client(sim.port, 10 + k, items[k::4])
                                          for k in range(4)))

        outcomes = asyncio.run(all_clients())
        elapsed = time.monotonic() - started
        stats = sim.stats()
    return {"elapsed": elapsed, "ok": sum(o for o, _ in outcomes),
            "bad": sum(b for _, b in outcomes), "sim": stats}


def run_v6ray(items: list[dict], scale: float) -> dict:
    with GatewayHarness(tempfile.mkdtemp(), "bench-oldway", time_scale=scale) as h:
        started = time.monotonic()
        finals = h.wait_all(h.submit_many(items), timeout=600)
        elapsed = time.monotonic() - started
        ok = sum(f.status.value == "SUCCESS" for f in finals)
        return {"elapsed": elapsed, "ok": ok, "bad": len(finals) - ok, "sim": h.sim.stats(),
                "attempts": sum(f.attempts for f in finals)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--time-scale", type=float, default=0.01)
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, configure_logging=False)
    items = workload()
    old = run_old_way(items, args.time_scale)
    new = run_v6ray(items, args.time_scale)
    print(f"workload                 {len(items)} requests (150 small-bar, 60 large-bar, "
          f"60 futures, 20 chains, 10 positions), time_scale {args.time_scale}")
    print(f"{'':25}{'4 x ib_async':>16}{'v6ray':>12}")
    rows = [
        ("connections", old["sim"]["connections"]["total"], new["sim"]["connections"]["total"]),
        ("peak lines", old["sim"]["market_data_lines"]["peak"],
         new["sim"]["market_data_lines"]["peak"]),
        ("peak historical open", old["sim"]["historical_open"]["peak"],
         new["sim"]["historical_open"]["peak"]),
        ("violations", sum(old["sim"]["violations"].values()),
         sum(new["sim"]["violations"].values())),
        ("succeeded", old["ok"], new["ok"]),
        ("failed / empty", old["bad"], new["bad"]),
        ("elapsed s", round(old["elapsed"], 2), round(new["elapsed"], 2)),
    ]
    for name, a, b in rows:
        print(f"{name:25}{a!s:>16}{b!s:>12}")
    print(f"violations by code       old {old['sim']['violations']}  v6ray "
          f"{new['sim']['violations'] or {}}")


if __name__ == "__main__":
    main()
