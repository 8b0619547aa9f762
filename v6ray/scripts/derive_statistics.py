"""Compute ``derived_statistics``: ``v6ray derive-stats`` and
``python -m v6ray.scripts.derive_statistics``.

First the daily bars each symbol lacks are enqueued (at least 300 trading days, so the
20-day realized vol has a 252-day history for the IV-rank fallback) and awaited; then the
statistics are computed with polars, one Ray task per symbol spread over the cluster's
nodes, and merged by (symbol, date). See ``v6ray.stats.derive`` for what each column means.

Bars come from one series per symbol (``v6ray.stats.derive.daily_series``): daily TRADES
bars of regular trading hours (use_rth) of the symbol's default instrument, the series
fetched here when history is missing. Extended-hours loads (``load-futures`` fetches
use_rth=false daily bars), dated futures months and other exchanges are not read.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from v6ray import constants
from v6ray.errors import InvalidRequest
from v6ray.requests.model import Priority
from v6ray.scripts.progress import DEFAULT_TIMEOUT, Summary, run_main, submit_and_wait
from v6ray.stats.derive import (
    MIN_HISTORY_TRADING_DAYS,
    combine_derive_results,
    last_completed_session,
    missing_daily_bars,
    submit_derive_tasks,
)
from v6ray.storage import location

DEFAULT_SYMBOLS = ("SPY", "QQQ", "IWM")


def derive_statistics(
    client: Any,
    data_dir: str | os.PathLike[str],
    symbols: Sequence[str] | None = None,
    *,
    progress: bool | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    priority: int = Priority.NORMAL,
    min_trading_days: int = MIN_HISTORY_TRADING_DAYS,
    simulate: bool = False,
    now: datetime | None = None,
) -> Summary:
    """Fetch missing daily history, then compute and write the statistics.

    ``data_dir`` is the service's data dir (the Ray task reads and writes there).
    ``simulate`` counts every day as a trading day when judging whether bars are current.
    ``summary.rows`` is the number of derived_statistics rows written.
    """
    from v6ray.storage.reader import read_table

    wanted = list(dict.fromkeys(s.strip().upper() for s in (symbols or DEFAULT_SYMBOLS)))
    if not all(wanted):
        raise InvalidRequest("symbols", "symbols must be non-empty text")
    started = time.monotonic()
    data_dir = location.normalize(data_dir)
    summary = Summary("derive-stats")
    bars = read_table(constants.MARKET_BARS_TABLE, data_dir=data_dir)
    stamp = now or datetime.now(UTC)
    items = missing_daily_bars(
        bars,
        wanted,
        last_session=last_completed_session(stamp, simulate=simulate),
        min_trading_days=min_trading_days,
        priority=priority,
    )
    if items:
        summary.requests = len(items)
        submit_and_wait(
            client,
            items,
            summary,
            label="derive-stats: daily bars",
            timeout=timeout,
            progress=progress,
        )
        bar_rows, summary.rows = summary.rows, 0
        summary.notes.append(f"fetched {bar_rows:,} daily bars for {len(items)} symbol(s)")
    result = _run_derive_task(data_dir, wanted, timeout=max(timeout, 60.0))
    summary.rows = int(result.get("rows", 0))
    missing = sorted(set(wanted) - set(result.get("symbols", [])))
    if missing:
        summary.notes.append(
            f"no data to derive from for {', '.join(missing)} (daily regular-hours TRADES "
            "bars of the default instrument)"
        )
    summary.elapsed = time.monotonic() - started
    return summary


def _run_derive_task(data_dir: str, symbols: list[str], *, timeout: float) -> dict[str, Any]:
    import ray
    from ray.exceptions import RayTaskError

    from v6ray.client.api import original_error

    try:
        # One task per symbol, spread over the cluster's nodes.
        return combine_derive_results(
            ray.get(submit_derive_tasks(data_dir, symbols), timeout=timeout)
        )
    except RayTaskError as exc:  # hand the original error (e.g. StorageError) to the caller
        raise original_error(exc) from None


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m v6ray.scripts.derive_statistics",
        description="Fetch missing daily bars and compute derived_statistics.",
    )
    parser.add_argument("symbols", nargs="*", default=list(DEFAULT_SYMBOLS))
    parser.add_argument("--data-dir", default=None, help="default: V6RAY_DATA_DIR or ./v6ray-data")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--simulate", action="store_true", help="the service runs simulated")
    parser.add_argument("--address", default="auto", help="Ray address of the v6ray service")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)

    def action() -> Summary:
        from v6ray.client.api import connect
        from v6ray.service.settings import Settings

        settings = Settings.from_env(data_dir=args.data_dir)
        return derive_statistics(
            connect(args.address),
            settings.data_path,
            args.symbols,
            progress=args.progress,
            timeout=args.timeout,
            simulate=args.simulate,
        )

    return run_main(action)


if __name__ == "__main__":
    raise SystemExit(main())
