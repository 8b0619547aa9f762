"""Market clocks: when a market is open and when its sessions close (pure, no wall clock).

- ``XNYS``: NYSE regular hours from ``exchange_calendars`` (holidays, half days).
- ``CME``: CME Globex equity-index futures, roughly Sunday 18:00 to Friday 17:00 ET with
  the daily 17:00-18:00 ET break. Trading days, holidays and early halts come from the
  ``CMES`` calendar of ``exchange_calendars``; each session opens at 18:00 ET the evening
  before and ends at 17:00 ET (or the calendar's earlier close on a holiday schedule).
- ``SimulatedMarket``: the simulator's clock, in session whenever the simulator runs;
  every day is a trading day whose (nominal) close is 16:00 ET, so daily jobs still recur.

Every method takes the instant it is asked about: callers inject their clock.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd

NEW_YORK = ZoneInfo("America/New_York")
_FUTURES_DAILY_CLOSE = time(17, 0)  # ET: Globex equity futures halt 17:00-18:00 ET
_SIM_CLOSE = time(16, 0)
# How far to look for a session around an instant: longer than any run of closed days.
_SEARCH_DAYS = 10


@dataclass(frozen=True)
class Session:
    """One trading session: its trade date and its [open, close) interval in UTC."""

    trade_date: date
    open: datetime
    close: datetime

    def contains(self, at: datetime) -> bool:
        return self.open <= at < self.close


class MarketClock(Protocol):
    name: str
    tz: ZoneInfo

    def sessions(self, first: date, last: date) -> list[Session]:
        """Sessions whose trade date lies in [first, last], oldest first."""

    def is_open(self, at: datetime) -> bool: ...


class _SessionClock:
    """Shared queries over ``sessions()``; subclasses say what a session is."""

    name: str
    tz: ZoneInfo = NEW_YORK

    def sessions(self, first: date, last: date) -> list[Session]:  # pragma: no cover
        raise NotImplementedError

    def _around(self, at: datetime) -> list[Session]:
        local = _utc(at).astimezone(self.tz).date()
        return self.sessions(
            local - timedelta(days=_SEARCH_DAYS), local + timedelta(days=_SEARCH_DAYS)
        )

    def session_at(self, at: datetime) -> Session | None:
        at = _utc(at)
        return next((s for s in self._around(at) if s.contains(at)), None)

    def is_open(self, at: datetime) -> bool:
        return self.session_at(at) is not None

    def is_trading_day(self, day: date) -> bool:
        return bool(self.sessions(day, day))

    def last_close(self, at: datetime) -> Session | None:
        """The latest session that closed at or before ``at``."""
        at = _utc(at)
        closed = [s for s in self._around(at) if s.close <= at]
        return closed[-1] if closed else None

    def next_open(self, at: datetime) -> datetime | None:
        """``at`` itself when open, else the next session's open."""
        at = _utc(at)
        for session in self._around(at):
            if session.contains(at):
                return at
            if session.open > at:
                return session.open
        return None

    def next_close(self, at: datetime) -> Session | None:
        """The first session closing after ``at``."""
        at = _utc(at)
        return next((s for s in self._around(at) if s.close > at), None)


class ExchangeMarket(_SessionClock):
    """A market whose sessions are an ``exchange_calendars`` calendar's, as they are."""

    def __init__(self, calendar_name: str = "XNYS", *, name: str | None = None) -> None:
        self.calendar_name = calendar_name
        self.name = name or calendar_name

    def sessions(self, first: date, last: date) -> list[Session]:
        return [
            Session(day, opened, closed)
            for day, opened, closed in _calendar_sessions(self.calendar_name, first, last)
        ]


class FuturesMarket(ExchangeMarket):
    """CME Globex equity-index futures: CMES trading days, 18:00 ET (day before) to 17:00 ET."""

    def __init__(self) -> None:
        super().__init__("CMES", name="CME")

    def sessions(self, first: date, last: date) -> list[Session]:
        out = []
        for session in super().sessions(first, last):
            daily_close = datetime.combine(session.trade_date, _FUTURES_DAILY_CLOSE, NEW_YORK)
            close = min(session.close, daily_close.astimezone(UTC))
            out.append(Session(session.trade_date, session.open, close))
        return out


class SimulatedMarket(_SessionClock):
    """The simulator's market: always in session; a nominal 16:00 ET close every day."""

    name = "SIM"

    def sessions(self, first: date, last: date) -> list[Session]:
        out = []
        day = first
        while day <= last:
            close = datetime.combine(day, _SIM_CLOSE, NEW_YORK).astimezone(UTC)
            opened = datetime.combine(day, time(0, 0), NEW_YORK).astimezone(UTC)
            out.append(Session(day, opened, close))
            day += timedelta(days=1)
        return out

    def is_open(self, at: datetime) -> bool:
        return True


def market_clock(market: str, *, simulate: bool = False) -> _SessionClock:
    """The clock for a job's ``market`` (``XNYS`` or ``CME``); simulated mode ignores it."""
    if simulate:
        return SimulatedMarket()
    if market == "XNYS":
        return ExchangeMarket("XNYS")
    if market == "CME":
        return FuturesMarket()
    raise ValueError(f"unknown market {market!r}; expected XNYS or CME")


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("market clocks take timezone-aware datetimes")
    return at.astimezone(UTC)


def _calendar_sessions(name: str, first: date, last: date) -> list[tuple[date, datetime, datetime]]:
    calendar = _calendar(name, max(first.year, last.year))
    lo = max(pd.Timestamp(first), calendar.first_session)
    hi = min(pd.Timestamp(last), calendar.last_session)
    if lo > hi:
        return []
    frame = calendar.schedule.loc[lo:hi]
    return [
        (day.date(), opened.to_pydatetime().astimezone(UTC), closed.to_pydatetime().astimezone(UTC))
        for day, opened, closed in zip(frame.index, frame["open"], frame["close"], strict=True)
    ]


@functools.lru_cache(maxsize=8)
def _calendar(name: str, year: int) -> xcals.ExchangeCalendar:
    """A calendar spanning a few years around ``year``: the package's default span ends one
    year after today, which would make a long-running scheduler go blind."""
    return xcals.get_calendar(name, start=f"{year - 3}-01-01", end=f"{year + 2}-12-31")
