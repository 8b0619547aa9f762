"""When an instrument trades: the sessions IB serves bars for, by kind of instrument (pure).

- Stocks and ETFs (``EQUITY``): regular hours 09:30-16:00 ET, extended 04:00-20:00 (useRTH=0).
- Indices and options (``INDEX``): 09:30-16:00 ET whatever useRTH says.
- Futures (``FUTURE``): 18:00 ET the evening before to 17:00 ET (useRTH=0), 09:30-16:00
  with useRTH=1.

A session is named by its trade date. Trading days come from the exchange's calendar
(``exchange_calendars``: XNYS for equities and indices, CMES for futures, with holidays and
early closes), or, with ``holidays=False``, every weekday: a superset that needs no calendar,
for callers that must not pay for importing one (it takes seconds). Over-counting trading
days is the safe side for a bar chunker: a "5 D" request then reaches back further than
planned and overlaps its neighbour; it never leaves a hole.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from v6ray.pacing import ib_limits

NEW_YORK = ZoneInfo("America/New_York")

# The exchange calendars cover this span; outside it every weekday is a trading day.
_CALENDAR_FIRST = date(2000, 1, 1)
_CALENDAR_LAST = date(2035, 12, 31)

class SessionKind(StrEnum):
    EQUITY = "equity"  # stocks, ETFs: extended hours outside RTH
    INDEX = "index"  # indices and options: regular hours only
    FUTURE = "future"  # nearly 24 h outside RTH


@dataclass(frozen=True)
class Session:
    trade_date: date
    start: int  # epoch seconds, inclusive
    end: int  # epoch seconds, exclusive


def session_kind(sec_type: str) -> SessionKind | None:
    """The trading hours of a secType (``instruments.default_sec_type`` guesses one from a
    symbol); None for one whose hours are not modelled (CASH)."""
    if sec_type in ("FUT", "CONTFUT"):
        return SessionKind.FUTURE
    if sec_type == "STK":
        return SessionKind.EQUITY
    if sec_type in ("IND", "OPT"):
        return SessionKind.INDEX
    return None


def session_seconds(kind: SessionKind, use_rth: bool) -> int:
    """How long a full session of ``kind`` lasts (an early close only shortens it)."""
    if use_rth or kind is SessionKind.INDEX:
        return ib_limits.REGULAR_SESSION_SECONDS
    return 82_800 if kind is SessionKind.FUTURE else 57_600  # 18:00-17:00, 04:00-20:00


def _at(day: date, clock: time) -> int:
    return int(datetime.combine(day, clock, tzinfo=NEW_YORK).timestamp())


def session_on(kind: SessionKind, use_rth: bool, day: date, *,
               holidays: bool = True) -> Session | None:
    """The session trading on ``day``, or None on a weekend (or a holiday)."""
    if day.weekday() >= 5:
        return None
    early_close: int | None = None
    if holidays and _CALENDAR_FIRST <= day <= _CALENDAR_LAST:
        days = _exchange_days("CMES" if kind is SessionKind.FUTURE else "XNYS")
        if day not in days.open:
            return None
        early_close = days.early_close.get(day)
    if kind is SessionKind.FUTURE and not use_rth:
        start, end = _at(day - timedelta(days=1), time(18)), _at(day, time(17))
    elif kind is SessionKind.EQUITY and not use_rth:
        # IB's extended hours; on an early-close day they are left as usual (not known).
        return Session(day, _at(day, time(4)), _at(day, time(20)))
    else:
        start, end = _at(day, time(9, 30)), _at(day, time(16))
    return Session(day, start, min(end, early_close) if early_close else end)


def sessions_between(kind: SessionKind, use_rth: bool, first: date, last: date, *,
                     holidays: bool = True) -> list[Session]:
    """Sessions whose trade date lies in [first, last], oldest first."""
    out = []
    day = first
    while day <= last:
        session = session_on(kind, use_rth, day, holidays=holidays)
        if session:
            out.append(session)
        day += timedelta(days=1)
    return out


@dataclass(frozen=True)
class _ExchangeDays:
    open: frozenset[date]
    early_close: dict[date, int]  # trade date -> epoch seconds of the early close


@functools.cache
def _exchange_days(name: str) -> _ExchangeDays:
    """Trading days and early closes of one exchange calendar, built once per process."""
    import exchange_calendars as xcals  # seconds to import: only when holidays are asked for

    calendar = xcals.get_calendar(
        name, start=_CALENDAR_FIRST.isoformat(), end=_CALENDAR_LAST.isoformat()
    )
    closes = calendar.schedule["close"]
    early = {
        stamp.date(): int(closes[stamp].timestamp())
        for stamp in calendar.early_closes
        if stamp in closes.index
    }
    return _ExchangeDays(frozenset(d.date() for d in calendar.sessions), early)


def load_calendars() -> None:
    """Build both exchange calendars now, so that no later request pays for it."""
    _exchange_days("XNYS")
    _exchange_days("CMES")
