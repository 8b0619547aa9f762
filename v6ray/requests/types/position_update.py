"""position_update: the account's positions → ``positions`` (symbol ``*``: every one)."""

from __future__ import annotations

import pyarrow as pa

from v6ray import constants
from v6ray.pacing.costs import Cost
from v6ray.requests import rules
from v6ray.requests.rules import Rule
from v6ray.requests.spec import RequestSpec
from v6ray.storage.table_spec import UTC_TIMESTAMP, TableSpec, schema_of

TABLE = TableSpec(
    constants.POSITIONS_TABLE,
    schema_of(
        ("request_id", pa.string()),
        ("account", pa.string()),
        ("symbol", pa.string()),
        ("sec_type", pa.string()),
        ("con_id", pa.int64()),
        ("position", pa.float64()),
        ("avg_cost", pa.float64()),
        ("snapshot_time", UTC_TIMESTAMP),
    ),
    ("request_id", "account", "con_id"),
    "account positions, one row per request, account and contract",
)

SPEC = RequestSpec(
    name="position_update",
    summary="the account's positions (symbol '*' for all)",
    table=TABLE,
    rules={"account": Rule(rules.account)},
    cost=lambda params: Cost(),  # one plain message: no line, no historical slot
    all_symbols=True,
    default_jobs=(
        {
            # Positions move only with trades; every 15 minutes, market open or not, is plenty.
            "name": "positions",
            "type": "position_update",
            "symbols": ["*"],
            "interval_seconds": 900,
            "needs_market_open": False,
        },
    ),
)
