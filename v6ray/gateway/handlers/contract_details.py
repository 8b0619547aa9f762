"""contract_details: one reqContractDetails → a row per contract IB lists → ``contracts``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ib_async import Contract, ContractDetails

from v6ray.gateway import parsing
from v6ray.gateway.handlers.base import HandlerContext, Rows
from v6ray.requests.instruments import contract_identity, default_sec_type
from v6ray.requests.types.contract_details import TABLE


def query(symbol: str, parameters: dict[str, Any]) -> Contract:
    """The contract-details query: a future root without ``sec_type`` asks for every listed
    month (FUT), not the continuous series; the venue defaults as for market data."""
    kind = parameters.get("sec_type") or default_sec_type(symbol)
    if kind == "CONTFUT" and "sec_type" not in parameters:
        kind = "FUT"
    identity = contract_identity(symbol, kind, parameters.get("exchange"))
    return Contract(
        symbol=symbol, secType=kind, exchange=identity.exchange,
        currency=parameters.get("currency", "USD"),
        lastTradeDateOrContractMonth=parameters.get("expiry", ""),
    )


def contract_row(details: ContractDetails, now: datetime) -> dict[str, Any]:
    c = details.contract
    return {
        "con_id": parsing.integer(c.conId),
        "symbol": c.symbol,
        "sec_type": c.secType,
        "exchange": c.exchange or None,
        "primary_exchange": c.primaryExchange or None,
        "currency": c.currency or None,
        "local_symbol": c.localSymbol or None,
        "trading_class": c.tradingClass or None,
        "multiplier": parsing.number(c.multiplier or None),
        "expiry": parsing.expiry_date(c.lastTradeDateOrContractMonth),
        "strike": parsing.number(c.strike) if c.secType in ("OPT", "FOP") else None,
        "right": c.right or None,
        "min_tick": parsing.number(details.minTick),
        "long_name": details.longName or None,
        "snapshot_time": now,
    }


class ContractDetailsHandler:
    request_type = "contract_details"
    table = TABLE.name

    async def run(self, ctx: HandlerContext) -> Rows:
        req = ctx.request
        details = await ctx.contract_details(query(req.symbol, req.parameters), req.symbol)
        now = ctx.now()
        rows: dict[int | None, dict[str, Any]] = {}
        for item in details:
            row = contract_row(item, now)
            # A stock asked on SMART is listed on SMART and its primary exchange, with one
            # con_id: the first answer (the venue asked for) is the row.
            rows.setdefault(row["con_id"], row)
        return list(rows.values())


HANDLER = ContractDetailsHandler()
