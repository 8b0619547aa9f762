"""Market clocks: NYSE holidays and half days, CME's weekly session and daily break, simulation."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from v6ray.scheduler.calendar import SimulatedMarket, market_clock


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


XNYS = market_clock("XNYS")
CME = market_clock("CME")


@pytest.mark.parametrize(
    ("at", "is_open"),
    [
        (utc(2026, 11, 24, 14, 29), False),  # 09:29 ET
        (utc(2026, 11, 24, 14, 30), True),  # 09:30 ET
        (utc(2026, 11, 24, 20, 59), True),
        (utc(2026, 11, 24, 21, 0), False),  # 16:00 ET
        (utc(2026, 11, 26, 16, 0), False),  # Thanksgiving
        (utc(2026, 11, 27, 17, 59), True),  # half day, 12:59 ET
        (utc(2026, 11, 27, 18, 0), False),  # half day closes 13:00 ET
        (utc(2026, 11, 28, 16, 0), False),  # Saturday
        (utc(2026, 12, 25, 16, 0), False),  # Christmas
    ],
)
def test_nyse_hours(at, is_open):
    assert XNYS.is_open(at) is is_open


def test_nyse_closes_and_trading_days():
    assert XNYS.last_close(utc(2026, 11, 27, 18, 30)).close == utc(2026, 11, 27, 18, 0)
    assert XNYS.last_close(utc(2026, 11, 26, 22, 0)).trade_date == date(2026, 11, 25)
    assert XNYS.next_close(utc(2026, 11, 25, 22, 0)).close == utc(2026, 11, 27, 18, 0)
    assert XNYS.next_open(utc(2026, 12, 24, 20, 0)) == utc(2026, 12, 28, 14, 30)
    assert not XNYS.is_trading_day(date(2026, 12, 25))
    assert XNYS.is_trading_day(date(2026, 12, 24))


@pytest.mark.parametrize(
    ("at", "is_open"),
    [
        (utc(2026, 11, 29, 22, 30), False),  # Sunday 17:30 ET
        (utc(2026, 11, 29, 23, 0), True),  # Sunday 18:00 ET: the week opens
        (utc(2026, 11, 30, 21, 59), True),  # Monday 16:59 ET
        (utc(2026, 11, 30, 22, 30), False),  # daily break 17:00-18:00 ET
        (utc(2026, 11, 30, 23, 0), True),  # 18:00 ET: Tuesday's session
        (utc(2026, 12, 4, 22, 0), False),  # Friday 17:00 ET: closed for the weekend
        (utc(2026, 12, 5, 15, 0), False),  # Saturday
        (utc(2026, 11, 26, 17, 0), True),  # Thanksgiving morning trades (holiday schedule)
        (utc(2026, 11, 26, 18, 30), False),  # ... and halts early
        (utc(2026, 12, 25, 15, 0), False),  # Christmas
    ],
)
def test_cme_equity_futures_hours(at, is_open):
    assert CME.is_open(at) is is_open


def test_simulated_market_is_always_open_and_closes_daily():
    sim = SimulatedMarket()
    saturday_night = utc(2026, 11, 29, 4, 0)  # Saturday 23:00 ET
    assert sim.is_open(saturday_night)
    assert sim.is_open(utc(2026, 12, 25, 12, 0))
    assert sim.last_close(saturday_night).close == utc(2026, 11, 28, 21, 0)
    assert market_clock("XNYS", simulate=True).is_open(saturday_night)


def test_unknown_market_and_naive_time_raise():
    with pytest.raises(ValueError):
        market_clock("LSE")
    with pytest.raises(ValueError):
        XNYS.is_open(datetime(2026, 11, 24, 15, 0))
