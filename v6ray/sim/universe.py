"""The simulated instrument universe: reference data only, no prices.

Roots carry a random walk (see prices.py); every other instrument is priced from a
root: an ETF or index at a fixed ratio (SPY = SPX/10, QQQ ~ NDX/42, IWM = RUT/10), a
future at the index plus cost of carry, an option by Black-Scholes on its underlying.
Con ids of stocks and indices are IB's real ones; derived instruments get stable
hashed ids.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, timedelta

from v6ray.sim.calendar import SessionKind


@dataclass(frozen=True)
class Root:
    """A symbol with its own random walk."""

    symbol: str
    reference_price: float  # price at the walk's anchor date (2025-01-01)
    annual_vol: float
    dividend_yield: float
    minute_volume: float  # mean shares (or contracts) per minute, for TRADES bars


@dataclass(frozen=True)
class Underlying:
    """A stock, ETF or index: something with a price, options and (for some) futures."""

    symbol: str
    sec_type: str  # STK or IND
    con_id: int
    primary_exchange: str
    long_name: str
    root: str
    ratio: float  # price = ratio * root price
    strike_step: float
    expiry_style: str  # "etf", "stock" (weeklies + monthlies) or "index" (classes below)
    option_classes: tuple[str, ...] = ()  # index: (monthly class, weekly class)
    industry: str = ""
    category: str = ""

    @property
    def detail_exchange(self) -> str:
        return "SMART" if self.sec_type == "STK" else self.primary_exchange


@dataclass(frozen=True)
class FutureRoot:
    symbol: str
    index: str  # the underlying index symbol
    multiplier: int
    min_tick: float
    long_name: str
    carry: float = 0.032  # rate minus dividend yield, annual


@dataclass(frozen=True)
class Instrument:
    """A fully specified contract as contract details describe it."""

    con_id: int
    symbol: str
    sec_type: str  # STK, IND, FUT, CONTFUT, OPT
    exchange: str
    primary_exchange: str
    local_symbol: str
    trading_class: str
    long_name: str
    root: str
    ratio: float
    multiplier: str = ""
    expiry: str = ""  # YYYYMMDD for FUT/OPT
    strike: float = 0.0
    right: str = ""
    under_con_id: int = 0
    under_symbol: str = ""
    under_sec_type: str = ""
    min_tick: float = 0.01
    carry: float = 0.0
    industry: str = ""
    category: str = ""
    valid_exchanges: tuple[str, ...] = field(default=())

    @property
    def session_kind(self) -> SessionKind:
        if self.sec_type in ("FUT", "CONTFUT"):
            return SessionKind.FUTURE
        return SessionKind.EQUITY if self.sec_type == "STK" else SessionKind.INDEX

    @property
    def contract_month(self) -> str:
        return self.expiry[:6]


ROOTS: dict[str, Root] = {
    r.symbol: r
    for r in (
        Root("SPX", 5900.0, 0.16, 0.013, 60_000),
        Root("NDX", 21000.0, 0.20, 0.007, 40_000),
        Root("RUT", 2250.0, 0.22, 0.012, 20_000),
        Root("AAPL", 240.0, 0.26, 0.005, 90_000),
        Root("MSFT", 420.0, 0.24, 0.008, 40_000),
        Root("NVDA", 135.0, 0.45, 0.0, 500_000),
        Root("AMZN", 220.0, 0.32, 0.0, 80_000),
        Root("GOOGL", 190.0, 0.30, 0.004, 60_000),
        Root("META", 590.0, 0.36, 0.003, 30_000),
        Root("TSLA", 400.0, 0.60, 0.0, 200_000),
    )
}

_OPTION_EXCHANGES_EQUITY = ("SMART", "AMEX", "BOX", "CBOE", "ISE", "PHLX")
_OPTION_EXCHANGES_INDEX = ("SMART", "CBOE")


def _stock(symbol, con_id, primary, name, ratio=1.0, root=None, step=2.5, style="stock", ind=""):
    return Underlying(symbol, "STK", con_id, primary, name, root or symbol, ratio, step, style,
                      industry=ind, category=ind)


UNDERLYINGS: dict[str, Underlying] = {
    u.symbol: u
    for u in (
        _stock("SPY", 756733, "ARCA", "SPDR S&P 500 ETF TRUST", 0.1, "SPX", 1.0, "etf", "ETF"),
        _stock("QQQ", 320227571, "NASDAQ", "INVESCO QQQ TRUST SERIES 1", 1 / 42, "NDX", 1.0, "etf",
               "ETF"),
        _stock("IWM", 9579970, "ARCA", "ISHARES RUSSELL 2000 ETF", 0.1, "RUT", 1.0, "etf", "ETF"),
        _stock("AAPL", 265598, "NASDAQ", "APPLE INC", ind="Technology"),
        _stock("MSFT", 272093, "NASDAQ", "MICROSOFT CORP", step=5.0, ind="Technology"),
        _stock("NVDA", 4815747, "NASDAQ", "NVIDIA CORP", step=1.0, ind="Technology"),
        _stock("AMZN", 3691937, "NASDAQ", "AMAZON.COM INC", ind="Communications"),
        _stock("GOOGL", 208813719, "NASDAQ", "ALPHABET INC-CL A", ind="Communications"),
        _stock("META", 107113386, "NASDAQ", "META PLATFORMS INC-CLASS A", step=5.0,
               ind="Communications"),
        _stock("TSLA", 76792991, "NASDAQ", "TESLA INC", step=5.0, ind="Consumer, Cyclical"),
        Underlying("SPX", "IND", 416904, "CBOE", "S&P 500 Stock Index", "SPX", 1.0, 5.0, "index",
                   ("SPX", "SPXW")),
        Underlying("NDX", "IND", 416843, "NASDAQ", "NASDAQ 100 Stock Index", "NDX", 1.0, 25.0,
                   "index", ("NDX", "NDXP")),
        Underlying("RUT", "IND", 416888, "RUSSELL", "Russell 2000 Stock Index", "RUT", 1.0, 5.0,
                   "index", ("RUT", "RUTW")),
    )
}

FUTURE_ROOTS: dict[str, FutureRoot] = {
    f.symbol: f
    for f in (
        FutureRoot("ES", "SPX", 50, 0.25, "E-mini S&P 500"),
        FutureRoot("MES", "SPX", 5, 0.25, "Micro E-Mini S&P 500 Stock Price Index"),
        FutureRoot("NQ", "NDX", 20, 0.25, "E-mini NASDAQ 100 Futures"),
        FutureRoot("MNQ", "NDX", 2, 0.25, "Micro E-Mini Nasdaq-100 Index"),
        FutureRoot("RTY", "RUT", 50, 0.1, "E-mini Russell 2000 Index"),
    )
}

FUTURE_EXCHANGES = ("CME", "GLOBEX")  # GLOBEX is the old name IB still accepts
QUARTER_CODES = {3: "H", 6: "M", 9: "U", 12: "Z"}
FUTURE_MONTHS_LISTED = 8  # quarterly months, two years out


def stable_con_id(text: str) -> int:
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return 500_000_000 + int.from_bytes(digest, "little") % 400_000_000


def third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def _months_ahead(today: date, count: int):
    year, month = today.year, today.month
    for _ in range(count):
        yield year, month
        month += 1
        if month > 12:
            year, month = year + 1, 1


def expirations(style: str, today: date) -> list[date]:
    """Option expiry dates over the next year for an expiry style, sorted."""
    monthly = {d for y, m in _months_ahead(today, 13) if today <= (d := third_friday(y, m))}
    monthly = {d for d in monthly if d <= today + timedelta(days=365)}
    if style == "monthly":
        return sorted(monthly)
    days = [today + timedelta(days=i) for i in range(61)]
    fridays = {d for d in days if d.weekday() == 4}
    dailies = {d for d in days[:11] if d.weekday() < 5} if style in ("etf", "weekly") else set()
    return sorted(monthly | fridays | dailies)


def future_months(root: FutureRoot, today: date) -> list[Instrument]:
    """The listed quarterly contracts of a future root, front month first."""
    out: list[Instrument] = []
    for year, month in _months_ahead(today, 3 * FUTURE_MONTHS_LISTED + 3):
        if month not in QUARTER_CODES or third_friday(year, month) < today:
            continue
        expiry = third_friday(year, month)
        local = f"{root.symbol}{QUARTER_CODES[month]}{year % 10}"
        index = UNDERLYINGS[root.index]
        out.append(
            Instrument(
                con_id=stable_con_id(f"FUT|{root.symbol}|{expiry:%Y%m%d}"),
                symbol=root.symbol, sec_type="FUT", exchange="CME", primary_exchange="",
                local_symbol=local, trading_class=root.symbol, long_name=root.long_name,
                root=index.root, ratio=index.ratio, multiplier=str(root.multiplier),
                expiry=f"{expiry:%Y%m%d}", under_con_id=index.con_id, under_symbol=index.symbol,
                under_sec_type="IND", min_tick=root.min_tick, carry=root.carry,
                valid_exchanges=("CME", "QBALGO"),
            )
        )
        if len(out) == FUTURE_MONTHS_LISTED:
            break
    return out


@dataclass(frozen=True)
class OptionClass:
    """One trading class of options on an underlying: its expirations."""

    underlying: Underlying
    trading_class: str
    expiries: tuple[date, ...]

    @property
    def exchanges(self) -> tuple[str, ...]:
        if self.underlying.sec_type == "IND":
            return _OPTION_EXCHANGES_INDEX
        return _OPTION_EXCHANGES_EQUITY


def option_classes(underlying: Underlying, today: date) -> list[OptionClass]:
    """IB's trading classes for an underlying (SPX: SPX monthlies and SPXW weeklies)."""
    if underlying.expiry_style == "index":
        monthly_class, weekly_class = underlying.option_classes
        return [
            OptionClass(underlying, monthly_class, tuple(expirations("monthly", today))),
            OptionClass(underlying, weekly_class, tuple(expirations("weekly", today))),
        ]
    return [OptionClass(underlying, underlying.symbol,
                        tuple(expirations(underlying.expiry_style, today)))]


