"""The derived statistics, one pure polars function each (no I/O, no clock).

Conventions shared by every function:

- a *trading date* is the America/New_York calendar date of a UTC timestamp (a daily bar
  stamped exactly 00:00 UTC is taken to name its UTC date, as IB's daily bars do);
- inputs may hold several symbols; every output is keyed by (symbol, date);
- too little data gives null, never an exception.
"""

from __future__ import annotations

import math
from datetime import date

import polars as pl

TRADING_DAYS_PER_YEAR = 252
REALIZED_VOL_WINDOW = 20  # daily log returns per realized-vol estimate
ATR_PERIOD = 14
ATM_IV_TARGET_DTE = 30
IV_RANK_WINDOW = 252  # observations (trading days) of history an IV rank looks back over
# Fewer observations than this in the window and the rank means little: the fallback (or
# null) is used instead.
IV_RANK_MIN_OBSERVATIONS = 20
NEW_YORK = "America/New_York"

KEY = ("symbol", "date")


def trading_date(column: str) -> pl.Expr:
    """The New York date of a UTC timestamp column; exact UTC midnight keeps its UTC date."""
    stamp = pl.col(column).dt.convert_time_zone("UTC")
    at_midnight = (stamp.dt.hour() == 0) & (stamp.dt.minute() == 0) & (stamp.dt.second() == 0)
    return (
        pl.when(at_midnight)
        .then(stamp.dt.date())
        .otherwise(stamp.dt.convert_time_zone(NEW_YORK).dt.date())
        .alias("date")
    )


# ---------------------------------------------------------------------------- daily bars


def daily_bars_by_date(bars: pl.DataFrame) -> pl.DataFrame:
    """One row per (symbol, date) of daily bars (the latest-stamped bar wins), sorted."""
    return (
        bars.with_columns(trading_date("timestamp"))
        .sort("timestamp")
        .group_by(["symbol", "date"], maintain_order=True)
        .last()
        .select("symbol", "date", "open", "high", "low", "close")
        .sort("symbol", "date")
    )


def realized_vol(daily: pl.DataFrame, window: int = REALIZED_VOL_WINDOW) -> pl.DataFrame:
    """Annualized close-to-close realized volatility per (symbol, date).

    The sample standard deviation (ddof=1) of the last ``window`` daily log returns
    ln(close_t / close_t-1), times sqrt(252). Needs ``window + 1`` closes; null before.
    """
    log_return = (pl.col("close") / pl.col("close").shift(1)).log().over("symbol")
    return (
        daily.sort("symbol", "date")
        .with_columns(log_return.alias("_r"))
        .with_columns(
            (
                pl.col("_r").rolling_std(window_size=window, min_samples=window, ddof=1)
                * math.sqrt(TRADING_DAYS_PER_YEAR)
            )
            .over("symbol")
            .alias("realized_vol_20d")
        )
        .select("symbol", "date", "realized_vol_20d")
    )


def true_range(daily: pl.DataFrame) -> pl.DataFrame:
    """max(high - low, |high - previous close|, |low - previous close|) per (symbol, date).

    The first bar of a symbol has no previous close: its true range is high - low.
    """
    previous_close = pl.col("close").shift(1).over("symbol")
    return (
        daily.sort("symbol", "date")
        .with_columns(
            pl.max_horizontal(
                pl.col("high") - pl.col("low"),
                (pl.col("high") - previous_close).abs(),
                (pl.col("low") - previous_close).abs(),
            ).alias("true_range")
        )
        .select("symbol", "date", "true_range")
    )


def wilder_average(values: list[float | None], period: int) -> list[float | None]:
    """Wilder's smoothing: the first value is the simple mean of the first ``period`` inputs,
    then avg_t = (avg_t-1 * (period - 1) + x_t) / period. Null until ``period`` inputs."""
    out: list[float | None] = []
    average: float | None = None
    seen: list[float] = []
    for value in values:
        if value is None:
            out.append(average)
            continue
        if average is None:
            seen.append(value)
            if len(seen) == period:
                average = sum(seen) / period
        else:
            average = (average * (period - 1) + value) / period
        out.append(average)
    return out


