"""Each injected fault, as the ib_async client sees it."""

from __future__ import annotations

import asyncio
import time

import pytest
from ib_async import IB, RequestError, Stock, util

from v6ray.sim.testing import running_simulator

END = "20250110 16:00:00 US/Eastern"


def pairs(errors: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    return [(req_id, code) for req_id, code, _ in errors]


def pause(seconds: float) -> None:
    util.getLoop().run_until_complete(asyncio.sleep(seconds))


@pytest.fixture
def sim():
    with running_simulator(time_scale=0.1) as handle:
        yield handle




def test_dropped_connections_fire_disconnected_event(sim, connect):
    ib, _ = connect(sim)
    dropped = []
    ib.disconnectedEvent += lambda: dropped.append(True)
    assert sim.drop_connections() == 1
    pause(0.2)
    assert dropped and not ib.isConnected()
    assert sim.stats()["connections"]["active"] == 0


def test_refused_connections_then_back(sim, connect):
    sim.refuse_connections(0.5)
    with pytest.raises(ConnectionRefusedError):
        IB().connect("127.0.0.1", sim.port, clientId=1, timeout=2)
    pause(0.6)
    ib, _ = connect(sim)
    assert ib.isConnected()


def test_client_id_in_use_gets_326_and_is_refused(sim, connect):
    connect(sim, client_id=5)
    second = IB()
    errors = []
    second.errorEvent += lambda req_id, code, text, contract: errors.append((req_id, code))
    # TWS closes the socket before the API is ready: the sync connect ends with whatever
    # ib_async makes of that (a cancelled run, or a timeout waiting for apiStart).
    with pytest.raises((ConnectionError, TimeoutError, asyncio.CancelledError)):
        second.connect("127.0.0.1", sim.port, clientId=5, timeout=1)
    assert (-1, 326) in errors
    stats = sim.stats()
    assert stats["connections"]["refused"] == 1 and stats["connections"]["active"] == 1


def test_connectivity_lost_holds_answers_until_restored(sim, connect):
    ib, errors = connect(sim)
    [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    sim.connectivity_lost()
    pause(0.1)
    assert (-1, 1100) in pairs(errors)
    ticker = ib.reqMktData(spy, snapshot=True)
    pause(0.2)
    assert ticker.last != ticker.last  # NaN: held while connectivity is down
    sim.connectivity_restored(data_lost=False)
    pause(0.2)
    assert (-1, 1102) in pairs(errors) and ticker.last > 0


def test_connectivity_restored_with_data_lost_drops_streams(sim, connect):
    ib, errors = connect(sim)
    [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    ib.reqMktData(spy)
    pause(0.1)
    assert sim.stats()["market_data_lines"]["in_use"] == 1
    sim.connectivity_lost()
    sim.connectivity_restored(data_lost=True)
    pause(0.1)
    assert [code for _, code, _ in errors if code > 1000] == [2104, 2106, 2158, 1100, 1101]
    assert sim.stats()["market_data_lines"]["in_use"] == 0


def test_response_delay(sim, connect):
    ib, _ = connect(sim)
    [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    sim.set_response_delay(0.4)
    started = time.monotonic()
    [ticker] = ib.reqTickers(spy)
    assert time.monotonic() - started >= 0.4 and ticker.last > 0
    sim.set_response_delay(0)


def test_injected_errors_answer_the_next_n_matching_requests(sim, connect):
    ib, errors = connect(sim)
    ib.RaiseRequestErrors = True
    spy, qqq = ib.qualifyContracts(Stock("SPY", "SMART", "USD"), Stock("QQQ", "SMART", "USD"))
    sim.inject_error("historical", 366, "No historical data query found for ticker id", count=2,
                     symbol="SPY")
    assert ib.reqHistoricalData(qqq, END, "1 D", "1 hour", "TRADES", True)  # other symbol
    for _ in range(2):
        with pytest.raises(RequestError) as caught:
            ib.reqHistoricalData(spy, END, "1 D", "1 hour", "TRADES", True)
        assert caught.value.code == 366
    assert ib.reqHistoricalData(spy, END, "2 D", "1 hour", "TRADES", True)
    sim.inject_error("contract_details", 200, "No security definition has been found")
    ib.RaiseRequestErrors = False
    assert ib.qualifyContracts(Stock("IWM", "SMART", "USD")) == [None]
    assert sim.stats()["injected_errors"] == {"contract_details": 1, "historical": 2}
    with pytest.raises(ValueError):
        sim.inject_error("orders", 1, "x")


def test_nightly_restart_drops_refuses_then_accepts(sim, connect):
    ib, _ = connect(sim)
    dropped = []
    ib.disconnectedEvent += lambda: dropped.append(True)
    sim.nightly_restart(0.5)
    pause(0.1)
    assert dropped
    with pytest.raises(ConnectionRefusedError):
        IB().connect("127.0.0.1", sim.port, clientId=1, timeout=2)
    pause(0.5)
    again, _ = connect(sim)
    assert again.isConnected()
