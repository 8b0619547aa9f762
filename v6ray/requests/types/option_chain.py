"""option_chain: snapshots of an underlying's options near a target DTE → ``option_snapshots``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pyarrow as pa

from v6ray import constants
from v6ray.errors import InvalidRequest
from v6ray.pacing.costs import MAX_CHARGED_LINES, Cost
from v6ray.requests import rules
from v6ray.requests.rules import Rule
from v6ray.requests.spec import RequestSpec
from v6ray.storage.table_spec import UTC_TIMESTAMP, TableSpec, schema_of

DEFAULT_DTE = 45

TABLE = TableSpec(
    constants.OPTION_SNAPSHOTS_TABLE,
    schema_of(
        ("request_id", pa.string()),
        ("symbol", pa.string()),
        ("expiry", pa.date32()),
        ("strike", pa.float64()),
        ("right", pa.string()),
        ("bid", pa.float64()),
        ("ask", pa.float64()),
        ("last", pa.float64()),
        ("volume", pa.float64()),
        ("implied_vol", pa.float64()),
        ("delta", pa.float64()),
        ("gamma", pa.float64()),
        ("vega", pa.float64()),
        ("theta", pa.float64()),
        ("underlying_price", pa.float64()),
        ("snapshot_time", UTC_TIMESTAMP),
        ("con_id", pa.int64()),
        ("trading_class", pa.string()),
        ("exchange", pa.string()),
        ("multiplier", pa.float64()),
    ),
    ("request_id", "con_id"),
    "option quotes with implied vol and greeks, one row per request and contract",
)


def check(out: dict[str, Any], given: Mapping[str, Any], now: datetime) -> None:
    """One target DTE, or a DTE range; the target defaults to 45 days."""
    has_range = "dte_min" in given or "dte_max" in given
    if "dte" in given and has_range:
        raise InvalidRequest("parameters.dte", "give dte or dte_min/dte_max, not both")
    if has_range:
        for key in ("dte_min", "dte_max"):
            if key not in given:
                raise InvalidRequest(f"parameters.{key}", "dte_min and dte_max go together")
        if out["dte_min"] > out["dte_max"]:
            raise InvalidRequest("parameters.dte_min", "is greater than dte_max")
    else:
        out.setdefault("dte", DEFAULT_DTE)


def cost(params: Mapping[str, Any]) -> Cost:
    """A market-data line per option snapshot held at once (strikes × rights × expiries),
    plus the underlying's."""
    sides = 1 if params.get("rights") in ("C", "P") else 2
    expiries = 1 if "dte" in params or "dte_min" not in params else 3
    lines = int(params.get("strikes", 10)) * 2 * sides * expiries + 1
    return Cost(lines=min(lines, MAX_CHARGED_LINES))


SPEC = RequestSpec(
    name="option_chain",
    summary="snapshots of an underlying's options near a target DTE",
    table=TABLE,
    rules={
        "dte": Rule(rules.integer(0, rules.MAX_DTE)),
        "dte_min": Rule(rules.integer(0, rules.MAX_DTE)),
        "dte_max": Rule(rules.integer(0, rules.MAX_DTE)),
        "strikes": Rule(rules.integer(1, rules.MAX_STRIKES_PER_SIDE), default=10),
        "rights": Rule(rules.rights, default="both"),
        "exchange": Rule(rules.exchange, default="SMART"),
    },
    cost=cost,
    cross_check=check,
    default_jobs=(
        {
            "name": "option_chains",
            "type": "option_chain",
            "symbols": ["SPY", "QQQ", "IWM"],
            "parameters": {"dte": DEFAULT_DTE},
            "interval_seconds": 300,
            "needs_market_open": True,
            "market": "XNYS",
        },
    ),
)
