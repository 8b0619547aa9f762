"""IB objects → rows of v6ray's tables (pure: attribute reads and arithmetic only).

Functions take ib_async objects by duck type (``bar.open``, ``ticker.modelGreeks`` …), so
tests feed them simple stand-ins. IB's "no value" markers (NaN, UNSET_DOUBLE, -1 prices)
become nulls; every time is a UTC timestamp.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any

import pyarrow as pa

from v6ray.storage.schemas import TABLES

UNSET_DOUBLE = 1.7976931348623157e308  # IB's "no value" for doubles
UNSET_INTEGER = 2**31 - 1


def number(value: Any) -> float | None:
    """A finite float or None (NaN, None, IB's unset marker)."""
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(out) or math.isinf(out) or abs(out) >= UNSET_DOUBLE:
        return None
    return out


def price(value: Any) -> float | None:
    """Prices: IB sends -1 (and 0 for some feeds) for "no quote"."""
    out = number(value)
    return None if out is None or out < 0 else out


def integer(value: Any) -> int | None:
    out = number(value)
    if out is None or out == UNSET_INTEGER:
        return None
    return int(out)


def utc_timestamp(value: Any) -> datetime:
    """A bar's date (datetime, date, epoch seconds or IB's text) as an aware UTC datetime."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), tz=UTC)
    text = str(value).strip()
    if text.isdigit() and len(text) > 8:
        return datetime.fromtimestamp(int(text), tz=UTC)
    if len(text) == 8 and text.isdigit():
        return datetime(int(text[:4]), int(text[4:6]), int(text[6:]), tzinfo=UTC)
    return utc_timestamp(datetime.fromisoformat(text.replace(" ", "T", 1)))


def expiry_date(text: str) -> date | None:
    """IB's lastTradeDateOrContractMonth (YYYYMMDD, or YYYYMM for a month) → date."""
    text = (text or "").strip()[:8]
    if len(text) == 8 and text.isdigit():
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    if len(text) == 6 and text.isdigit():
        return date(int(text[:4]), int(text[4:6]), 1)
    return None


def to_table(table: str, rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Rows → an Arrow table of ``table``'s schema (missing columns are null)."""
    return pa.Table.from_pylist(list(rows), schema=TABLES[table].schema)


# --------------------------------------------------------------------------- bars


def contract_columns(contract: Any) -> dict[str, Any]:
    """``con_id``/``local_symbol`` of a contract IB qualified (null when it was not)."""
    return {
        "con_id": integer(getattr(contract, "conId", None)) or None,
        "local_symbol": getattr(contract, "localSymbol", None) or None,
    }


def bar_rows(
    request_id: str, series: Mapping[str, Any], bars: Iterable[Any]
) -> list[dict[str, Any]]:
    """One ``market_bars`` row per bar; ``series`` holds the columns every bar of the request
    shares (symbol, bar_size, what_to_show and the identity of ``instruments.bar_series``,
    plus ``contract_columns``)."""
    rows = []
    for bar in bars:
        rows.append(
            {
                "request_id": request_id,
                **series,
                "timestamp": utc_timestamp(bar.date),
                "open": number(bar.open),
                "high": number(bar.high),
                "low": number(bar.low),
                "close": number(bar.close),
                "volume": number(getattr(bar, "volume", None)),
                "wap": number(getattr(bar, "average", None)),
                "bar_count": integer(getattr(bar, "barCount", None)),
            }
        )
    return rows


# --------------------------------------------------------------------------- snapshots


def _greeks(ticker: Any) -> Any:
    for name in ("modelGreeks", "lastGreeks", "bidGreeks", "askGreeks"):
        greeks = getattr(ticker, name, None)
        if greeks is not None:
            return greeks
    return None


def option_row(
    request_id: str, symbol: str, ticker: Any, underlying_price: float | None, now: datetime
) -> dict[str, Any]:
    contract = ticker.contract
    greeks = _greeks(ticker)
    implied = number(getattr(greeks, "impliedVol", None)) if greeks is not None else None
    if implied is None:
        implied = number(getattr(ticker, "impliedVolatility", None))
    und = number(getattr(greeks, "undPrice", None)) if greeks is not None else None
    return {
        "request_id": request_id,
        "symbol": symbol,
        "expiry": expiry_date(contract.lastTradeDateOrContractMonth),
        "strike": number(contract.strike),
        "right": (contract.right or "")[:1].upper() or None,
        "bid": price(ticker.bid),
        "ask": price(ticker.ask),
        "last": price(ticker.last),
        "volume": number(ticker.volume),
        "implied_vol": implied,
        "delta": number(getattr(greeks, "delta", None)) if greeks is not None else None,
        "gamma": number(getattr(greeks, "gamma", None)) if greeks is not None else None,
        "vega": number(getattr(greeks, "vega", None)) if greeks is not None else None,
        "theta": number(getattr(greeks, "theta", None)) if greeks is not None else None,
        "underlying_price": underlying_price if underlying_price is not None else und,
        "snapshot_time": now,
        "con_id": integer(contract.conId),
        "trading_class": contract.tradingClass or None,
        "exchange": contract.exchange or None,
        "multiplier": number(contract.multiplier) if contract.multiplier else None,
    }


def futures_row(request_id: str, symbol: str, ticker: Any, now: datetime) -> dict[str, Any]:
    contract = ticker.contract
    month = (contract.lastTradeDateOrContractMonth or "")[:6] or None
    return {
        "request_id": request_id,
        "symbol": symbol,
        "contract_month": month,
        "bid": price(ticker.bid),
        "ask": price(ticker.ask),
        "last": price(ticker.last),
        "volume": number(ticker.volume),
        "snapshot_time": now,
        "con_id": integer(contract.conId),
        "exchange": contract.exchange or None,
        "expiry": expiry_date(contract.lastTradeDateOrContractMonth),
        "multiplier": number(contract.multiplier) if contract.multiplier else None,
    }


def snapshot_price(ticker: Any) -> float | None:
    """A usable spot from a snapshot: mid of a sane quote, else last, else close."""
    bid, ask = price(ticker.bid), price(ticker.ask)
    if bid and ask and ask >= bid:
        return (bid + ask) / 2
    for name in ("last", "close", "marketPrice"):
        value = getattr(ticker, name, None)
        value = value() if callable(value) else value
        value = price(value)
        if value:
            return value
    return None


# --------------------------------------------------------------------------- positions


def position_rows(
    request_id: str,
    positions: Iterable[Any],
    now: datetime,
    *,
    symbol: str = "*",
    account: str | None = None,
) -> list[dict[str, Any]]:
    rows = []
    for pos in positions:
        contract = pos.contract
        if symbol != "*" and (contract.symbol or "").upper() != symbol:
            continue
        if account and pos.account != account:
            continue
        rows.append(
            {
                "request_id": request_id,
                "account": pos.account,
                "symbol": contract.symbol,
                "sec_type": contract.secType,
                "con_id": integer(contract.conId),
                "position": number(pos.position),
                "avg_cost": number(pos.avgCost),
                "snapshot_time": now,
            }
        )
    return rows

