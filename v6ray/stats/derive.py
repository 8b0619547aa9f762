"""Assemble ``derived_statistics`` from the tables, and the Ray task that writes it.

``compute_derived_statistics`` is pure (frames in, frame out); ``derive_and_write`` reads
the tables, calls it and merges the result by (symbol, date), so reruns are idempotent;
``derive_task`` is that function as a Ray task. ``missing_daily_bars`` says which daily bar
requests would give every symbol enough history.

Bars: one series per symbol (``daily_series``): daily TRADES bars of regular trading hours
(use_rth) of the symbol's default instrument; other series in ``market_bars`` (extended
hours, a dated future month, another exchange) are ignored.

Columns (one row per symbol and trading date that has a daily bar or option snapshots):

- ``realized_vol_20d``: annualized close-to-close vol of the last 20 daily log returns up to
  that date (``metrics.realized_vol``); on a date without a bar, the latest earlier value.
- ``atr_14``: Wilder's 14-day average true range, same as-of rule (``metrics.atr``).
- ``atm_iv``: ~30-day ATM implied vol from that date's latest option quotes
  (``metrics.atm_iv``); kept from an earlier run when today's tables no longer have them.
- ``iv_rank_252d``: rank of atm_iv within its last 252 observations; until 20 atm_iv
  observations exist, the rank of realized_vol_20d within its own history stands in for it
  (a volatility-regime proxy); null when neither has 20 observations (``metrics.iv_rank``).
- ``put_call_volume_ratio``: put volume / call volume of that date's latest option quotes.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pyarrow as pa

from v6ray import constants
from v6ray.requests.instruments import bar_series
from v6ray.requests.model import Priority
from v6ray.stats import metrics
from v6ray.storage.schemas import DERIVED_STATISTICS_SCHEMA

DAILY_BAR_SIZE = "1 day"
DAILY_WHAT_TO_SHOW = "TRADES"
DAILY_PARAMETERS = {"bar_size": DAILY_BAR_SIZE, "what_to_show": DAILY_WHAT_TO_SHOW,
                    "use_rth": True}
_SERIES_SCHEMA = {"symbol": pl.String, "bar_size": pl.String, "what_to_show": pl.String,
                  "use_rth": pl.Boolean, "sec_type": pl.String, "exchange": pl.String,
                  "contract_month": pl.String}
# 252 days of realized vol (for the rank fallback) need 252 + 20 closes; 300 leaves margin.
MIN_HISTORY_TRADING_DAYS = 300
# One request fetches it all: IB serves up to 20 Y of daily bars per request.
HISTORY_DURATION = "2 Y"
STAT_COLUMNS = (
    "realized_vol_20d",
    "atr_14",
    "atm_iv",
    "iv_rank_252d",
    "put_call_volume_ratio",
)
_CARRIED_OVER = ("atm_iv", "put_call_volume_ratio")  # option-based: not recomputable later


def daily_series(symbol: str) -> dict[str, Any]:
    """The one ``market_bars`` series a symbol's statistics come from (and that
    ``missing_daily_bars`` fetches): daily TRADES bars of regular trading hours of the
    symbol's default instrument (SPY on SMART, SPX the index, ES the continuous future).
    A use_rth=false load, a dated future month or another exchange never feeds them."""
    return {
        "symbol": symbol,
        "bar_size": DAILY_BAR_SIZE,
        "what_to_show": DAILY_WHAT_TO_SHOW,
        **bar_series(symbol, DAILY_PARAMETERS),
    }


def _daily_bars(bars: pl.DataFrame, symbols: set[str] | None) -> pl.DataFrame:
    selected = bars.filter(
        (pl.col("bar_size") == DAILY_BAR_SIZE) & (pl.col("what_to_show") == DAILY_WHAT_TO_SHOW)
    )
    if symbols is not None:
        selected = selected.filter(pl.col("symbol").is_in(sorted(symbols)))
    wanted = [daily_series(s) for s in sorted(set(selected["symbol"].to_list()))]
    series = pl.DataFrame(wanted, schema=_SERIES_SCHEMA).drop("bar_size", "what_to_show")
    selected = selected.join(series, on=series.columns, how="semi")
    return metrics.daily_bars_by_date(selected)


def compute_derived_statistics(
    bars: pl.DataFrame,
    options: pl.DataFrame,
    existing: pl.DataFrame | None = None,
    *,
    symbols: Iterable[str] | None = None,
    computed_at: datetime | None = None,
) -> pl.DataFrame:
    """The ``derived_statistics`` rows for ``symbols`` (all symbols seen when None).

    ``bars``/``options`` are the market_bars and option_snapshots tables; ``existing`` the
    current derived_statistics (its atm_iv history feeds the IV rank and fills dates whose
    snapshots are gone).
    """
    wanted = {s.upper() for s in symbols} if symbols is not None else None
    existing = existing if existing is not None else _empty_statistics()
    if wanted is not None:
        options = options.filter(pl.col("symbol").is_in(sorted(wanted)))
        existing = existing.filter(pl.col("symbol").is_in(sorted(wanted)))

    daily = _daily_bars(bars, wanted)
    bar_stats = metrics.realized_vol(daily).join(
        metrics.atr(daily), on=["symbol", "date"], how="left"
    )
    quotes = metrics.latest_option_quotes(options)
    option_stats = metrics.atm_iv(quotes).join(
        metrics.put_call_volume_ratio(quotes), on=["symbol", "date"], how="full", coalesce=True
    )

    keys = (
        pl.concat([bar_stats.select(metrics.KEY), option_stats.select(metrics.KEY)])
        .unique()
        .sort("symbol", "date")
    )
    # As of each date: the latest bar statistics at or before it (a weekend snapshot day
    # carries Friday's realized vol and ATR).
    frame = keys.join_asof(
        bar_stats.sort("symbol", "date"), on="date", by="symbol", strategy="backward"
    ).join(option_stats, on=["symbol", "date"], how="left")
    frame = _carry_over(frame, existing)
    frame = frame.join(_ranks(frame, existing), on=["symbol", "date"], how="left")
    stamp = computed_at or datetime.now(UTC)
    return frame.select(
        "symbol",
        "date",
        *STAT_COLUMNS,
        pl.lit(stamp).cast(pl.Datetime("us", "UTC")).alias("computed_at"),
    ).sort("symbol", "date")


def _carry_over(frame: pl.DataFrame, existing: pl.DataFrame) -> pl.DataFrame:
    """Option-based values of earlier runs survive when today's tables lack them."""
    previous = existing.select(
        "symbol", "date", *(pl.col(c).alias(f"_old_{c}") for c in _CARRIED_OVER)
    )
    joined = frame.join(previous, on=["symbol", "date"], how="left")
    return joined.with_columns(pl.coalesce(c, f"_old_{c}").alias(c) for c in _CARRIED_OVER).drop(
        *(f"_old_{c}" for c in _CARRIED_OVER)
    )


