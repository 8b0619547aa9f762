"""The simulator's session calendar in America/New_York, as IB's: ``v6ray.requests.markets``.

Stocks and ETFs: regular hours 09:30-16:00, extended 04:00-20:00 (useRTH=0).
Indices and options: 09:30-16:00 whatever useRTH says.
Futures: 18:00 the evening before to 17:00 (useRTH=0), 09:30-16:00 with useRTH=1.
A session is named by its trade date. There are none on the exchange's holidays (XNYS, or
CMES for futures) and regular hours end at the early close on half days: IB has no bars
there, so a request for such a window gets "HMDS query returned no data".
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from v6ray.requests import markets
from v6ray.requests.markets import NEW_YORK, Session, SessionKind

__all__ = [
    "IB_TIMEZONE_NAME", "NEW_YORK", "Session", "SessionKind", "intraday_bars", "session_on",
    "sessions_before", "sessions_between", "trading_hours",
]

IB_TIMEZONE_NAME = "US/Eastern"  # how IB names that zone in bar dates and contract details

# Built now, while the simulator starts: building them inside a request would stall the
# event loop for seconds, and messages queued meanwhile would then arrive as one burst.
markets.load_calendars()


def session_on(kind: SessionKind, use_rth: bool, day: date) -> Session | None:
    """The session trading on ``day``, or None on weekends and holidays."""
    return markets.session_on(kind, use_rth, day)


def sessions_between(kind: SessionKind, use_rth: bool, first: date, last: date) -> list[Session]:
    """Sessions whose trade date lies in [first, last]."""
    return markets.sessions_between(kind, use_rth, first, last)


def sessions_before(kind: SessionKind, use_rth: bool, end: int, count: int) -> list[Session]:
    """The last ``count`` sessions that started before ``end`` (epoch seconds), oldest first."""
    day = datetime.fromtimestamp(end, NEW_YORK).date() + timedelta(days=1)
    out: list[Session] = []
    while len(out) < count:
        session = session_on(kind, use_rth, day)
        if session and session.start < end:
            out.append(session)
        day -= timedelta(days=1)
    return out[::-1]


def intraday_bars(session: Session, bar_seconds: int) -> list[tuple[int, int]]:
    """Bars of one session as (start, end): the first starts at the session open, the
    others on wall-clock multiples of the bar size, as IB aligns them (hourly RTH bars
    start 09:30, 10:00, 11:00, ...)."""
    local = datetime.fromtimestamp(session.start, NEW_YORK)
    since_midnight = local.hour * 3600 + local.minute * 60 + local.second
    boundary = session.start + bar_seconds - since_midnight % bar_seconds
    bars = []
    start = session.start
    while start < session.end:
        end = min(boundary, session.end)
        bars.append((start, end))
        start, boundary = end, boundary + bar_seconds
    return bars


def trading_hours(kind: SessionKind, use_rth: bool, first: date, days: int) -> str:
    """IB's tradingHours/liquidHours text for a few days: ``20250106:0930-20250106:1600;...``."""
    parts = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        session = session_on(kind, use_rth, day)
        if session is None:
            parts.append(f"{day:%Y%m%d}:CLOSED")
            continue
        start = datetime.fromtimestamp(session.start, NEW_YORK)
        end = datetime.fromtimestamp(session.end, NEW_YORK)
        parts.append(f"{start:%Y%m%d:%H%M}-{end:%Y%m%d:%H%M}")
    return ";".join(parts)