def atr(daily: pl.DataFrame, period: int = ATR_PERIOD) -> pl.DataFrame:
    """Average true range with Wilder's smoothing (see ``wilder_average``) per (symbol, date).

    The first ATR is the simple mean of the first ``period`` true ranges (the very first
    of which is high - low); each later one is (ATR_prev * 13 + TR) / 14 for period 14.
    """
    ranges = true_range(daily)
    parts = []
    for frame in ranges.partition_by("symbol", maintain_order=True):
        smoothed = wilder_average(frame["true_range"].to_list(), period)
        parts.append(frame.with_columns(pl.Series("atr_14", smoothed, dtype=pl.Float64)))
    if not parts:
        return pl.DataFrame(schema={"symbol": pl.String, "date": pl.Date, "atr_14": pl.Float64})
    return pl.concat(parts).select("symbol", "date", "atr_14")


# ---------------------------------------------------------------------------- options


def latest_option_quotes(options: pl.DataFrame) -> pl.DataFrame:
    """Each contract's latest quote of each trading date: the day's freshest picture across
    every snapshot request (different requests may cover different expiries)."""
    return (
        options.with_columns(trading_date("snapshot_time"))
        .sort("snapshot_time")
        .group_by(["symbol", "date", "expiry", "strike", "right"], maintain_order=True)
        .last()
    )


def put_call_volume_ratio(quotes: pl.DataFrame) -> pl.DataFrame:
    """Total put volume / total call volume per (symbol, date) of ``latest_option_quotes``.

    Null when the day's call volume is zero or unknown.
    """
    right = pl.col("right").str.to_uppercase().str.slice(0, 1)
    volume = pl.col("volume").fill_null(0.0)
    return (
        quotes.group_by("symbol", "date")
        .agg(
            volume.filter(right == "P").sum().alias("_puts"),
            volume.filter(right == "C").sum().alias("_calls"),
        )
        .with_columns(
            pl.when(pl.col("_calls") > 0)
            .then(pl.col("_puts") / pl.col("_calls"))
            .otherwise(None)
            .alias("put_call_volume_ratio")
        )
        .select("symbol", "date", "put_call_volume_ratio")
        .sort("symbol", "date")
    )


def expiry_atm_iv(quotes: pl.DataFrame) -> pl.DataFrame:
    """ATM implied vol per (symbol, date, expiry) with its days to expiry ``dte``.

    The underlying price is the one of the day's latest snapshot; ATM is the strike
    nearest to it among strikes with an implied vol (ties: the lower strike); the expiry's
    ATM IV is the mean of the call's and the put's IV there (just one if one is missing).
    Expired contracts (dte <= 0) are left out.
    """
    priced = quotes.filter(pl.col("implied_vol").is_not_null() & (pl.col("implied_vol") > 0))
    spot = (
        quotes.filter(pl.col("underlying_price").is_not_null())
        .sort("snapshot_time")
        .group_by("symbol", "date")
        .agg(pl.col("underlying_price").last().alias("_spot"))
    )
    right = pl.col("right").str.to_uppercase().str.slice(0, 1)
    per_strike = (
        priced.join(spot, on=["symbol", "date"])
        .with_columns(((pl.col("expiry") - pl.col("date")).dt.total_days()).alias("dte"))
        .filter(pl.col("dte") > 0)
        .group_by("symbol", "date", "expiry", "dte", "strike")
        .agg(
            pl.col("implied_vol").filter(right == "C").mean().alias("_call"),
            pl.col("implied_vol").filter(right == "P").mean().alias("_put"),
            pl.col("_spot").first(),
        )
        .with_columns((pl.col("strike") - pl.col("_spot")).abs().alias("_distance"))
    )
    return (
        per_strike.sort("_distance", "strike")
        .group_by("symbol", "date", "expiry", "dte", maintain_order=True)
        .first()
        .with_columns(pl.mean_horizontal("_call", "_put").alias("atm_iv"))
        .select("symbol", "date", "expiry", "dte", "strike", "atm_iv")
        .sort("symbol", "date", "dte")
    )