def strike_grid(underlying: Underlying, spot: float) -> list[float]:
    """Strikes within +-20 % of ``spot`` on the underlying's strike step."""
    step = underlying.strike_step
    low = max(step, round(spot * 0.8 / step) * step)
    count = int(round((spot * 1.2 - low) / step)) + 1
    return [round(low + i * step, 4) for i in range(count)]


def occ_local_symbol(trading_class: str, expiry: date, right: str, strike: float) -> str:
    return f"{trading_class:<6}{expiry:%y%m%d}{right}{int(round(strike * 1000)):08d}"


def make_option(cls: OptionClass, expiry: date, strike: float, right: str,
                exchange: str) -> Instrument:
    u = cls.underlying
    return Instrument(
        con_id=stable_con_id(f"OPT|{cls.trading_class}|{expiry:%Y%m%d}|{strike}|{right}"),
        symbol=u.symbol, sec_type="OPT", exchange=exchange, primary_exchange="",
        local_symbol=occ_local_symbol(cls.trading_class, expiry, right, strike),
        trading_class=cls.trading_class, long_name=u.long_name, root=u.root, ratio=u.ratio,
        multiplier="100", expiry=f"{expiry:%Y%m%d}", strike=strike, right=right,
        under_con_id=u.con_id, under_symbol=u.symbol, under_sec_type=u.sec_type,
        min_tick=0.01 if u.sec_type == "STK" else 0.05, valid_exchanges=cls.exchanges,
    )


def underlying_instrument(u: Underlying, exchange: str) -> Instrument:
    valid = ("SMART", u.primary_exchange) if u.sec_type == "STK" else (u.primary_exchange,)
    # IB names NASDAQ stocks' trading class NMS; others (and indices) by their symbol.
    nasdaq_stock = u.sec_type == "STK" and u.primary_exchange == "NASDAQ" and u.industry != "ETF"
    return Instrument(
        con_id=u.con_id, symbol=u.symbol, sec_type=u.sec_type, exchange=exchange,
        primary_exchange=u.primary_exchange, local_symbol=u.symbol,
        trading_class="NMS" if nasdaq_stock else u.symbol,
        long_name=u.long_name, root=u.root, ratio=u.ratio, industry=u.industry,
        category=u.category, valid_exchanges=valid,
    )
