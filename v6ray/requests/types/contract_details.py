"""contract_details: what IB lists for a symbol (every futures month, a stock's listing, one
expiry's options) → ``contracts``, the reference table: one row per con_id, latest wins."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pyarrow as pa

from v6ray.errors import InvalidRequest
from v6ray.pacing.costs import Cost
from v6ray.requests import rules
from v6ray.requests.rules import Rule
from v6ray.requests.spec import RequestSpec
from v6ray.storage.table_spec import UTC_TIMESTAMP, TableSpec, schema_of

SEC_TYPES = frozenset({"STK", "IND", "FUT", "CONTFUT", "OPT", "CASH"})
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$", re.ASCII)
_EXPIRY_RE = re.compile(r"^[0-9]{6}([0-9]{2})?$", re.ASCII)

TABLE = TableSpec(
    "contracts",
    schema_of(
        ("con_id", pa.int64()),
        ("symbol", pa.string()),
        ("sec_type", pa.string()),
        ("exchange", pa.string()),
        ("primary_exchange", pa.string()),
        ("currency", pa.string()),
        ("local_symbol", pa.string()),
        ("trading_class", pa.string()),
        ("multiplier", pa.float64()),
        ("expiry", pa.date32()),
        ("strike", pa.float64()),
        ("right", pa.string()),
        ("min_tick", pa.float64()),
        ("long_name", pa.string()),
        ("snapshot_time", UTC_TIMESTAMP),
    ),
    ("con_id",),
    "contracts IB lists (reference data), one row per contract, the latest answer winning",
)


def sec_type(value: Any) -> str:
    text = rules.ascii_text(value).upper()
    if text not in SEC_TYPES:
        raise ValueError(f"must be one of {', '.join(sorted(SEC_TYPES))}, got {text!r}")
    return text


def currency(value: Any) -> str:
    text = rules.ascii_text(value).upper()
    if not _CURRENCY_RE.match(text):
        raise ValueError(f"must be a three-letter currency code such as USD, got {text!r}")
    return text


def expiry(value: Any) -> str:
    """A contract month (YYYYMM) or a last trading day (YYYYMMDD), as IB's
    ``lastTradeDateOrContractMonth`` takes it."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = rules.ascii_text(value) if isinstance(value, str) else ""
    if not _EXPIRY_RE.match(text):
        raise ValueError(f"must be YYYYMM or YYYYMMDD, got {value!r}")
    try:
        datetime.strptime(text if len(text) == 8 else text + "01", "%Y%m%d")
    except ValueError:
        raise ValueError(f"{text} is not a date") from None
    return text


def check(out: dict[str, Any], given: Mapping[str, Any], now: datetime) -> None:
    # Every option of an underlying is thousands of contracts, which IB answers slowly and
    # paces: one expiry at a time.
    if out.get("sec_type") == "OPT" and "expiry" not in out:
        raise InvalidRequest("parameters.expiry", "is required with sec_type OPT (one expiry)")


SPEC = RequestSpec(
    name="contract_details",
    summary="the contracts IB lists for a symbol (reference data)",
    table=TABLE,
    rules={
        "sec_type": Rule(sec_type),
        "exchange": Rule(rules.exchange),
        "currency": Rule(currency, default="USD"),
        "expiry": Rule(expiry),
    },
    cost=lambda params: Cost(),  # one contract-details message: no line, no history slot
    cross_check=check,
    default_jobs=(
        {
            # Listings change overnight (a new futures month, an expiry gone): refreshed
            # once a trading day, before the open, for every symbol the scheduler collects.
            "name": "contracts",
            "type": "contract_details",
            "symbols": "scheduled",
            "at": "07:00",
            "priority": 3,
            "market": "XNYS",
        },
    ),
)
