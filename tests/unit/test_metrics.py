"""Each derived statistic against numbers worked out by hand on tiny inputs."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from v6ray.stats import metrics as m


def daily(closes, highs=None, lows=None, symbol="SPY", start=date(2026, 1, 5)):
    n = len(closes)
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "date": [start + timedelta(days=i) for i in range(n)],
            "open": closes,
            "high": highs or closes,
            "low": lows or closes,
            "close": closes,
        }
    )


def test_realized_vol_of_alternating_one_percent_log_returns():
    # 20 log returns +0.01, -0.01, ...: mean 0, sample variance 20 * 0.0001 / 19.
    closes = [100.0]
    for i in range(20):
        closes.append(closes[-1] * math.exp(0.01 if i % 2 == 0 else -0.01))
    result = m.realized_vol(daily(closes))
    values = result["realized_vol_20d"].to_list()
    assert values[:20] == [None] * 20  # 21 closes are needed
    expected = math.sqrt(20 * 0.0001 / 19) * math.sqrt(252)  # = sqrt(0.02652632) = 0.162869
    assert values[20] == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.162869, abs=1e-6)


def test_realized_vol_keeps_symbols_apart():
    a = daily([100.0 * (1.01**i) for i in range(21)], symbol="AAA")  # constant returns
    b = daily([50.0] * 21, symbol="BBB")
    result = m.realized_vol(pl.concat([a, b])).filter(pl.col("realized_vol_20d").is_not_null())
    assert result["symbol"].to_list() == ["AAA", "BBB"]
    assert result["realized_vol_20d"].to_list() == pytest.approx([0.0, 0.0], abs=1e-12)


def test_true_range_uses_the_previous_close():
    frame = daily([9.0, 11.5, 10.0], highs=[10.0, 12.0, 11.0], lows=[8.0, 11.0, 9.0])
    # bar 1: 10-8 = 2; bar 2: max(1, |12-9|, |11-9|) = 3; bar 3: max(2, |11-11.5|, |9-11.5|) = 2.5
    assert m.true_range(frame)["true_range"].to_list() == [2.0, 3.0, 2.5]


def test_wilder_average_seed_then_smoothing():
    assert m.wilder_average([2.0, 3.0, 2.5, 4.0], 3) == [None, None, 2.5, 3.0]  # (2.5*2+4)/3
    assert m.wilder_average([], 14) == []


def test_atr_14_by_hand():
    # 14 bars of range 1 around a flat close, then a bar ranging 15: ATR = (1*13 + 15)/14 = 2.
    closes = [100.0] * 15
    highs = [100.5] * 14 + [110.0]
    lows = [99.5] * 14 + [95.0]
    values = m.atr(daily(closes, highs, lows))["atr_14"].to_list()
    assert values[:13] == [None] * 13
    assert values[13] == pytest.approx(1.0)
    assert values[14] == pytest.approx(2.0)


def test_daily_bars_take_the_date_ib_gives_them():
    bars = pl.DataFrame(
        {
            "symbol": ["SPY", "SPY"],
            "timestamp": [
                datetime(2026, 11, 24, 0, 0, tzinfo=UTC),
                datetime(2026, 11, 25, 3, 0, tzinfo=UTC),
            ],
            "open": [1.0, 2.0],
            "high": [1.0, 2.0],
            "low": [1.0, 2.0],
            "close": [1.0, 2.0],
        }
    )
    # UTC midnight names its own date; 03:00 UTC is still the 24th in New York.
    out = m.daily_bars_by_date(bars)
    assert out["date"].to_list() == [date(2026, 11, 24)]
    assert out["close"].to_list() == [2.0]  # the later bar of that date wins


def option_rows(snapshot, spot, contracts):
    """contracts: (expiry, strike, right, iv, volume)."""
    return [
        {
            "symbol": "SPY",
            "expiry": expiry,
            "strike": strike,
            "right": right,
            "implied_vol": iv,
            "volume": volume,
            "underlying_price": spot,
            "snapshot_time": snapshot,
        }
        for expiry, strike, right, iv, volume in contracts
    ]


DAY = date(2026, 11, 24)
NEAR = DAY + timedelta(days=23)
FAR = DAY + timedelta(days=37)
MORNING = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
AFTERNOON = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)


def options_frame(rows):
    return pl.DataFrame(rows).with_columns(pl.col("snapshot_time").dt.cast_time_unit("us"))


def sample_options():
    morning = option_rows(
        MORNING,
        95.0,
        [(NEAR, 95.0, "C", 0.50, 10.0), (NEAR, 95.0, "P", 0.50, 10.0)],
    )
    afternoon = option_rows(
        AFTERNOON,
        100.4,
        [
            (NEAR, 99.0, "C", 0.30, 5.0),
            (NEAR, 100.0, "C", 0.20, 200.0),
            (NEAR, 100.0, "P", 0.22, 300.0),
            (NEAR, 101.0, "P", 0.40, 0.0),
            (FAR, 100.0, "C", 0.24, 100.0),
            (FAR, 100.0, "P", 0.26, 150.0),
            (FAR, 102.0, "C", None, None),
        ],
    )
    return options_frame(morning + afternoon)


def test_atm_iv_interpolates_to_30_days_between_the_expiries_around_it():
    quotes = m.latest_option_quotes(sample_options())
    per_expiry = m.expiry_atm_iv(quotes)
    # Spot 100.4 (latest snapshot): ATM strike 100; near 23 d (0.20+0.22)/2, far 37 d (0.24+0.26)/2.
    assert per_expiry["dte"].to_list() == [23, 37]
    assert per_expiry["strike"].to_list() == [100.0, 100.0]
    assert per_expiry["atm_iv"].to_list() == pytest.approx([0.21, 0.25])
    result = m.atm_iv(quotes)
    # 0.21 + (0.25 - 0.21) * (30 - 23) / (37 - 23) = 0.23
    assert result.to_dicts() == [{"symbol": "SPY", "date": DAY, "atm_iv": pytest.approx(0.23)}]


def test_interpolation_edges():
    assert m.interpolate_to_dte([(45, 0.3)]) == 0.3  # one side only: flat
    assert m.interpolate_to_dte([(10, 0.2), (20, 0.25)]) == 0.25  # nearest below
    assert m.interpolate_to_dte([(30, 0.2), (40, 0.5)]) == 0.2  # exact
    assert m.interpolate_to_dte([]) is None


def test_put_call_volume_ratio_from_the_latest_quote_of_each_contract():
    quotes = m.latest_option_quotes(sample_options())
    # Puts 300 + 0 + 150 (+10 from the morning's 95 P, a contract seen only then) = 460;
    # calls 5 + 200 + 100 + 10 (95 C) = 315.
    result = m.put_call_volume_ratio(quotes)
    assert result["put_call_volume_ratio"].to_list() == pytest.approx([460 / 315])


def test_put_call_ratio_is_null_without_call_volume():
    rows = option_rows(
        AFTERNOON, 100.0, [(NEAR, 100.0, "P", 0.2, 5.0), (NEAR, 100.0, "C", 0.2, 0.0)]
    )
    result = m.put_call_volume_ratio(m.latest_option_quotes(options_frame(rows)))
    assert result["put_call_volume_ratio"].to_list() == [None]


def test_iv_rank_over_the_window_and_the_realized_vol_fallback():
    dates = [DAY + timedelta(days=i) for i in range(9)]
    history = pl.DataFrame(
        {
            "symbol": ["SPY"] * 9,
            "date": dates,
            "atm_iv": [0.2, 0.3, 0.1, 0.25, 0.4, 0.35, None, None, None],
            "realized_vol_20d": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.2, 0.4, None],
        }
    )
    result = m.iv_rank(history, window=5, min_observations=3)
    ranks = result["iv_rank_252d"].to_list()
    assert ranks[:2] == [None, None]  # fewer than 3 observations of either
    assert ranks[2] == pytest.approx(0.0)  # 0.1 within [0.2, 0.3, 0.1]
    assert ranks[3] == pytest.approx(0.75)  # (0.25 - 0.1) / (0.3 - 0.1)
    assert ranks[4] == pytest.approx(1.0)
    assert ranks[5] == pytest.approx(0.25 / 0.3)  # window [0.3, 0.1, 0.25, 0.4, 0.35]
    # No atm_iv: realized vol's own rank; window of 5 RV observations [0.3..0.6, 0.2].
    assert ranks[6] == pytest.approx(0.0)
    assert ranks[7] == pytest.approx((0.4 - 0.2) / (0.6 - 0.2))  # window [0.4, 0.5, 0.6, 0.2, 0.4]
    assert ranks[8] is None
    assert result["iv_rank_source"].to_list() == [None, None] + ["atm_iv"] * 4 + [
        "realized_vol"
    ] * 2 + [None]


def test_flat_history_has_no_rank():
    history = pl.DataFrame(
        {
            "symbol": ["SPY"] * 3,
            "date": [DAY + timedelta(days=i) for i in range(3)],
            "atm_iv": [0.2] * 3,
        }
    ).with_columns(pl.lit(None, dtype=pl.Float64).alias("realized_vol_20d"))
    assert m.iv_rank(history, window=5, min_observations=3)["iv_rank_252d"].to_list() == [None] * 3
