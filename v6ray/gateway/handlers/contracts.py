"""Which IB contract a v6ray symbol means (stock/ETF, index, or future root)."""

from __future__ import annotations

from ib_async import ContFuture, Contract, Future, Index, Stock

# Which symbols are indices or futures (and where IB lists them) is in v6ray.markets: the
# chunkers need it too, without ib_async.
from v6ray.markets import FUTURE_EXCHANGES, INDEX_EXCHANGES, default_sec_type


def underlying(
    symbol: str,
    sec_type: str | None = None,
    exchange: str | None = None,
    contract_month: str | None = None,
) -> Contract:
    """The contract for ``symbol``; ``sec_type``/``exchange`` override the guess, and a
    ``contract_month`` on a future root means that month instead of the continuous one."""
    kind = sec_type or default_sec_type(symbol)
    if kind in ("CONTFUT", "FUT") and contract_month:
        kind = "FUT"
    if kind == "IND":
        return Index(symbol, exchange or INDEX_EXCHANGES.get(symbol, "CBOE"), "USD")
    if kind == "CONTFUT":
        return ContFuture(symbol, exchange or FUTURE_EXCHANGES.get(symbol, "CME"), currency="USD")
    if kind == "FUT":
        return Future(symbol, contract_month or "", exchange or FUTURE_EXCHANGES.get(symbol, "CME"),
                      currency="USD")
    if kind == "CASH":
        return Contract(symbol=symbol[:3], secType="CASH", currency=symbol[3:] or "USD",
                        exchange=exchange or "IDEALPRO")
    return Stock(symbol, exchange or "SMART", "USD")


def needs_qualifying(contract: Contract) -> bool:
    """Stocks on SMART are unambiguous for historical data; others need IB's conId."""
    return contract.secType != "STK"
