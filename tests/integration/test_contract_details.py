"""contract_details end to end: queue → IBGateway → simulator → the ``contracts`` table."""

from __future__ import annotations

import pytest

from v6ray.requests.model import Status

pytestmark = pytest.mark.timeout(180)


def test_listings_land_once_per_contract_and_a_refresh_replaces_them(harness):
    ids = harness.submit_many([
        {"request_type": "contract_details", "symbol": "ES"},
        {"request_type": "contract_details", "symbol": "SPY"},
    ])
    futures, stock = harness.wait_all(ids, timeout=120)
    assert (futures.status, stock.status) == (Status.SUCCESS, Status.SUCCESS), (
        futures.error_message, stock.error_message)

    contracts = harness.read("contracts")
    es = contracts.filter(symbol="ES")
    # Every listed month, one row each, with what a trader looks a future up for.
    assert es.height == futures.result_data["rows"] > 1
    assert set(es["sec_type"]) == {"FUT"} and es["con_id"].n_unique() == es.height
    assert es["expiry"].null_count() == 0 and (es["multiplier"] > 0).all()
    assert (es["min_tick"] > 0).all() and es["long_name"].null_count() == 0
    spy = contracts.filter(symbol="SPY")
    assert spy.height == stock.result_data["rows"] == 1  # SMART and primary: one con_id
    assert spy["primary_exchange"][0] and spy["expiry"][0] is None

    first_seen = es.select("con_id", "snapshot_time")
    again = harness.wait_all([harness.submit("contract_details", "ES")], timeout=60)[0]
    assert again.status is Status.SUCCESS
    refreshed = harness.read("contracts").filter(symbol="ES")
    assert refreshed.height == es.height  # latest wins: no second row per contract
    later = refreshed.join(first_seen, on="con_id", suffix="_before")
    assert (later["snapshot_time"] > later["snapshot_time_before"]).all()


def test_an_unknown_symbol_fails_once_with_ibs_code(harness):
    final = harness.wait_all([harness.submit("contract_details", "ZZZZ")], timeout=60)[0]
    assert final.status is Status.FAILED and "IB error 200" in final.error_message
    assert final.attempts == 1