def _ranks(frame: pl.DataFrame, existing: pl.DataFrame) -> pl.DataFrame:
    """IV ranks over this run's rows plus earlier rows it does not recompute."""
    older = existing.join(frame.select(metrics.KEY), on=["symbol", "date"], how="anti").select(
        "symbol", "date", "atm_iv", "realized_vol_20d"
    )
    history = pl.concat(
        [frame.select("symbol", "date", "atm_iv", "realized_vol_20d"), older],
        how="vertical_relaxed",
    )
    return metrics.iv_rank(history).select("symbol", "date", "iv_rank_252d")


def _empty_statistics() -> pl.DataFrame:
    return pl.from_arrow(DERIVED_STATISTICS_SCHEMA.empty_table())


def to_arrow(frame: pl.DataFrame) -> pa.Table:
    """The frame in the table's exact Arrow schema."""
    return frame.to_arrow().select(DERIVED_STATISTICS_SCHEMA.names).cast(DERIVED_STATISTICS_SCHEMA)


# ---------------------------------------------------------------------------- history


def missing_daily_bars(
    bars: pl.DataFrame,
    symbols: Sequence[str],
    *,
    last_session: date,
    min_trading_days: int = MIN_HISTORY_TRADING_DAYS,
    priority: int = Priority.NORMAL,
) -> list[dict[str, Any]]:
    """``submit_many`` items fetching the daily bars ``symbols`` lack.

    A symbol with fewer than ``min_trading_days`` daily bars gets the whole history
    (``HISTORY_DURATION``); one with enough but not up to ``last_session`` (the latest
    completed trading day) gets just the gap; an up-to-date symbol gets nothing.
    """
    daily = _daily_bars(bars, {s.upper() for s in symbols})
    summary = {
        row["symbol"]: (row["bars"], row["latest"])
        for row in daily.group_by("symbol")
        .agg(pl.len().alias("bars"), pl.col("date").max().alias("latest"))
        .to_dicts()
    }
    items = []
    for symbol in dict.fromkeys(s.upper() for s in symbols):
        count, latest = summary.get(symbol, (0, None))
        if count < min_trading_days or latest is None:
            duration = HISTORY_DURATION
        elif latest < last_session:
            # Calendar days since the latest bar, plus a few so the edge overlaps (merge).
            duration = f"{(last_session - latest).days + 3} D"
        else:
            continue
        items.append(
            {
                "request_type": "market_bars",
                "symbol": symbol,
                "priority": int(priority),
                "parameters": {"duration": duration, **DAILY_PARAMETERS},
            }
        )
    return items


