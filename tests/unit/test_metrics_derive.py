"""Assembling derived_statistics from the tables (pure): as-of bar stats, carried-over option
stats, ranks over old and new rows, the table's schema, and the missing-history plan."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from v6ray.requests.instruments import bar_series
from v6ray.stats.derive import (
    compute_derived_statistics,
    daily_series,
    last_completed_session,
    missing_daily_bars,
    to_arrow,
)
from v6ray.storage.schemas import DERIVED_STATISTICS_SCHEMA

FIRST = date(2026, 10, 1)


def bars_frame(symbol="SPY", days=25, bar_size="1 day", scale=1.0, **parameters):
    """Daily bars of ``symbol``'s series ``parameters`` mean (default: regular hours of its
    default instrument, the series derive-stats reads); prices times ``scale``."""
    rows = []
    close = 100.0 * scale
    for i in range(days):
        close *= math.exp(0.01 if i % 2 == 0 else -0.01)
        day = FIRST + timedelta(days=i)
        rows.append(
            {
                "request_id": "r",
                "symbol": symbol,
                "bar_size": bar_size,
                "what_to_show": "TRADES",
                **bar_series(symbol, parameters),
                "timestamp": datetime(day.year, day.month, day.day, tzinfo=UTC),
                "open": close,
                "high": close + scale,
                "low": close - scale,
                "close": close,
                "volume": 1000.0,
            }
        )
    return pl.DataFrame(rows).with_columns(pl.col("timestamp").dt.cast_time_unit("us"))


def options_frame(day: date, spot=100.0):
    stamp = datetime(day.year, day.month, day.day, 20, 0, tzinfo=UTC)
    expiry = day + timedelta(days=30)
    rows = [
        {
            "symbol": "SPY",
            "expiry": expiry,
            "strike": 100.0,
            "right": r,
            "implied_vol": iv,
            "volume": vol,
            "underlying_price": spot,
            "snapshot_time": stamp,
        }
        for r, iv, vol in (("C", 0.2, 100.0), ("P", 0.3, 50.0))
    ]
    return pl.DataFrame(rows).with_columns(pl.col("snapshot_time").dt.cast_time_unit("us"))


def test_rows_per_date_with_as_of_bar_stats_and_option_stats():
    last_bar = FIRST + timedelta(days=24)
    weekend = last_bar + timedelta(days=1)  # options seen a day after the last bar
    out = compute_derived_statistics(
        pl.concat([bars_frame(), bars_frame(symbol="QQQ")]),
        options_frame(weekend),
        symbols=["spy"],
        computed_at=datetime(2026, 11, 1, tzinfo=UTC),
    )
    assert set(out["symbol"]) == {"SPY"}
    assert out.height == 26
    row = out.filter(pl.col("date") == weekend).to_dicts()[0]
    bar_row = out.filter(pl.col("date") == last_bar).to_dicts()[0]
    assert row["realized_vol_20d"] == pytest.approx(bar_row["realized_vol_20d"])
    assert row["realized_vol_20d"] == pytest.approx(math.sqrt(20 * 0.0001 / 19 * 252))
    assert row["atr_14"] == pytest.approx(bar_row["atr_14"])
    assert row["atm_iv"] == pytest.approx(0.25)
    assert row["put_call_volume_ratio"] == pytest.approx(0.5)
    assert bar_row["atm_iv"] is None
    table = to_arrow(out)
    assert table.schema == DERIVED_STATISTICS_SCHEMA


def test_statistics_read_only_the_regular_hours_series_of_the_default_instrument():
    """Extended-hours bars, a futures month or another exchange at the same timestamps
    (with prices 10x off) change nothing: derive-stats reads one series per symbol."""
    regular = pl.concat([bars_frame("SPY"), bars_frame("ES")])
    others = pl.concat([
        bars_frame("SPY", scale=10.0, use_rth=False),
        bars_frame("SPY", scale=10.0, exchange="ARCA"),
        bars_frame("ES", scale=10.0, contract_month="202512"),
        bars_frame("ES", scale=10.0, use_rth=False),
    ])
    stamp = datetime(2026, 11, 1, tzinfo=UTC)
    alone = compute_derived_statistics(regular, options_frame(FIRST), computed_at=stamp)
    mixed = compute_derived_statistics(pl.concat([others, regular]), options_frame(FIRST),
                                       computed_at=stamp)
    assert mixed.equals(alone)
    assert alone.filter(pl.col("symbol") == "ES")["atr_14"].drop_nulls().round(6).to_list()
    assert daily_series("ES") == {"symbol": "ES", "bar_size": "1 day", "what_to_show": "TRADES",
                                  "use_rth": True, "sec_type": "CONTFUT", "exchange": "CME",
                                  "contract_month": ""}
    # The history plan counts only that series too: 400 extended-hours days are not enough.
    last = FIRST + timedelta(days=399)
    assert missing_daily_bars(bars_frame("QQQ", 400, use_rth=False), ["QQQ"], last_session=last)
    assert not missing_daily_bars(bars_frame("QQQ", 400), ["QQQ"], last_session=last)


def test_earlier_option_stats_are_kept_and_feed_the_rank():
    old_days = [FIRST - timedelta(days=i) for i in range(1, 21)]  # 20 days of IV history
    existing = pl.DataFrame(
        {
            "symbol": ["SPY"] * 20,
            "date": old_days,
            "atm_iv": [0.10 + 0.01 * i for i in range(20)],  # 0.10 .. 0.29
            "put_call_volume_ratio": [1.0] * 20,
            "realized_vol_20d": [None] * 20,
        },
        schema_overrides={"realized_vol_20d": pl.Float64},
    )
    today = FIRST + timedelta(days=3)
    out = compute_derived_statistics(bars_frame(days=5), options_frame(today), existing)
    row = out.filter(pl.col("date") == today).to_dicts()[0]
    # 21 atm_iv observations: min 0.10, max 0.29, today 0.25 -> (0.25-0.10)/(0.29-0.10)
    assert row["iv_rank_252d"] == pytest.approx(0.15 / 0.19)
    # Old rows are not rewritten; a bar date without options keeps its carried-over nothing.
    assert out.filter(pl.col("date") < FIRST).height == 0


def test_missing_daily_bars_plan():
    bars = pl.concat([bars_frame("SPY", days=300), bars_frame("QQQ", days=10)])
    spy_last = FIRST + timedelta(days=299)
    assert missing_daily_bars(bars, ["SPY"], last_session=spy_last) == []
    gap = missing_daily_bars(bars, ["SPY"], last_session=spy_last + timedelta(days=4))
    assert [i["parameters"]["duration"] for i in gap] == ["7 D"]
    full = missing_daily_bars(bars, ["QQQ", "IWM", "qqq"], last_session=spy_last)
    assert [(i["symbol"], i["parameters"]["duration"]) for i in full] == [
        ("QQQ", "2 Y"),
        ("IWM", "2 Y"),
    ]
    assert full[0]["parameters"]["bar_size"] == "1 day"
    # Hourly bars do not count as daily history.
    assert missing_daily_bars(bars_frame("DIA", 400, "1 hour"), ["DIA"], last_session=spy_last)


def test_last_completed_session_follows_the_calendar():
    assert last_completed_session(datetime(2026, 11, 27, 17, 0, tzinfo=UTC)) == date(2026, 11, 25)
    assert last_completed_session(datetime(2026, 11, 27, 18, 5, tzinfo=UTC)) == date(2026, 11, 27)


def test_one_task_per_symbol_gives_exactly_the_rows_of_one_task_for_all():
    """`derive-stats` fans out one task per symbol: their union must equal the single run."""
    later = FIRST + timedelta(days=25)
    bars = pl.concat([bars_frame(), bars_frame(symbol="QQQ", scale=3.0),
                      bars_frame(symbol="IWM", days=21, scale=0.5)])
    options = pl.concat([options_frame(later), options_frame(later, spot=300.0)
                         .with_columns(pl.lit("QQQ").alias("symbol"))])
    stamp = datetime(2026, 11, 1, tzinfo=UTC)
    together = compute_derived_statistics(bars, options, symbols=["SPY", "QQQ", "IWM"],
                                          computed_at=stamp)
    apart = pl.concat([compute_derived_statistics(bars, options, symbols=[s], computed_at=stamp)
                       for s in ("IWM", "SPY", "QQQ")]).sort("symbol", "date")
    assert together.height > 60
    assert apart.equals(together)
