"""Backfill historical bars: ``v6ray load-history`` and
``python -m v6ray.scripts.load_historical_data``.

A long range is split into the largest requests IB serves reliably, over trading sessions
only (``v6ray.requests.durations.backfill_chunks``), each one ``market_bars`` request with an
explicit ``end`` at BACKGROUND priority, so scheduled collection keeps going while the
backfill trickles through IB's pacing. Bars merge by
(symbol, bar_size, what_to_show, timestamp): rerunning a load, or overlapping two, never
duplicates a bar.

Both commands take the same flags (``add_arguments``) and run the same load
(``load_from_args``); each adds only how it finds the service.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from v6ray.cli.arguments import positive_float
from v6ray.errors import InvalidRequest
from v6ray.requests import durations, instruments
from v6ray.requests.model import Priority
from v6ray.scripts.progress import DEFAULT_TIMEOUT, Summary, run_main, submit_and_wait

DEFAULT_DURATION = "1 Y"
DEFAULT_BAR_SIZE = "1 day"
DEFAULT_WHAT_TO_SHOW = "TRADES"
DESCRIPTION = (
    "Backfill historical bars into market_bars through the v6ray queue, at BACKGROUND "
    "priority: each symbol's range in the largest requests IB serves reliably (~2000 bars), "
    "trading sessions only (its exchange's calendar)."
)


def history_requests(
    symbols: Sequence[str],
    *,
    duration: str,
    bar_size: str,
    what_to_show: str = "TRADES",
    use_rth: bool = True,
    end: datetime | None = None,
    priority: int = Priority.BACKGROUND,
) -> list[dict[str, Any]]:
    """The ``submit_many`` items of a load: one per symbol and chunk (pure but for ``end``).

    Each symbol is chunked on its own exchange's calendar (a future on CME's), so a window
    without trading (a weekend, a holiday, the night with ``use_rth``) is never asked for.
    """
    end = end or datetime.now(UTC)
    try:
        durations.bar_seconds(bar_size)
    except ValueError as exc:
        raise InvalidRequest("bar_size", str(exc)) from None
    plans: dict[str, list[durations.Chunk]] = {}
    items = []
    for symbol in dict.fromkeys(s.strip().upper() for s in symbols):
        sec_type = instruments.default_sec_type(symbol)
        if sec_type not in plans:
            try:
                plans[sec_type] = durations.backfill_chunks(end, duration, bar_size,
                                                            use_rth=use_rth, sec_type=sec_type)
            except ValueError as exc:
                raise InvalidRequest("duration", str(exc)) from None
        items.extend(
            {
                "request_type": "market_bars",
                "symbol": symbol,
                "priority": int(priority),
                "parameters": {
                    "duration": chunk.duration,
                    "bar_size": bar_size,
                    "what_to_show": what_to_show,
                    "use_rth": use_rth,
                    # UTC, whole seconds: the form parameters normalize an end to
                    "end": chunk.end.isoformat(),
                },
            }
            for chunk in plans[sec_type]
        )
    return items


def load_history(
    client: Any,
    symbols: Sequence[str],
    *,
    duration: str = DEFAULT_DURATION,
    bar_size: str = DEFAULT_BAR_SIZE,
    what_to_show: str = DEFAULT_WHAT_TO_SHOW,
    use_rth: bool = True,
    end: datetime | None = None,
    progress: bool | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    priority: int = Priority.BACKGROUND,
) -> Summary:
    """Enqueue the chunks of ``duration`` of ``bar_size`` bars ending at ``end`` (default
    now) for every symbol, wait until they are done (``timeout`` seconds at most) and
    return the summary. ``progress``: True/False, or None for "on a terminal only"."""
    if not symbols:
        raise InvalidRequest("symbols", "give at least one symbol")
    started = time.monotonic()
    items = history_requests(
        symbols,
        duration=duration,
        bar_size=bar_size,
        what_to_show=what_to_show,
        use_rth=use_rth,
        end=end,
        priority=priority,
    )
    summary = Summary("load-history", requests=len(items))
    if items:
        label = f"load-history {bar_size}"
        submit_and_wait(client, items, summary, label=label, timeout=timeout, progress=progress)
        per_symbol = Counter(item["symbol"] for item in items)
        counts = "/".join(str(n) for n in sorted(set(per_symbol.values())))
        summary.notes.append(f"{duration} of {bar_size} bars in {counts} chunk(s) per symbol")
    else:
        summary.notes.append(f"no trading in {duration} before the end: nothing to load")
    summary.elapsed = time.monotonic() - started
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of a load, one set for ``v6ray load-history`` and for ``python -m
    v6ray.scripts.load_historical_data``: SYMBOL..., --duration, --bar-size, --what-to-show,
    --all-hours, --end, --timeout, --[no-]progress. How to reach the service (--address,
    --data-dir) each command adds itself."""
    parser.add_argument("symbols", nargs="+", metavar="SYMBOL", help="e.g. SPY QQQ IWM ES")
    parser.add_argument(
        "--duration",
        default=DEFAULT_DURATION,
        help=f'IB duration per symbol, e.g. "1 Y", "3 D" (default "{DEFAULT_DURATION}")',
    )
    parser.add_argument(
        "--bar-size",
        default=DEFAULT_BAR_SIZE,
        help=f'IB bar size, e.g. "1 day", "1 min" (default "{DEFAULT_BAR_SIZE}")',
    )
    parser.add_argument(
        "--what-to-show",
        default=DEFAULT_WHAT_TO_SHOW,
        help=f"TRADES, MIDPOINT, BID, ASK, BID_ASK, ... (default {DEFAULT_WHAT_TO_SHOW})",
    )
    parser.add_argument(
        "--all-hours",
        action="store_true",
        help="include bars outside regular trading hours (use_rth false)",
    )
    parser.add_argument("--end", help="ISO end time (UTC if no zone); default now")
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds to wait for the load (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw a progress bar on stderr (default: when stderr is a terminal)",
    )


def load_from_args(connect: Callable[[], Any], args: argparse.Namespace) -> Summary:
    """The load ``add_arguments``' flags describe, on the client ``connect()`` returns; a bad
    ``--end`` is reported before connecting."""
    try:
        end = durations.normalize_end(args.end) if args.end else None
    except ValueError as exc:
        raise InvalidRequest("end", str(exc)) from None
    return load_history(
        connect(),
        args.symbols,
        duration=args.duration,
        bar_size=args.bar_size,
        what_to_show=args.what_to_show,
        use_rth=not args.all_hours,
        end=end,
        progress=args.progress,
        timeout=args.timeout,
    )


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m v6ray.scripts.load_historical_data", description=DESCRIPTION
    )
    add_arguments(parser)
    parser.add_argument(
        "--address",
        default="auto",
        help="Ray address of the v6ray service (default: the cluster `v6ray up` recorded in "
        "the data dir)",
    )
    parser.add_argument(
        "--data-dir", help="the service's data dir (env V6RAY_DATA_DIR, default ./v6ray-data)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)

    def connect_service() -> Any:
        from v6ray.client.api import connect

        return connect(args.address, data_dir=args.data_dir)

    return run_main(lambda: load_from_args(connect_service, args))


if __name__ == "__main__":
    raise SystemExit(main())
