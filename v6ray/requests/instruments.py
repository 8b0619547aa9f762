"""Which instrument a symbol plus a request's parameters mean, and so which bar series (pure).

The gateway builds IB contracts from this (``gateway/handlers/contracts.py``); the writer
stamps the same identity on every ``market_bars`` row, the migration fills it for rows
written before the columns existed, and derive-stats picks its series by it. One home for
the rule keeps the three from drifting apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Index symbols and their listing exchange at IB.
INDEX_EXCHANGES = {"SPX": "CBOE", "NDX": "NASDAQ", "RUT": "RUSSELL", "VIX": "CBOE", "XSP": "CBOE"}
# Equity-index future roots and their exchange.
FUTURE_EXCHANGES = {"ES": "CME", "MES": "CME", "NQ": "CME", "MNQ": "CME", "RTY": "CME",
                    "M2K": "CME", "YM": "CBOT", "MYM": "CBOT"}
DEFAULT_EXCHANGES = {"STK": "SMART", "CASH": "IDEALPRO"}

# ``contract_month`` of every series that is not one dated future (a stock, an index, the
# continuous future): "" rather than null, because a null never equals anything in a
# MERGE predicate and would make every re-fetch of such a bar a duplicate.
NO_CONTRACT_MONTH = ""


def default_sec_type(symbol: str) -> str:
    if symbol in INDEX_EXCHANGES:
        return "IND"
    if symbol in FUTURE_EXCHANGES:
        return "CONTFUT"
    return "STK"


@dataclass(frozen=True)
class ContractIdentity:
    """What tells two instruments of one symbol apart: ES continuous vs ES 202512, SPY on
    SMART vs SPY on ARCA."""

    sec_type: str
    exchange: str
    contract_month: str = NO_CONTRACT_MONTH


def contract_identity(
    symbol: str,
    sec_type: str | None = None,
    exchange: str | None = None,
    contract_month: str | None = None,
) -> ContractIdentity:
    """``sec_type``/``exchange`` override the guess from the symbol; a ``contract_month`` on
    a future root means that dated future instead of the continuous one."""
    kind = sec_type or default_sec_type(symbol)
    if kind in ("CONTFUT", "FUT") and contract_month:
        kind = "FUT"
    if kind == "IND":
        venue = exchange or INDEX_EXCHANGES.get(symbol, "CBOE")
    elif kind in ("CONTFUT", "FUT"):
        venue = exchange or FUTURE_EXCHANGES.get(symbol, "CME")
    else:
        venue = exchange or DEFAULT_EXCHANGES.get(kind, "SMART")
    month = (contract_month or NO_CONTRACT_MONTH) if kind == "FUT" else NO_CONTRACT_MONTH
    return ContractIdentity(kind, venue, month)


def bar_series(symbol: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The ``market_bars`` columns that, with symbol, bar_size, what_to_show and timestamp,
    make a bar's identity: ``use_rth``, ``sec_type``, ``exchange``, ``contract_month``.

    ``parameters`` are a market_bars request's (normalized) parameters; a missing
    ``use_rth`` means True, its default.
    """
    identity = contract_identity(
        symbol, parameters.get("sec_type"), parameters.get("exchange"),
        parameters.get("contract_month"),
    )
    return {
        "use_rth": bool(parameters.get("use_rth", True)),
        "sec_type": identity.sec_type,
        "exchange": identity.exchange,
        "contract_month": identity.contract_month,
    }
