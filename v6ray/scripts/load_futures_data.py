"""Futures quotes and daily history: ``v6ray load-futures`` and
``python -m v6ray.scripts.load_futures_data``.

For each root (ES, NQ, RTY by default): a ``futures_snapshot`` of the front quarterly month
and of the next one, plus daily bars of the continuous contract (``market_bars`` on a future
root means IB's CONTFUT).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from v6ray.errors import InvalidRequest
from v6ray.requests.model import Priority
from v6ray.scripts.progress import DEFAULT_TIMEOUT, Summary, run_main, submit_and_wait

DEFAULT_ROOTS = ("ES", "NQ", "RTY")
DEFAULT_BAR_DURATION = "1 Y"
QUARTERLY_MONTHS = (3, 6, 9, 12)  # equity-index futures list H, M, U, Z


def third_friday(year: int, month: int) -> date:
    """Equity-index futures expire on the third Friday of the contract month."""
    first = date(year, month, 1)
    first_friday = first + timedelta(days=(4 - first.weekday()) % 7)
    return first_friday + timedelta(days=14)


def quarterly_months(today: date, count: int = 2) -> list[str]:
    """The next ``count`` quarterly contract months (YYYYMM) not yet expired on ``today``:
    the front month first (it stays front through its expiry day)."""
    out: list[str] = []
    year, month = today.year, today.month
    while len(out) < count:
        if month in QUARTERLY_MONTHS and third_friday(year, month) >= today:
            out.append(f"{year}{month:02d}")
        month += 1
        if month > 12:
            year, month = year + 1, 1
    return out


def futures_requests(
    roots: Sequence[str],
    *,
    today: date,
    bar_duration: str = DEFAULT_BAR_DURATION,
    priority: int = Priority.NORMAL,
) -> list[dict[str, Any]]:
    """The ``submit_many`` items: two snapshots and one daily-bar history per root (pure)."""
    items: list[dict[str, Any]] = []
    months = quarterly_months(today)
    for root in dict.fromkeys(r.strip().upper() for r in roots):
        for month in months:
            items.append(
                {
                    "request_type": "futures_snapshot",
                    "symbol": root,
                    "priority": int(priority),
                    "parameters": {"contract_month": month},
                }
            )
        items.append(
            {
                "request_type": "market_bars",
                "symbol": root,
                "priority": int(priority),
                "parameters": {"duration": bar_duration, "bar_size": "1 day", "use_rth": False},
            }
        )
    return items


def load_futures(
    client: Any,
    roots: Sequence[str] | None = None,
    *,
    bar_duration: str = DEFAULT_BAR_DURATION,
    progress: bool | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    priority: int = Priority.NORMAL,
    today: date | None = None,
) -> Summary:
    """Enqueue, wait (``timeout`` s at most) and summarize; see the module docstring."""
    roots = list(roots) if roots else list(DEFAULT_ROOTS)
    if not all(isinstance(r, str) and r.strip() for r in roots):
        raise InvalidRequest("roots", "future roots must be non-empty text such as ES")
    started = time.monotonic()
    items = futures_requests(
        roots,
        today=today or datetime.now(UTC).date(),
        bar_duration=bar_duration,
        priority=priority,
    )
    summary = Summary("load-futures", requests=len(items))
    submit_and_wait(
        client, items, summary, label="load-futures", timeout=timeout, progress=progress
    )
    summary.elapsed = time.monotonic() - started
    months = ", ".join(quarterly_months(today or datetime.now(UTC).date()))
    summary.notes.append(f"contract months {months}; daily bars {bar_duration}")
    return summary


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m v6ray.scripts.load_futures_data",
        description="Snapshot front and next quarterly futures and load their daily bars.",
    )
    parser.add_argument("roots", nargs="*", default=list(DEFAULT_ROOTS))
    parser.add_argument("--bar-duration", default=DEFAULT_BAR_DURATION)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--address", default="auto", help="Ray address of the v6ray service")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)

    def action() -> Summary:
        from v6ray.client.api import connect

        return load_futures(
            connect(args.address),
            args.roots,
            bar_duration=args.bar_duration,
            progress=args.progress,
            timeout=args.timeout,
        )

    return run_main(action)


if __name__ == "__main__":
    raise SystemExit(main())
