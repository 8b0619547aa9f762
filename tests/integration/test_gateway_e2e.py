"""End to end through the real stack: queue → IBGateway (ib_async) → simulator → Delta."""

from __future__ import annotations

import pytest

from v6ray.requests.model import Status

pytestmark = pytest.mark.timeout(180)

# A Thursday afternoon in New York: the simulator has bars for it whatever today is.
END = "2025-03-06T20:00:00Z"


def test_each_request_type_lands_in_its_table(harness):
    ids = harness.submit_many([
        {"request_type": "option_chain", "symbol": "SPY",
         "parameters": {"dte": 30, "strikes": 3}},
        {"request_type": "futures_snapshot", "symbol": "ES"},
        {"request_type": "market_bars", "symbol": "SPY",
         "parameters": {"duration": "2 D", "bar_size": "1 hour", "end": END}},
        {"request_type": "position_update", "symbol": "*"},
    ])
    finals = harness.wait_all(ids, timeout=120)
    assert [f.status for f in finals] == [Status.SUCCESS] * 4, [f.error_message for f in finals]
    chain, future, bars, positions = finals

    options = harness.read("option_snapshots").filter(request_id=chain.request_id)
    assert options.height == 12 == chain.result_data["rows"]  # 3 strikes x 2 sides x C/P
    assert chain.result_data["table"] == "option_snapshots"
    assert chain.result_data["delta_version"] >= 1
    assert options["con_id"].n_unique() == 12
    assert (options["implied_vol"] > 0).all() and (options["underlying_price"] > 0).all()
    calls = options.filter(right="C")
    assert ((calls["delta"] > 0) & (calls["delta"] < 1)).all()

    fut = harness.read("futures_snapshots").filter(request_id=future.request_id)
    assert fut.height == 1 and fut["bid"][0] <= fut["ask"][0]
    assert len(fut["contract_month"][0]) == 6

    bar_rows = harness.read("market_bars").filter(request_id=bars.request_id)
    assert bar_rows.height == bars.result_data["rows"] > 0
    assert ((bar_rows["low"] <= bar_rows["high"]) & (bar_rows["volume"] >= 0)).all()

    pos = harness.read("positions").filter(request_id=positions.request_id)
    assert pos.height == positions.result_data["rows"] > 0

    stats = harness.gateway_stats()
    assert stats["state"] == "connected" and stats["circuit"] == "closed"
    assert stats["counters"]["completed"] >= 4
    assert harness.sim.stats()["violations"] == {}


def test_unknown_symbol_fails_once_with_ib_code(harness):
    rid = harness.submit("futures_snapshot", "ZZZ")
    final = harness.wait_all([rid], timeout=60)[0]
    assert final.status is Status.FAILED
    assert "IB error 200" in final.error_message
    assert final.attempts == 1  # final error: not retried


def test_long_bar_request_is_split_into_chunks(harness):
    rid = harness.submit("market_bars", "ES", parameters={
        "duration": "3 D", "bar_size": "1 min", "end": END, "use_rth": False})
    final = harness.wait_all([rid], timeout=60)[0]
    assert final.status is Status.SUCCESS, final.error_message
    bars = harness.read("market_bars").filter(request_id=rid)
    assert bars["timestamp"].n_unique() == bars.height > 1000  # > one chunk of 1 D
    assert harness.gateway_stats()["pacing"]["historical_sent"] == 3


def test_finished_snapshots_leave_nothing_in_ib_asyncs_request_maps(harness):
    """ib_async files every snapshot's Ticker by request id until a disconnect; the
    gateway drops it once the snapshot is over, so the maps follow what is in flight,
    not how many snapshots were served."""

    def one_round() -> None:
        ids = harness.submit_many([
            {"request_type": "futures_snapshot", "symbol": root} for root in ("ES", "NQ", "RTY")
        ] + [{"request_type": "option_chain", "symbol": "SPY",
              "parameters": {"dte": 30, "strikes": 2}}])
        finals = harness.wait_all(ids, timeout=120)
        assert {f.status for f in finals} == {Status.SUCCESS}, [f.error_message for f in finals]

    one_round()
    after_one = harness.gateway_stats()["ib_request_maps"]
    for _ in range(4):  # each round: 3 futures + 1 underlying + 8 option snapshots
        one_round()
    after_five = harness.gateway_stats()["ib_request_maps"]
    assert after_five == after_one, (after_one, after_five)
    assert after_five["req_id_to_ticker"] == after_five["tickers"] == 0, after_five
    assert after_five["ticker_to_req_id"] == after_five["futures"] == 0, after_five
