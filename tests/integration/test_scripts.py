"""The data-loading scripts against a running system: queue + IBGateway + simulator."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl
import pytest

from v6ray.client.api import Client
from v6ray.requests.model import Status
from v6ray.scripts.derive_statistics import derive_statistics
from v6ray.scripts.load_historical_data import load_history
from v6ray.storage.reader import read_table

pytestmark = pytest.mark.timeout(240)

RTH_MINUTES = 390


def test_load_history_in_chunks_gives_every_bar_once(harness, data_dir, ray_namespace):
    client = Client(harness.queue, namespace=ray_namespace)
    # Two weeks to Friday 2025-01-10 16:00 ET hold 8 sessions: Dec 30, 31, Jan 2, 3, 6, 7,
    # 8, 10 (New Year's Day and Thursday Jan 9 were closed).
    end = datetime(2025, 1, 10, 21, 0, tzinfo=UTC)
    summary = load_history(
        client, ["SPY"], duration="2 W", bar_size="1 min", end=end, progress=False, timeout=120
    )
    assert summary.ok, summary.render()
    assert summary.requests == 2  # "5 D" and "3 D": ~2000 1-min bars per request at most
    results = read_table("ib_requests", data_dir=data_dir)["result_data"].to_list()
    assert sorted(json.loads(r)["rows"] for r in results) == [3 * RTH_MINUTES, 5 * RTH_MINUTES]
    bars = read_table("market_bars", data_dir=data_dir).filter(
        (pl.col("symbol") == "SPY") & (pl.col("bar_size") == "1 min")
    )
    assert bars.height == 8 * RTH_MINUTES == summary.rows
    assert bars["timestamp"].n_unique() == bars.height  # no duplicates
    # No gaps: each session's bars are every minute from 09:30 to 15:59 ET.
    per_day = (
        bars.with_columns(pl.col("timestamp").dt.convert_time_zone("America/New_York"))
        .group_by(pl.col("timestamp").dt.date().alias("day"))
        .agg(
            pl.len().alias("n"),
            pl.col("timestamp").min().dt.strftime("%H:%M").alias("first"),
            pl.col("timestamp").max().dt.strftime("%H:%M").alias("last"),
            (pl.col("timestamp").sort().diff().dt.total_seconds().max()).alias("max_step"),
        )
        .sort("day")
    )
    assert per_day["day"].cast(pl.String).to_list() == [
        "2024-12-30", "2024-12-31", "2025-01-02", "2025-01-03", "2025-01-06", "2025-01-07",
        "2025-01-08", "2025-01-10",
    ]
    assert set(per_day["n"]) == {RTH_MINUTES}
    assert set(per_day["first"]) == {"09:30"} and set(per_day["last"]) == {"15:59"}
    assert set(per_day["max_step"]) == {60}

    # An overlapping load leaves the table as it was: bars merge by key.
    again = load_history(
        client, ["SPY"], duration="3 D", bar_size="1 min", end=end, progress=False, timeout=120
    )
    assert again.ok, again.render()
    assert again.requests == 1  # three sessions: one request, as given
    after = read_table("market_bars", data_dir=data_dir).filter(pl.col("bar_size") == "1 min")
    assert after.height == 8 * RTH_MINUTES


def test_derive_statistics_end_to_end(harness, data_dir, ray_namespace):
    client = Client(harness.queue, namespace=ray_namespace)
    chain = client.submit(
        "option_chain", "SPY", parameters={"dte_min": 14, "dte_max": 60, "strikes": 2}
    )
    assert client.wait(chain, timeout=120).status is Status.SUCCESS

    summary = derive_statistics(client, data_dir, ["SPY"], progress=False, timeout=150)
    assert summary.ok, summary.render()
    assert summary.requests == 1  # the daily history SPY lacked
    stats = read_table("derived_statistics", data_dir=data_dir).sort("date")
    assert stats.height == summary.rows >= 300
    assert set(stats["symbol"]) == {"SPY"}
    latest = stats.tail(1).to_dicts()[0]
    assert latest["realized_vol_20d"] > 0 and latest["atr_14"] > 0
    assert 0 < latest["atm_iv"] < 2
    assert latest["put_call_volume_ratio"] is None or latest["put_call_volume_ratio"] >= 0
    # No IV history yet: the rank falls back to realized vol's own 252-day rank.
    assert 0 <= latest["iv_rank_252d"] <= 1
    assert stats["realized_vol_20d"].null_count() == 20  # the first 20 days lack returns

    # Rerun: history is complete now, nothing is fetched, rows are replaced not duplicated.
    again = derive_statistics(client, data_dir, ["SPY"], progress=False, timeout=60)
    assert again.requests == 0 and again.ok
    assert read_table("derived_statistics", data_dir=data_dir).height == stats.height
