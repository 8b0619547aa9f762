"""A finished snapshot leaves nothing in ib_async's wrapper maps (no connection needed:
the wrapper's bookkeeping is plain Python)."""

from __future__ import annotations

import asyncio

import pytest
from ib_async import IB, Future

from v6ray.gateway.handlers.base import drop_snapshot_ticker, ib_request_maps

ES = Future("ES", "202603", "CME", conId=1)
NQ = Future("NQ", "202603", "CME", conId=2)


@pytest.fixture
def ib():
    """An unconnected IB; building one needs an event loop (an earlier test may have closed
    the main thread's)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield IB()
    asyncio.set_event_loop(None)
    loop.close()


def start(ib: IB, req_id: int, contract: Future):
    ib.wrapper.startReq(req_id, contract)
    return ib.wrapper.startTicker(req_id, contract, "snapshot")


def test_many_finished_snapshots_leave_the_maps_empty(ib):
    for req_id in range(1, 201):
        contract = ES if req_id % 2 else NQ
        ticker = start(ib, req_id, contract)
        drop_snapshot_ticker(ib, req_id, ticker)
        assert ticker.contract is contract  # the caller's ticker keeps its contract/values
    assert set(ib_request_maps(ib).values()) == {0}, ib_request_maps(ib)


def test_a_ticker_shared_with_a_live_snapshot_stays_until_that_one_ends(ib):
    first = start(ib, 1, ES)
    second = start(ib, 2, ES)
    assert first is second  # ib_async files one Ticker per contract
    drop_snapshot_ticker(ib, 1, first)
    assert ib.wrapper.reqId2Ticker == {2: second}
    assert ib.wrapper.tickers[hash(ES)] is second  # ticks of request 2 still land
    drop_snapshot_ticker(ib, 2, second)
    assert ib.wrapper.reqId2Ticker == {} and ib.wrapper.tickers == {}
