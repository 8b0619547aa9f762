"""IB's limits hold under load, priorities are honoured, overlapping loads never duplicate."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from v6ray.gateway.testing import GatewayHarness
from v6ray.requests import markets
from v6ray.requests.markets import SessionKind
from v6ray.requests.model import Status

pytestmark = pytest.mark.timeout(240)

STOCKS = ["SPY", "QQQ", "IWM", "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA"]
BASE = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)  # a Monday, 10:00 New York


def small_bar_items(count: int, priority: int = 2, offset_hours: int = 0) -> list[dict]:
    """Distinct small-bar requests (so none coalesce and none is "identical")."""
    items = []
    for i in range(count):
        end = BASE + timedelta(days=7 * (i // len(STOCKS)), hours=offset_hours)
        while not markets.session_on(SessionKind.EQUITY, True, end.date()):
            end += timedelta(days=1)  # Memorial Day: no bars, IB answers "no data"
        items.append({
            "request_type": "market_bars", "symbol": STOCKS[i % len(STOCKS)],
            "priority": priority,
            "parameters": {"duration": "1800 S", "bar_size": "5 secs", "use_rth": False,
                           "end": end.isoformat()},
        })
    return items


def test_300_mixed_requests_without_a_single_violation(ray_namespace, data_dir):
    items = small_bar_items(150)
    for i in range(60):
        items.append({"request_type": "market_bars", "symbol": STOCKS[i % len(STOCKS)],
                      "parameters": {"duration": "1 W", "bar_size": "1 hour", "use_rth": False,
                                     "end": (BASE + timedelta(days=i)).isoformat()}})
    for i in range(60):
        items.append({"request_type": "futures_snapshot", "symbol": ["ES", "NQ", "RTY"][i % 3],
                      "priority": 1 + i % 3})
    for i in range(20):
        items.append({"request_type": "option_chain", "symbol": STOCKS[i % 3],
                      "parameters": {"dte": 10 + i, "strikes": 5}})
    items += [{"request_type": "position_update", "symbol": s} for s in STOCKS]
    assert len(items) == 300
    with GatewayHarness(data_dir, ray_namespace, time_scale=0.01) as h:
        ids = h.submit_many(items)
        finals = h.wait_all(ids, timeout=180)
        failed = [(f.symbol, f.error_message) for f in finals if f.status is not Status.SUCCESS]
        assert not failed
        sim = h.sim.stats()
        stats = h.gateway_stats()
    assert sim["violations"] == {}, (sim, stats["last_error"])
    assert sim["market_data_lines"]["peak"] <= 100
    assert stats["pacing"]["peak_lines"] <= stats["line_budget"]
    assert stats["pacing"]["historical_sent"] >= 210
    for code in ("100", "101", "162", "322"):
        assert code not in stats["ib_errors"]


def test_immediate_jumps_a_background_backlog(ray_namespace, data_dir):
    with GatewayHarness(data_dir, ray_namespace, time_scale=0.01) as h:
        h.wait_all([h.submit("position_update", "*")], timeout=60)  # connected, writer warm
        backlog = h.submit_many(small_bar_items(140, priority=3))
        deadline = time.monotonic() + 60
        while h.gateway_stats()["pacing"]["historical_sent"] < 60:  # first window is full
            assert time.monotonic() < deadline
            time.sleep(0.05)
        urgent = h.submit("market_bars", "SPY", priority=1, parameters={
            "duration": "1800 S", "bar_size": "5 secs", "use_rth": False,
            "end": (BASE - timedelta(days=7)).isoformat()})
        finals = h.wait_all([*backlog, urgent], timeout=120)
    assert all(f.status is Status.SUCCESS for f in finals), {f.error_message for f in finals}
    done_at = next(f.updated_at for f in finals if f.request_id == urgent)
    # Outcomes reach the queue in batches that share one timestamp: count only the requests
    # that finished strictly before the urgent one's batch.
    rank = sum(f.updated_at < done_at for f in finals)
    # Ahead of it: the first window (60) and the few admitted early (pipeline depth 8).
    assert rank <= 60 + 8 + 2, rank


def test_overlapping_loads_leave_one_row_per_bar(ray_namespace, data_dir):
    end = datetime(2025, 3, 7, 21, 0, tzinfo=UTC)
    loads = [("3 D", end), ("2 D", end - timedelta(hours=12)), ("1 D", end),
             ("2 D", end - timedelta(days=1)), ("4 D", end)]
    items = [{"request_type": "market_bars", "symbol": "QQQ",
              "parameters": {"duration": d, "bar_size": "1 min", "use_rth": False,
                             "end": e.isoformat()}} for d, e in loads]
    with GatewayHarness(data_dir, ray_namespace, time_scale=0.01,
                        gateway_overrides={"write_batch_rows": 1}) as h:
        finals = h.wait_all(h.submit_many(items), timeout=120)
        assert all(f.status is Status.SUCCESS for f in finals), [f.error_message for f in finals]
        bars = h.read("market_bars")
    keys = bars.select("symbol", "bar_size", "what_to_show", "timestamp")
    assert bars.height == keys.unique().height
    # The 4-day load: four sessions of 16 extended hours of 1-min bars, the newest up to
    # its 16:00 end.
    assert bars.height == 3 * 960 + 720