def interpolate_to_dte(
    points: list[tuple[int, float]], target: int = ATM_IV_TARGET_DTE
) -> float | None:
    """IV at ``target`` days from (dte, iv) points: linear in dte between the nearest expiry
    at or below and the nearest at or above; flat beyond the nearest one when all lie on
    one side."""
    if not points:
        return None
    below = [p for p in points if p[0] <= target]
    above = [p for p in points if p[0] >= target]
    if below and above:
        (d0, v0), (d1, v1) = max(below), min(above)
        if d0 == d1:
            return v0
        return v0 + (v1 - v0) * (target - d0) / (d1 - d0)
    return min(points, key=lambda p: (abs(p[0] - target), p[0]))[1]


def atm_iv(quotes: pl.DataFrame, target_dte: int = ATM_IV_TARGET_DTE) -> pl.DataFrame:
    """About-``target_dte``-day ATM implied vol per (symbol, date) (see ``expiry_atm_iv`` and
    ``interpolate_to_dte``)."""
    expiries = expiry_atm_iv(quotes)
    rows: list[dict] = []
    for (symbol, day), frame in expiries.partition_by(
        "symbol", "date", as_dict=True, maintain_order=True
    ).items():
        points = list(zip(frame["dte"].to_list(), frame["atm_iv"].to_list(), strict=True))
        rows.append(
            {"symbol": symbol, "date": day, "atm_iv": interpolate_to_dte(points, target_dte)}
        )
    schema = {"symbol": pl.String, "date": pl.Date, "atm_iv": pl.Float64}
    return pl.DataFrame(rows, schema=schema).sort("symbol", "date")


# ---------------------------------------------------------------------------- IV rank


def _rank_within_window(
    values: pl.DataFrame, column: str, window: int, min_obs: int
) -> pl.DataFrame:
    """(value - min) / (max - min) over the last ``window`` non-null observations (today
    included) per symbol; null with fewer than ``min_obs`` of them or a flat window."""
    observed = values.filter(pl.col(column).is_not_null()).sort("symbol", "date")
    low = pl.col(column).rolling_min(window_size=window, min_samples=min_obs).over("symbol")
    high = pl.col(column).rolling_max(window_size=window, min_samples=min_obs).over("symbol")
    return observed.with_columns(
        pl.when(high > low)
        .then((pl.col(column) - low) / (high - low))
        .otherwise(None)
        .alias("_rank")
    ).select("symbol", "date", "_rank")


def iv_rank(
    history: pl.DataFrame,
    *,
    window: int = IV_RANK_WINDOW,
    min_observations: int = IV_RANK_MIN_OBSERVATIONS,
) -> pl.DataFrame:
    """``iv_rank_252d`` per (symbol, date) of ``history`` (columns symbol, date, atm_iv,
    realized_vol_20d), plus ``iv_rank_source`` ("atm_iv", "realized_vol" or null).

    IV rank = (atm_iv today - min) / (max - min) over the last 252 atm_iv observations, today
    included. Fallback while fewer than 20 atm_iv observations exist (a new install has no IV
    history): the same rank of today's realized_vol_20d within its own last 252 observations,
    a volatility-regime proxy. Null when neither has enough history or the window is flat.
    """
    base = history.select("symbol", "date").unique().sort("symbol", "date")
    from_iv = _rank_within_window(history, "atm_iv", window, min_observations)
    from_rv = _rank_within_window(history, "realized_vol_20d", window, min_observations)
    joined = base.join(from_iv, on=["symbol", "date"], how="left").join(
        from_rv.rename({"_rank": "_rv_rank"}), on=["symbol", "date"], how="left"
    )
    return joined.select(
        "symbol",
        "date",
        pl.coalesce("_rank", "_rv_rank").alias("iv_rank_252d"),
        pl.when(pl.col("_rank").is_not_null())
        .then(pl.lit("atm_iv"))
        .when(pl.col("_rv_rank").is_not_null())
        .then(pl.lit("realized_vol"))
        .otherwise(None)
        .alias("iv_rank_source"),
    )


def empty_key_frame() -> pl.DataFrame:
    return pl.DataFrame(schema={"symbol": pl.String, "date": pl.Date})


def as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)
