"""contract_details: its parameters, its query to IB, its rows, its daily scheduler job."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from ib_async import Contract, ContractDetails

from v6ray.errors import InvalidRequest
from v6ray.gateway.handlers.contract_details import contract_row, query
from v6ray.requests.model import new_request
from v6ray.scheduler.jobs import load_config

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_parameters_are_normalized_and_default_to_usd():
    request = new_request("contract_details", "es", parameters={"sec_type": "fut",
                                                                "expiry": 202612})
    assert request.result_table == "contracts"
    assert request.parameters == {"sec_type": "FUT", "currency": "USD", "expiry": "202612"}
    assert request.cost.lines == 0 and request.cost.historical == 0


@pytest.mark.parametrize(
    ("parameters", "field", "reason"),
    [
        ({"sec_type": "BOND"}, "parameters.sec_type", "must be one of"),
        ({"currency": "dollars"}, "parameters.currency", "three-letter"),
        ({"expiry": "2026-12"}, "parameters.expiry", "YYYYMM or YYYYMMDD"),
        ({"expiry": "20261341"}, "parameters.expiry", "is not a date"),
        ({"sec_type": "OPT"}, "parameters.expiry", "required with sec_type OPT"),
        ({"strike": 400}, "parameters.strike", "unknown parameter"),
    ],
)
def test_bad_parameters_name_their_field(parameters, field, reason):
    with pytest.raises(InvalidRequest, match=reason) as caught:
        new_request("contract_details", "SPY", parameters=parameters)
    assert caught.value.field == field


def test_a_future_root_asks_for_every_listed_month_and_a_stock_for_smart():
    es = query("ES", {"currency": "USD"})
    assert (es.secType, es.exchange, es.lastTradeDateOrContractMonth) == ("FUT", "CME", "")
    continuous = query("ES", {"sec_type": "CONTFUT", "currency": "USD"})
    assert continuous.secType == "CONTFUT"
    spy = query("SPY", {"currency": "USD"})
    assert (spy.secType, spy.exchange, spy.currency) == ("STK", "SMART", "USD")
    options = query("SPY", {"sec_type": "OPT", "expiry": "20261218", "currency": "USD"})
    assert (options.secType, options.lastTradeDateOrContractMonth) == ("OPT", "20261218")


def test_a_row_holds_the_listing_and_leaves_what_ib_did_not_say_null():
    future = ContractDetails(
        contract=Contract(conId=495512563, symbol="ES", secType="FUT", exchange="CME",
                          currency="USD", localSymbol="ESZ6", tradingClass="ES",
                          multiplier="50", lastTradeDateOrContractMonth="20261218"),
        minTick=0.25, longName="E-mini S&P 500",
    )
    row = contract_row(future, NOW)
    assert row == {
        "con_id": 495512563, "symbol": "ES", "sec_type": "FUT", "exchange": "CME",
        "primary_exchange": None, "currency": "USD", "local_symbol": "ESZ6",
        "trading_class": "ES", "multiplier": 50.0, "expiry": date(2026, 12, 18),
        "strike": None, "right": None, "min_tick": 0.25, "long_name": "E-mini S&P 500",
        "snapshot_time": NOW,
    }
    stock = contract_row(ContractDetails(contract=Contract(
        conId=756733, symbol="SPY", secType="STK", exchange="SMART", primaryExchange="ARCA",
        currency="USD")), NOW)
    assert (stock["primary_exchange"], stock["multiplier"], stock["expiry"]) == ("ARCA", None, None)


def test_the_scheduler_refreshes_the_contracts_of_its_symbols_once_a_trading_day():
    job = {j.name: j for j in load_config().jobs}["contracts"]
    assert job.type == "contract_details" and job.is_daily and job.at is not None
    collected = {s for j in load_config().jobs if j.name != "contracts" for s in j.symbols}
    assert set(job.symbols) == collected - {"*"}
