"""The real ib_async client against the simulator: connect, reference data, market data,
historical bars, positions. No Ray."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from ib_async import IB, ContFuture, Contract, Future, Index, Option, Stock

from v6ray.sim.testing import running_simulator

END = "20250110 16:00:00 US/Eastern"  # a Friday close: bar counts are fixed


@pytest.fixture
def sim():
    # time_scale 0.2 keeps latencies short; the limits stay IB's, in scaled windows.
    with running_simulator(market_data_lines=300, max_messages_per_second=5_000,
                           time_scale=0.2) as handle:
        yield handle


@pytest.fixture
def ib(sim):
    client = IB()
    client.connect("127.0.0.1", sim.port, clientId=1, readonly=True, timeout=10)
    yield client
    client.disconnect()


def test_connect_completes_without_errors(sim, caplog):
    caplog.set_level(logging.INFO, logger="ib_async")
    for readonly in (True, False):
        client = IB()
        client.connect("127.0.0.1", sim.port, clientId=3, readonly=readonly, timeout=5)
        try:
            assert client.managedAccounts() == ["DU1234567"]
            assert client.isConnected()
        finally:
            client.disconnect()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert sim.stats()["connections"]["total"] == 2


def test_qualify_stock_index_future_and_option(ib):
    spy, spx, es = ib.qualifyContracts(Stock("SPY", "SMART", "USD"), Index("SPX", "CBOE", "USD"),
                                       ContFuture("ES", "CME"))
    assert (spy.conId, spx.conId) == (756733, 416904)
    assert es.conId and es.lastTradeDateOrContractMonth
    month = es.lastTradeDateOrContractMonth[:6]
    [future] = ib.qualifyContracts(Future("ES", month, "CME"))
    assert future.conId == es.conId and future.multiplier == "50"
    chain = next(c for c in ib.reqSecDefOptParams("SPY", "", "STK", spy.conId)
                 if c.exchange == "SMART")
    strike = min(chain.strikes, key=lambda k: abs(k - 600))
    expiry = sorted(chain.expirations)[3]
    [option] = ib.qualifyContracts(Option("SPY", expiry, strike, "C", "SMART"))
    assert option.conId and option.localSymbol.startswith("SPY ")


def test_futures_without_month_are_ambiguous_and_unknown_symbols_get_200(ib):
    details = ib.reqContractDetails(Future("ES", exchange="CME"))
    assert len(details) == 8
    errors = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append(code)
    assert ib.qualifyContracts(Stock("NOSUCH", "SMART", "USD")) == [None]
    assert 200 in errors


def test_option_chain_has_spx_monthlies_and_spxw_weeklies(ib):
    chains = ib.reqSecDefOptParams("SPX", "", "IND", 416904)
    classes = {(c.exchange, c.tradingClass) for c in chains}
    assert {("SMART", "SPX"), ("SMART", "SPXW"), ("CBOE", "SPXW")} <= classes
    spxw = next(c for c in chains if c.tradingClass == "SPXW")
    spx = next(c for c in chains if c.tradingClass == "SPX")
    assert len(spxw.expirations) > len(spx.expirations) >= 12
    assert set(spx.expirations) <= set(spxw.expirations)  # SPXW also lists the PM monthlies
    assert len(spx.strikes) > 100


def test_tickers_for_hundreds_of_options_carry_greeks(ib, sim):
    ib.client.MaxRequests = 0  # the simulator's own limit is raised in this fixture
    [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    chain = next(c for c in ib.reqSecDefOptParams("SPY", "", "STK", spy.conId)
                 if c.exchange == "SMART")
    expiry = sorted(chain.expirations)[5]
    details = ib.reqContractDetails(Option("SPY", expiry, exchange="SMART"))
    options = [d.contract for d in details][:220]
    assert len(options) == 220
    tickers = ib.reqTickers(*options)
    assert len(tickers) == 220
    for ticker in tickers:
        greeks = ticker.modelGreeks
        assert greeks is not None and ticker.bidGreeks is not None
        assert 0 < greeks.impliedVol < 3 and -1 <= greeks.delta <= 1
        assert greeks.undPrice > 0 and ticker.ask >= ticker.bid
    for ticker in tickers:  # in the money calls and out of the money puts: |delta| > 0.5
        greeks, contract = ticker.modelGreeks, ticker.contract
        in_the_money = contract.strike < greeks.undPrice * 0.98
        out_of_money = contract.strike > greeks.undPrice * 1.02
        if contract.right == "C" and (in_the_money or out_of_money):
            assert (greeks.delta > 0.5) == in_the_money
        elif in_the_money or out_of_money:
            assert (greeks.delta < -0.5) == out_of_money
    stats = sim.stats()
    assert stats["market_data_lines"]["in_use"] == 0
    assert stats["violations"] == {}


def test_streaming_quotes_update_and_cancel_frees_the_line(ib, sim):
    [es] = ib.qualifyContracts(ContFuture("ES", "CME"))
    ticker = ib.reqMktData(es)
    ib.sleep(0.7)
    assert ticker.bid > 0 and ticker.last > 0
    assert sim.stats()["market_data_lines"]["in_use"] == 1
    ib.cancelMktData(es)
    ib.sleep(0.1)
    assert sim.stats()["market_data_lines"]["in_use"] == 0


@pytest.mark.parametrize(
    ("duration", "bar_size", "use_rth", "count", "first"),
    [
        ("1 D", "1 hour", True, 7, "09:30"),
        ("2 D", "30 mins", True, 26, "09:30"),
        ("1 D", "5 mins", False, 144, "04:00"),  # extended hours, up to the 16:00 end
        ("1800 S", "1 secs", True, 1800, "15:30"),
        ("1 W", "1 day", True, 5, None),
    ],
)
def test_historical_bars_have_ib_counts_and_timestamps(ib, duration, bar_size, use_rth, count,
                                                       first):
    [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    bars = ib.reqHistoricalData(spy, END, duration, bar_size, "TRADES", use_rth, timeout=30)
    assert len(bars) == count
    if first is None:
        assert [b.date.strftime("%Y%m%d") for b in bars] == [
            "20250106", "20250107", "20250108", "20250109", "20250110"]
    else:
        assert bars[0].date.strftime("%H:%M") == first
        assert bars[-1].date < bars[-1].date.replace(hour=16, minute=0)
        assert bars[-1].date.strftime("%Y%m%d") == "20250110"
    for bar in bars:
        assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
        assert bar.volume > 0


def test_futures_bars_run_nearly_all_day(ib):
    [es] = ib.qualifyContracts(ContFuture("ES", "CME"))
    # A fixed end (a Wednesday's CME close): "" would mean now, and a session that has only
    # just begun has fewer bars.
    end = "20250108 17:00:00 US/Central"
    bars = ib.reqHistoricalData(es, end, "1 D", "1 hour", "MIDPOINT", False, formatDate=2)
    assert len(bars) == 23
    assert all(b.volume == -1 for b in bars)


def test_head_timestamp_matching_symbols_and_positions(ib):
    [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    head = ib.reqHeadTimeStamp(spy, "TRADES", True, 1)
    assert isinstance(head, datetime) and head.year == 2000
    found = ib.reqMatchingSymbols("SP")
    assert {"SPY", "SPX"} <= {d.contract.symbol for d in found}
    positions = ib.positions()
    assert {p.contract.secType for p in positions} == {"STK", "OPT", "FUT"}
    assert all(p.account == "DU1234567" for p in positions)
    # every position is a contract the simulator serves
    assert all(ib.reqContractDetails(Contract(conId=p.contract.conId)) for p in positions)


def _bars(port: int, contract: Contract, end: str, duration: str, bar_size: str):
    client = IB()
    client.connect("127.0.0.1", port, clientId=9, readonly=True, timeout=10)
    try:
        [qualified] = client.qualifyContracts(contract)
        bars = client.reqHistoricalData(qualified, end, duration, bar_size, "TRADES", True)
        return [(b.date, b.open, b.high, b.low, b.close, b.volume) for b in bars]
    finally:
        client.disconnect()


def test_same_seed_same_data_other_seed_other_data():
    spy = Stock("SPY", "SMART", "USD")
    runs = []
    for seed in (1, 1, 2):
        with running_simulator(seed=seed) as handle:
            runs.append(_bars(handle.port, spy, END, "1 D", "5 mins"))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert [r[0] for r in runs[0]] == [r[0] for r in runs[2]]  # same grid, other prices


def test_one_chunk_equals_overlapping_chunks(sim):
    qqq = Stock("QQQ", "SMART", "USD")
    whole = _bars(sim.port, qqq, "20250110 12:00:00 US/Eastern", "3600 S", "5 secs")
    early = _bars(sim.port, qqq, "20250110 11:40:00 US/Eastern", "2400 S", "5 secs")
    late = _bars(sim.port, qqq, "20250110 12:00:00 US/Eastern", "1800 S", "5 secs")
    assert len(whole) == 720
    assert early == whole[:480] and late == whole[-360:]
    assert sim.stats()["violations"] == {}
