"""Bars through the real stack (queue → gateway → simulator → Delta): IB's "no data" is an
answer, and every bar row carries its series so no series replaces another."""

from __future__ import annotations

import polars as pl
import pytest

from v6ray.requests.model import Status

pytestmark = pytest.mark.timeout(180)

SATURDAY = "2025-03-08T18:00:00Z"
THURSDAY_AFTER_HOURS = "2025-03-06T23:00:00Z"  # 18:00 in New York: RTH ended at 16:00
THURSDAY_CLOSE = "2025-03-06T21:00:00Z"


def bars_request(symbol: str, **parameters) -> dict:
    return {"request_type": "market_bars", "symbol": symbol, "parameters": parameters}


def test_a_window_without_trading_ends_success_with_zero_rows_and_a_note(harness):
    weekend, after_hours, extended, split = harness.submit_many([
        bars_request("SPY", duration="3600 S", bar_size="1 min", end=SATURDAY),
        bars_request("SPY", duration="3600 S", bar_size="1 min", end=THURSDAY_AFTER_HOURS),
        bars_request("SPY", duration="3600 S", bar_size="1 min", end=THURSDAY_AFTER_HOURS,
                     use_rth=False),
        # Two chunks of one day each: Saturday-Sunday has no bars, Friday afternoon has.
        bars_request("SPY", duration="172800 S", bar_size="1 min", end="2025-03-09T18:00:00Z"),
    ])
    finals = harness.wait_all([weekend, after_hours, extended, split], timeout=120)
    assert [f.status for f in finals] == [Status.SUCCESS] * 4, [f.error_message for f in finals]
    for final in finals[:2]:
        assert final.attempts == 1  # an answer: not retried
        assert final.result_data["rows"] == 0 and final.result_data["table"] == "market_bars"
        assert "no data" in final.result_data["note"]
        assert "HMDS query returned no data" in final.result_data["note"]  # IB's own words
        assert final.error_message is None
    bars = harness.read("market_bars")
    assert bars.filter(pl.col("request_id").is_in([weekend, after_hours])).height == 0
    # The same hour outside regular trading hours has bars: a different series.
    mine = bars.filter(pl.col("request_id") == extended)
    assert mine.height == finals[2].result_data["rows"] == 60
    assert mine["use_rth"].to_list() == [False] * 60
    # A request whose first chunk has no bars keeps the bars of its other chunk.
    friday = bars.filter(pl.col("request_id") == split)
    assert friday.height == finals[3].result_data["rows"] > 0
    assert set(friday["timestamp"].dt.date().cast(pl.String)) == {"2025-03-07"}
    assert "note" not in finals[3].result_data
    assert harness.gateway_stats()["counters"]["completed"] >= 4


def test_regular_and_extended_hours_daily_bars_are_both_kept(harness):
    ids = harness.submit_many([
        bars_request("SPY", duration="5 D", bar_size="1 day", end=THURSDAY_CLOSE),
        bars_request("SPY", duration="5 D", bar_size="1 day", end=THURSDAY_CLOSE, use_rth=False),
        bars_request("ES", duration="5 D", bar_size="1 day", end=THURSDAY_CLOSE, use_rth=False),
    ])
    finals = harness.wait_all(ids, timeout=120)
    assert [f.status for f in finals] == [Status.SUCCESS] * 3, [f.error_message for f in finals]
    bars = harness.read("market_bars")
    spy = bars.filter(pl.col("symbol") == "SPY")
    # Same days, same timestamps: under a key without use_rth one load replaced the other.
    assert spy.group_by("use_rth").len().sort("use_rth")["len"].to_list() == [5, 5]
    assert spy.filter(pl.col("use_rth"))["timestamp"].sort().equals(
        spy.filter(~pl.col("use_rth"))["timestamp"].sort())
    assert set(spy["sec_type"]) == {"STK"} and set(spy["exchange"]) == {"SMART"}
    es = bars.filter(pl.col("symbol") == "ES")
    assert es.height == 5 and set(es["sec_type"]) == {"CONTFUT"}
    assert set(es["contract_month"]) == {""}
    # The continuous future was qualified: its rows name the contract IB resolved it to.
    assert es["con_id"].null_count() == 0 and es["local_symbol"].str.starts_with("ES").all()