def last_completed_session(now: datetime, *, simulate: bool = False) -> date:
    """The latest NYSE trading day whose close is at or before ``now``."""
    from v6ray.scheduler.calendar import market_clock

    session = market_clock("XNYS", simulate=simulate).last_close(now)
    return session.trade_date if session else (now - timedelta(days=1)).date()


# ---------------------------------------------------------------------------- I/O


def derive_and_write(
    data_dir: str | os.PathLike[str],
    symbols: Sequence[str] | None = None,
    *,
    computed_at: datetime | None = None,
) -> dict[str, Any]:
    """Read the tables, compute, merge into ``derived_statistics``; returns the writer's
    summary plus ``symbols`` (those that got rows)."""
    from v6ray.storage.reader import read_table
    from v6ray.storage.writer import merge_rows

    data_dir = os.fspath(data_dir)
    frame = compute_derived_statistics(
        read_table(constants.MARKET_BARS_TABLE, data_dir=data_dir),
        read_table(constants.OPTION_SNAPSHOTS_TABLE, data_dir=data_dir),
        read_table(constants.DERIVED_STATISTICS_TABLE, data_dir=data_dir),
        symbols=symbols,
        computed_at=computed_at,
    )
    result = merge_rows(data_dir, constants.DERIVED_STATISTICS_TABLE, to_arrow(frame))
    return {**result, "symbols": sorted(set(frame["symbol"].to_list()))}


@functools.cache
def derive_task():
    """``derive_and_write`` as a Ray task (created lazily: importing this module needs no Ray).

    CPU + I/O on the shared data root; SPREAD over the nodes like the writer tasks; retried
    on a system failure (a lost node) only: the merge is idempotent.
    """
    import ray

    return ray.remote(num_cpus=0.5, max_retries=2, scheduling_strategy="SPREAD")(
        derive_and_write
    )


def submit_derive_tasks(
    data_dir: str, symbols: Sequence[str], *, computed_at: datetime | None = None
) -> list[Any]:
    """One derive task per symbol, spread over the cluster; returns their ObjectRefs.

    A symbol's statistics read only that symbol's bars, quotes and earlier rows, so the
    tasks are independent and their union equals one task over every symbol. They share
    one ``computed_at`` so the rows match that single run exactly. Their commits to
    ``derived_statistics`` may conflict; ``merge_rows`` retries those.
    """
    stamp = computed_at or datetime.now(UTC)
    task = derive_task()
    wanted = dict.fromkeys(s.upper() for s in symbols)
    return [task.remote(data_dir, [symbol], computed_at=stamp) for symbol in wanted]


def combine_derive_results(results: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The per-symbol tasks' summaries as one: rows and conflicts summed, symbols joined."""
    results = list(results)
    return {
        "table": constants.DERIVED_STATISTICS_TABLE,
        "rows": sum(int(r.get("rows") or 0) for r in results),
        "conflicts": sum(int(r.get("conflicts") or 0) for r in results),
        "symbols": sorted({s for r in results for s in r.get("symbols", [])}),
        "tasks": len(results),
    }
