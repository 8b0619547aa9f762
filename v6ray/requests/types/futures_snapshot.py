"""futures_snapshot: one futures contract's quote (the front month, or ``contract_month``)
→ ``futures_snapshots``."""

from __future__ import annotations

import pyarrow as pa

from v6ray import constants
from v6ray.pacing.costs import Cost
from v6ray.requests import rules
from v6ray.requests.rules import Rule
from v6ray.requests.spec import RequestSpec
from v6ray.storage.table_spec import UTC_TIMESTAMP, TableSpec, schema_of

TABLE = TableSpec(
    constants.FUTURES_SNAPSHOTS_TABLE,
    schema_of(
        ("request_id", pa.string()),
        ("symbol", pa.string()),
        ("contract_month", pa.string()),
        ("bid", pa.float64()),
        ("ask", pa.float64()),
        ("last", pa.float64()),
        ("volume", pa.float64()),
        ("snapshot_time", UTC_TIMESTAMP),
        ("con_id", pa.int64()),
        ("exchange", pa.string()),
        ("expiry", pa.date32()),
        ("multiplier", pa.float64()),
    ),
    ("request_id", "con_id"),
    "futures quotes, one row per request and contract",
)

SPEC = RequestSpec(
    name="futures_snapshot",
    summary="one futures contract's quote (front month unless contract_month)",
    table=TABLE,
    rules={
        "contract_month": Rule(rules.contract_month),
        "exchange": Rule(rules.exchange, default="CME"),
    },
    cost=lambda params: Cost(lines=1),  # one snapshot line
    market="CME",
    default_jobs=(
        {
            "name": "futures_snapshots",
            "type": "futures_snapshot",
            "symbols": ["ES", "NQ", "RTY"],
            "interval_seconds": 60,
            "needs_market_open": True,
            "market": "CME",
        },
    ),
)
