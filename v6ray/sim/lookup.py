"""Contract resolution: what IB's contract-details service answers for a query.

Unknown -> no match (the caller sends error 200). Partial queries match several
instruments, as at IB: a Future without a month lists every quarterly month; a Stock
without an exchange lists SMART and its primary exchange; an SPX option on a monthly
expiry without a trading class is both SPX (AM) and SPXW (PM).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime

from v6ray.sim.calendar import NEW_YORK
from v6ray.sim.protocol import ContractQuery
from v6ray.sim.universe import (
    FUTURE_EXCHANGES,
    FUTURE_ROOTS,
    UNDERLYINGS,
    Instrument,
    OptionClass,
    Underlying,
    future_months,
    make_option,
    option_classes,
    strike_grid,
    underlying_instrument,
)

ReferenceSpot = Callable[[Underlying, date], float]


def today_in_new_york() -> date:
    return datetime.now(NEW_YORK).date()


class ContractBook:
    """Resolves contract queries to instruments and remembers every con id it handed out."""

    def __init__(self, reference_spot: ReferenceSpot) -> None:
        self._reference_spot = reference_spot
        self._strikes: dict[tuple[str, date], list[float]] = {}
        self._by_con_id: dict[int, Instrument] = {
            u.con_id: underlying_instrument(u, u.detail_exchange) for u in UNDERLYINGS.values()
        }

    # --- reference data ------------------------------------------------------------
    def strikes(self, underlying: Underlying, day: date) -> list[float]:
        """Strikes listed today: a grid around the day's reference price (stable all day)."""
        key = (underlying.symbol, day)
        if key not in self._strikes:
            self._strikes[key] = strike_grid(underlying, self._reference_spot(underlying, day))
        return self._strikes[key]

    def option_chains(self, symbol: str, con_id: int) -> list[tuple[str, OptionClass, list[float]]]:
        """(exchange, class, strikes) per exchange and trading class, as reqSecDefOptParams."""
        underlying = UNDERLYINGS.get(symbol.upper())
        if underlying is None or (con_id and con_id != underlying.con_id):
            return []
        day = today_in_new_york()
        strikes = self.strikes(underlying, day)
        return [
            (exchange, cls, strikes)
            for cls in option_classes(underlying, day)
            for exchange in cls.exchanges
        ]

    def futures(self, root: str) -> list[Instrument]:
        months = future_months(FUTURE_ROOTS[root], today_in_new_york())
        for month in months:
            self.remember(month)
        return months

    def remember(self, instrument: Instrument) -> None:
        """Make a con id resolvable on its own (IB resolves any con id it ever listed)."""
        self._by_con_id.setdefault(instrument.con_id, instrument)

    def by_con_id(self, con_id: int) -> Instrument | None:
        return self._by_con_id.get(con_id)

    def matching_symbols(self, pattern: str) -> list[Underlying]:
        """reqMatchingSymbols: symbols starting with the pattern, then names containing it."""
        text = pattern.strip().upper()
        if not text:
            return []
        found = [u for u in UNDERLYINGS.values() if u.symbol.startswith(text)]
        found += [u for u in UNDERLYINGS.values() if text in u.long_name.upper() and u not in found]
        return found[:16]

    # --- resolution ----------------------------------------------------------------
    def resolve(self, q: ContractQuery) -> list[Instrument]:
        if q.currency not in ("", "USD"):
            return []
        if q.con_id and not q.symbol and not q.local_symbol:
            known = self.by_con_id(q.con_id)
            return [known] if known else []
        if q.sec_type in ("", "STK", "IND"):
            found = self._underlyings(q)
        elif q.sec_type in ("FUT", "CONTFUT"):
            found = self._futures(q)
        elif q.sec_type == "OPT":
            found = self._options(q)
        else:
            found = []
        if q.con_id:
            found = [i for i in found if i.con_id == q.con_id]
        for instrument in found:
            self.remember(instrument)
        return found

    def _underlyings(self, q: ContractQuery) -> list[Instrument]:
        u = UNDERLYINGS.get(q.symbol) or next(
            (x for x in UNDERLYINGS.values() if q.local_symbol and x.symbol == q.local_symbol), None
        )
        if u is None or (q.sec_type and q.sec_type != u.sec_type):
            return []
        if u.sec_type == "IND":
            ok = q.exchange in ("", u.primary_exchange)
            return [underlying_instrument(u, u.primary_exchange)] if ok else []
        if q.exchange == "":
            return [underlying_instrument(u, "SMART"), underlying_instrument(u, u.primary_exchange)]
        listed = ("SMART", u.primary_exchange, "ISLAND" if u.primary_exchange == "NASDAQ" else "")
        return [underlying_instrument(u, q.exchange)] if q.exchange in listed else []

    def _futures(self, q: ContractQuery) -> list[Instrument]:
        if q.symbol not in FUTURE_ROOTS or q.exchange not in ("", *FUTURE_EXCHANGES):
            return []
        months = self.futures(q.symbol)
        if q.sec_type == "CONTFUT":
            return [replace(months[0], sec_type="CONTFUT")]
        return [
            m for m in months
            if (not q.last_trade or m.expiry.startswith(q.last_trade))
            and (not q.local_symbol or m.local_symbol == q.local_symbol)
            and (not q.multiplier or q.multiplier == m.multiplier)
            and (not q.trading_class or q.trading_class == m.trading_class)
        ]

    def _options(self, q: ContractQuery) -> list[Instrument]:
        underlying = UNDERLYINGS.get(q.symbol)
        if underlying is None or q.multiplier not in ("", "100"):
            return []
        day = today_in_new_york()
        strikes = self.strikes(underlying, day)
        if q.strike and round(q.strike, 4) not in strikes:
            return []
        wanted_strikes = [round(q.strike, 4)] if q.strike else strikes
        rights = [q.right] if q.right in ("C", "P") else ["C", "P"]
        found = []
        for cls in option_classes(underlying, day):
            if q.trading_class and q.trading_class != cls.trading_class:
                continue
            exchange = q.exchange or "SMART"
            if exchange not in cls.exchanges:
                continue
            for expiry in cls.expiries:
                if q.last_trade and not f"{expiry:%Y%m%d}".startswith(q.last_trade):
                    continue
                for strike in wanted_strikes:
                    for right in rights:
                        option = make_option(cls, expiry, strike, right, exchange)
                        if not q.local_symbol or option.local_symbol == q.local_symbol:
                            found.append(option)
        return found
