"""Which IB contract a v6ray symbol means (stock/ETF, index, or future root).

The choice itself is pure and shared with storage (``v6ray.requests.instruments``); this module
only turns it into ib_async contract objects.
"""

from __future__ import annotations

from ib_async import ContFuture, Contract, Future, Index, Stock

from v6ray.requests.instruments import FUTURE_EXCHANGES, contract_identity

__all__ = ["FUTURE_EXCHANGES", "needs_qualifying", "underlying"]


def underlying(
    symbol: str,
    sec_type: str | None = None,
    exchange: str | None = None,
    contract_month: str | None = None,
) -> Contract:
    """The contract for ``symbol``; ``sec_type``/``exchange`` override the guess, and a
    ``contract_month`` on a future root means that month instead of the continuous one."""
    identity = contract_identity(symbol, sec_type, exchange, contract_month)
    kind, venue = identity.sec_type, identity.exchange
    if kind == "IND":
        return Index(symbol, venue, "USD")
    if kind == "CONTFUT":
        return ContFuture(symbol, venue, currency="USD")
    if kind == "FUT":
        return Future(symbol, identity.contract_month, venue, currency="USD")
    if kind == "CASH":
        return Contract(symbol=symbol[:3], secType="CASH", currency=symbol[3:] or "USD",
                        exchange=venue)
    return Stock(symbol, venue, "USD")


def needs_qualifying(contract: Contract) -> bool:
    """Stocks on SMART are unambiguous for historical data; others need IB's conId."""
    return contract.secType != "STK"
