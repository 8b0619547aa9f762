"""market_bars: historical OHLCV bars → ``market_bars`` (one row per series and bar start;
a long duration is split into the IB requests IB serves reliably, run under one lease)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from v6ray import constants
from v6ray.errors import InvalidRequest
from v6ray.pacing import ib_limits
from v6ray.pacing.costs import MAX_CHARGED_CHUNKS, Cost
from v6ray.requests import durations, rules
from v6ray.requests.rules import Rule
from v6ray.requests.spec import RequestSpec
from v6ray.storage.layout import PartitionColumn, bar_partition_day
from v6ray.storage.table_spec import UTC_TIMESTAMP, TableSpec, schema_of

# A bar belongs to its series (symbol, instrument, bar size, data type, regular hours or
# not) and its start; whichever load fetched it last wrote it.
KEY = (
    "symbol", "sec_type", "exchange", "contract_month", "bar_size", "what_to_show", "use_rth",
    "timestamp",
)

PARTITION = PartitionColumn(
    "partition_day",
    pa.date32(),
    bar_partition_day,
    "UTC day of an intraday bar; first day of its year for bars of a day or longer",
)

TABLE = TableSpec(
    constants.MARKET_BARS_TABLE,
    schema_of(
        ("request_id", pa.string()),
        ("symbol", pa.string()),
        ("bar_size", pa.string()),
        ("what_to_show", pa.string()),
        ("timestamp", UTC_TIMESTAMP),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("volume", pa.float64()),
        ("wap", pa.float64()),
        ("bar_count", pa.int64()),
        # Series identity (``v6ray.requests.instruments.bar_series``): regular hours only or
        # not, and which instrument; never null (they are merge keys). A use_rth=false load
        # and the regular-hours bars, or ES 202512 and continuous ES, are different rows.
        ("use_rth", pa.bool_()),
        ("sec_type", pa.string()),
        ("exchange", pa.string()),
        ("contract_month", pa.string()),
        # The contract IB resolved the request to, when it was qualified (not for stocks on
        # SMART); for a continuous future that is the front month at fetch time, so it
        # describes the row but is not part of its identity.
        ("con_id", pa.int64()),
        ("local_symbol", pa.string()),
    ),
    KEY,
    "historical OHLCV bars, one row per series (symbol, instrument, bar size, data "
    "type, regular hours or not) and bar start",
    partitions=(PARTITION,),
)


def check(out: dict[str, Any], given: Mapping[str, Any], now: datetime) -> None:
    """``end`` in IB's range, a future's month, and a duration of at least one bar and at
    most ``MAX_BAR_CHUNKS`` IB requests."""
    if "end" in out:
        _check_end(out, now)
    if out.get("sec_type") == "FUT" and "contract_month" not in out:
        raise InvalidRequest(
            "parameters.contract_month",
            "is required with sec_type FUT (which contract?); CONTFUT is the continuous series",
        )
    total = ib_limits.parse_duration(out["duration"]).seconds
    per_bar = ib_limits.bar_seconds(out["bar_size"])
    if total < per_bar:
        raise InvalidRequest(
            "parameters.duration", f"{out['duration']} is shorter than one {out['bar_size']} bar"
        )
    # For the request's own hours, as the pacer counts it (``durations.chunk_count``).
    chunks = durations.chunk_count(out["duration"], out["bar_size"], out["use_rth"])
    if chunks > rules.MAX_BAR_CHUNKS:
        raise InvalidRequest(
            "parameters.duration",
            f"{out['duration']} of {out['bar_size']} bars needs {chunks} IB requests "
            f"(limit {rules.MAX_BAR_CHUNKS}); use a larger bar size or v6ray load-history",
        )


def _check_end(out: dict[str, Any], now: datetime) -> None:
    end = durations.normalize_end(out["end"])
    if out["what_to_show"] == "ADJUSTED_LAST":
        # IB serves dividend-adjusted bars only up to now: it refuses an end date with
        # error 321 "End date not supported with adjusted last" (TWS API, Historical Bar
        # Data: https://interactivebrokers.github.io/tws-api/historical_bars.html).
        raise InvalidRequest(
            "parameters.end", "must be left out with what_to_show ADJUSTED_LAST (IB serves "
            "adjusted bars only up to now)"
        )
    if end.year < rules.EARLIEST_YEAR:
        raise InvalidRequest(
            "parameters.end",
            f"{out['end']} is before {rules.EARLIEST_YEAR}: IB has no bars that old",
        )
    latest = now.astimezone(UTC) + rules.MAX_END_AHEAD
    if end > latest:
        raise InvalidRequest(
            "parameters.end",
            f"{out['end']} is more than a day in the future (latest {latest.isoformat()})",
        )


def cost(params: Mapping[str, Any]) -> Cost:
    """One open historical request, and a slot of the small- or large-bar window per
    chunk (BID_ASK counts twice), charged for a few chunks at most (``MAX_CHARGED_CHUNKS``)."""
    bar_size = params.get("bar_size", "1 hour")
    count = durations.chunk_count(
        params.get("duration", "5 D"), bar_size, params.get("use_rth", True)
    )
    chunks = min(count, MAX_CHARGED_CHUNKS)
    slots = chunks * ib_limits.historical_weight(params.get("what_to_show", "TRADES"))
    if ib_limits.is_small_bar(bar_size):
        return Cost(small_bar=slots, historical=1)
    return Cost(large_bar=slots, historical=1)


SPEC = RequestSpec(
    name="market_bars",
    summary="historical OHLCV bars",
    table=TABLE,
    rules={
        "duration": Rule(rules.duration, default="5 D"),
        "bar_size": Rule(rules.bar_size, default="1 hour"),
        "what_to_show": Rule(rules.what_to_show, default="TRADES"),
        "use_rth": Rule(rules.boolean, default=True),
        "end": Rule(rules.instant),
        "sec_type": Rule(rules.sec_type),
        "exchange": Rule(rules.exchange),
        "contract_month": Rule(rules.contract_month),
    },
    cost=cost,
    cross_check=check,
    default_jobs=(
        {
            # The day's daily bar is final once the market has closed.
            "name": "daily_bars",
            "type": "market_bars",
            "symbols": ["SPY", "QQQ", "IWM"],
            "parameters": {"duration": "5 D", "bar_size": "1 day"},
            "after_close_minutes": 10,
            "market": "XNYS",
        },
    ),
)
