"""The simulated market: determinism, consistency across instruments, Black-Scholes."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import numpy as np
import pytest

from v6ray.pacing import ib_limits
from v6ray.sim import blackscholes
from v6ray.sim.calendar import NEW_YORK, SessionKind, intraday_bars, session_on
from v6ray.sim.historical import bar_intervals, parse_end
from v6ray.sim.market import Market, expiry_epoch
from v6ray.sim.prices import EPOCH, YEAR_SECONDS, PricePaths
from v6ray.sim.protocol import ContractQuery, FrameReader, encode

NOW = datetime(2025, 1, 10, 15, 0, tzinfo=NEW_YORK).timestamp()
END = int(datetime(2025, 1, 10, 16, 0, tzinfo=NEW_YORK).timestamp())


def q(**fields) -> ContractQuery:
    base = dict(con_id=0, symbol="", sec_type="", last_trade="", strike=0.0, right="",
                multiplier="", exchange="", primary_exchange="", currency="", local_symbol="",
                trading_class="")
    return ContractQuery(**{**base, **fields})


def one(market: Market, **fields):
    [found] = market.book.resolve(q(**fields))
    return found


def test_paths_are_a_function_of_seed_root_and_index():
    a, b = PricePaths(1), PricePaths(1)
    whole = a.minutes("SPX", 0.16, 13_000_000, 13_003_000)
    part = b.minutes("SPX", 0.16, 13_001_000, 13_002_000)
    assert np.array_equal(whole[1000:2001], part)
    seconds = a.seconds("SPX", 0.16, 780_000_000, 780_000_600)
    assert seconds[0] == a.minutes("SPX", 0.16, 13_000_000, 13_000_000)[0]
    assert not np.array_equal(whole, PricePaths(2).minutes("SPX", 0.16, 13_000_000, 13_003_000))


def test_same_bars_in_one_chunk_and_in_overlapping_chunks():
    market = Market(3)
    spy = one(market, symbol="SPY", sec_type="STK", exchange="SMART")
    whole = bar_intervals(spy, "5 mins", ib_limits.parse_duration("2 D"), END, True)
    first = bar_intervals(spy, "5 mins", ib_limits.parse_duration("1 D"), END - 86_400, True)
    second = bar_intervals(spy, "5 mins", ib_limits.parse_duration("1 D"), END, True)
    assert len(whole) == 2 * 78 and whole == first + second

    def ohlc(intervals):
        return market.bars(spy, [(s, e) for _, s, e in intervals], "TRADES")

    assert ohlc(whole) == ohlc(first) + ohlc(second)
    assert ohlc(whole[40:120]) == ohlc(whole)[40:120]


def test_instruments_are_priced_off_one_walk():
    market = Market(5)
    spx = market.mid(one(market, symbol="SPX", sec_type="IND"), NOW)
    spy = market.mid(one(market, symbol="SPY", sec_type="STK", exchange="SMART"), NOW)
    rut = market.mid(one(market, symbol="RUT", sec_type="IND"), NOW)
    iwm = market.mid(one(market, symbol="IWM", sec_type="STK", exchange="SMART"), NOW)
    assert spx == pytest.approx(10 * spy) and rut == pytest.approx(10 * iwm)
    es = market.book.futures("ES")[0]
    years = (expiry_epoch(es) - NOW) / YEAR_SECONDS
    assert market.mid(es, NOW) / spx == pytest.approx(math.exp(es.carry * years))  # carry


def test_ambiguity_and_unknown_contracts_resolve_as_ib_does():
    market = Market(0)
    assert market.book.resolve(q(symbol="NOPE", sec_type="STK", exchange="SMART")) == []
    assert len(market.book.resolve(q(symbol="ES", sec_type="FUT", exchange="CME"))) == 8
    front = market.book.futures("ES")[0]
    assert one(market, symbol="ES", sec_type="CONTFUT").con_id == front.con_id
    assert len(market.book.resolve(q(symbol="AAPL", sec_type="STK"))) == 2  # SMART + NASDAQ
    chains = market.book.option_chains("SPX", 416904)
    assert {cls.trading_class for _, cls, _ in chains} == {"SPX", "SPXW"}
    assert "SMART" in {exchange for exchange, _, _ in chains}


def test_bar_grid_follows_the_session_calendar():
    monday = date(2025, 1, 6)
    rth = session_on(SessionKind.EQUITY, True, monday)
    hours = intraday_bars(rth, 3600)
    assert len(hours) == 7
    assert datetime.fromtimestamp(hours[1][0], NEW_YORK).strftime("%H:%M") == "10:00"
    assert len(intraday_bars(session_on(SessionKind.EQUITY, False, monday), 300)) == 192
    assert len(intraday_bars(session_on(SessionKind.FUTURE, False, monday), 3600)) == 23
    assert session_on(SessionKind.EQUITY, True, date(2025, 1, 4)) is None  # Saturday


def test_end_date_formats():
    assert parse_end("20250110 16:00:00 US/Eastern", 0) == END
    assert parse_end("20250110 21:00:00 UTC", 0) == END
    assert parse_end("20250110-21:00:00", 0) == END
    assert parse_end("", 123.9) == 123
    with pytest.raises(ValueError):
        parse_end("10/01/2025", 0)


def test_black_scholes_put_call_parity_and_greeks():
    s, k, t, vol, qy, r = 100.0, 105.0, 0.5, 0.25, 0.01, blackscholes.RISK_FREE_RATE
    call = blackscholes.greeks("C", s, k, t, vol, qy)
    put = blackscholes.greeks("P", s, k, t, vol, qy)
    assert call.price - put.price == pytest.approx(s * math.exp(-qy * t) - k * math.exp(-r * t))
    bump = blackscholes.greeks("C", s + 0.01, k, t, vol, qy).price
    assert (bump - call.price) / 0.01 == pytest.approx(call.delta, rel=1e-3)
    vol_bump = blackscholes.greeks("C", s, k, t, vol + 0.01, qy).price
    assert vol_bump - call.price == pytest.approx(call.vega, rel=1e-2)  # vega per vol point
    assert call.theta < 0 and put.gamma == pytest.approx(call.gamma)
    vector = blackscholes.prices("C", np.array([s]), k, np.array([t]), np.array([vol]), qy)
    assert vector[0] == pytest.approx(call.price, abs=1e-4)  # A&S cdf approximation


def test_frames_round_trip():
    reader = FrameReader()
    data = encode(1, "SPY", 1.5, True, None) + encode(2)
    assert reader.feed(data[:7]) == []
    assert reader.feed(data[7:]) == [["1", "SPY", "1.5", "1", ""], ["2"]]


def test_epoch_is_utc_midnight():
    assert datetime.fromtimestamp(EPOCH, UTC) == datetime(2000, 1, 1, tzinfo=UTC)
