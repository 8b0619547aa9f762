"""The gateway under IB's bad days: dropped sessions, 1100/1102, refused connects, and its
own actor being killed. Every request must end SUCCESS, none lost, no duplicate rows."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
import ray

from tests.helpers import wait_for
from v6ray.gateway.testing import GatewayHarness
from v6ray.requests.model import Status
from v6ray.storage.schemas import TABLES

pytestmark = pytest.mark.timeout(240)

STOCKS = ["SPY", "QQQ", "IWM", "AAPL", "MSFT", "NVDA"]
BASE = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)


def workload() -> list[dict]:
    items = []
    for i in range(24):
        items.append({"request_type": "market_bars", "symbol": STOCKS[i % len(STOCKS)],
                      "parameters": {"duration": "1800 S", "bar_size": "5 secs",
                                     "use_rth": False,
                                     "end": (BASE + timedelta(days=7 * (i // 6))).isoformat()}})
    for i in range(12):
        items.append({"request_type": "market_bars", "symbol": STOCKS[i % len(STOCKS)],
                      "parameters": {"duration": "2 D", "bar_size": "1 hour",
                                     "end": (BASE + timedelta(days=i + 1)).isoformat()}})
    items += [{"request_type": "futures_snapshot", "symbol": s} for s in ("ES", "NQ", "RTY")]
    items += [{"request_type": "option_chain", "symbol": s,
               "parameters": {"dte": 20, "strikes": 4}} for s in ("SPY", "QQQ", "IWM")]
    items += [{"request_type": "position_update", "symbol": "*"}]
    return items


def assert_all_succeeded_once(h: GatewayHarness, finals) -> None:
    bad = [(f.request_type.value, f.symbol, f.status.value, f.error_message)
           for f in finals if f.status is not Status.SUCCESS]
    assert not bad
    for name in ("market_bars", "option_snapshots", "futures_snapshots", "positions"):
        frame = h.read(name)
        keys = list(TABLES[name].key_columns)
        assert frame.height == frame.select(keys).unique().height, f"duplicates in {name}"
    for final in finals:
        table = h.read(final.result_data["table"])
        if final.result_data["table"] != "market_bars":  # bars may be owned by a later load
            mine = table.filter(pl.col("request_id") == final.request_id)
            assert mine.height == final.result_data["rows"] > 0


def test_dropped_session_1100_1102_and_refused_connects(ray_namespace, data_dir):
    with GatewayHarness(data_dir, ray_namespace, time_scale=0.01,
                        gateway_overrides={"breaker_failures": 3}) as h:
        h.wait_all([h.submit("position_update", "*")], timeout=60)
        h.sim.set_response_delay(0.5)  # keep requests in flight when the faults hit
        ids = h.submit_many(workload())
        wait_for(lambda: h.gateway_stats()["in_flight"] >= 5, 30, "requests in flight")
        assert h.sim.drop_connections() == 1
        wait_for(lambda: h.gateway_stats()["counters"]["reconnects"] >= 1, 30, "reconnect")
        wait_for(lambda: h.gateway_stats()["in_flight"] >= 3, 30, "requests in flight again")
        h.sim.connectivity_lost()
        wait_for(lambda: h.gateway_stats()["paused"], 10, "1100 pause")
        # In-flight requests are released (not failed) and nothing new is claimed.
        wait_for(lambda: h.gateway_stats()["in_flight"] == 0, 10, "release on 1100")
        h.sim.connectivity_restored()
        wait_for(lambda: not h.gateway_stats()["paused"], 10, "1102 resume")
        h.sim.refuse_connections(3.0)
        h.sim.drop_connections()
        circuits = set()
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            circuits.add(h.gateway_stats()["circuit"])
            time.sleep(0.05)
        assert "open" in circuits  # a dead gateway is not hammered
        h.sim.set_response_delay(0.0)
        finals = h.wait_all(ids, timeout=150)
        assert_all_succeeded_once(h, finals)
        stats = h.gateway_stats()
        assert stats["counters"]["released"] >= 3
        assert stats["counters"]["reconnects"] >= 2
        assert "1100" in stats["ib_errors"]
        assert h.sim.stats()["violations"] == {}


def test_gateway_actor_killed_mid_batch(ray_namespace, data_dir):
    with GatewayHarness(data_dir, ray_namespace, time_scale=0.01,
                        queue_overrides={"lease_seconds": 4.0}) as h:
        h.wait_all([h.submit("position_update", "*")], timeout=60)
        h.sim.set_response_delay(0.3)
        ids = h.submit_many(workload())
        wait_for(lambda: h.gateway_stats()["in_flight"] >= 5, 30, "requests in flight")
        ray.kill(h.gateway, no_restart=False)
        h.sim.set_response_delay(0.0)
        # The restarted actor starts itself; its predecessor's leases expire and are retried.
        finals = h.wait_all(ids, timeout=150)
        assert_all_succeeded_once(h, finals)
        assert h.gateway_stats()["state"] == "connected"
        assert h.sim.stats()["connections"]["total"] >= 2


def test_unknown_symbol_is_final_not_retried_forever(ray_namespace, data_dir):
    with GatewayHarness(data_dir, ray_namespace, time_scale=0.01) as h:
        ids = h.submit_many([
            {"request_type": "market_bars", "symbol": "NOPE"},
            {"request_type": "option_chain", "symbol": "NOPE"},
            {"request_type": "futures_snapshot", "symbol": "SPY"},  # not a future root
        ])
        for final in h.wait_all(ids, timeout=60):
            assert final.status is Status.FAILED
            assert final.error_message.startswith("IB error 200"), final.error_message
            assert final.attempts == 1
