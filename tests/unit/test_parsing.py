"""IB objects → rows, planning choices and error mapping (all pure)."""

from __future__ import annotations

import math
import pickle
from datetime import UTC, date, datetime
from types import SimpleNamespace as NS

from v6ray.errors import IBRequestError
from v6ray.gateway import ib_errors, parsing, planning
from v6ray.gateway.parsing import UNSET_DOUBLE
from v6ray.requests.instruments import bar_series
from v6ray.storage.schemas import TABLES

NOW = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)


def test_bar_rows_normalize_times_and_missing_values():
    bars = [
        NS(date=datetime(2025, 1, 2, 14, 30, tzinfo=UTC), open=1.0, high=2.0, low=0.5,
           close=1.5, volume=100.0, average=1.2, barCount=7),
        NS(date=date(2025, 1, 3), open=1.0, high=2.0, low=0.5, close=1.5, volume=-1.0,
           average=math.nan, barCount=-1),
    ]
    series = {"symbol": "SPY", "bar_size": "1 day", "what_to_show": "TRADES",
              **bar_series("SPY", {"use_rth": False})}
    rows = parsing.bar_rows("r1", series, bars)
    table = parsing.to_table("market_bars", rows)
    assert table.schema == TABLES["market_bars"].schema
    assert rows[0]["timestamp"] == datetime(2025, 1, 2, 14, 30, tzinfo=UTC)
    assert rows[1]["timestamp"] == datetime(2025, 1, 3, tzinfo=UTC)
    assert rows[1]["wap"] is None and rows[0]["bar_count"] == 7
    assert rows[1]["use_rth"] is False and rows[1]["sec_type"] == "STK"


def test_bar_series_identity_tells_instruments_apart_and_is_never_null():
    spy = bar_series("SPY", {"use_rth": True})
    assert spy == {"use_rth": True, "sec_type": "STK", "exchange": "SMART", "contract_month": ""}
    assert bar_series("SPY", {}) == spy  # use_rth defaults to True, as the parameter does
    assert bar_series("SPY", {"use_rth": False})["use_rth"] is False
    assert bar_series("SPY", {"exchange": "ARCA"})["exchange"] == "ARCA"
    continuous = bar_series("ES", {})
    assert continuous == {"use_rth": True, "sec_type": "CONTFUT", "exchange": "CME",
                          "contract_month": ""}
    month = bar_series("ES", {"contract_month": "202512"})
    assert (month["sec_type"], month["contract_month"]) == ("FUT", "202512")
    assert bar_series("SPX", {})["sec_type"] == "IND"
    assert bar_series("SPY", {"contract_month": "202512"})["contract_month"] == ""  # no month
    for identity in (spy, continuous, month, bar_series("EURUSD", {"sec_type": "CASH"})):
        assert all(value is not None for value in identity.values())
    key = TABLES["market_bars"].key_columns
    assert {"use_rth", "sec_type", "exchange", "contract_month"} <= set(key)


def test_contract_columns_only_when_ib_qualified_the_contract():
    qualified = NS(conId=495512563, localSymbol="ESZ5")
    assert parsing.contract_columns(qualified) == {"con_id": 495512563, "local_symbol": "ESZ5"}
    unqualified = NS(conId=0, localSymbol="")  # a Stock on SMART is sent unqualified
    assert parsing.contract_columns(unqualified) == {"con_id": None, "local_symbol": None}


def test_utc_timestamp_accepts_ib_text_and_epoch():
    assert parsing.utc_timestamp("20250102") == datetime(2025, 1, 2, tzinfo=UTC)
    assert parsing.utc_timestamp(1735689600) == datetime(2025, 1, 1, tzinfo=UTC)
    naive = datetime(2025, 1, 2, 10, 0)
    assert parsing.utc_timestamp(naive).tzinfo is UTC


def _option_ticker(**overrides):
    contract = NS(lastTradeDateOrContractMonth="20250418", strike=500.0, right="C",
                  conId=123, tradingClass="SPY", exchange="SMART", multiplier="100")
    greeks = NS(impliedVol=0.2, delta=0.5, gamma=0.01, vega=0.3, theta=-0.05, undPrice=501.0)
    fields = dict(contract=contract, bid=1.0, ask=1.2, last=1.1, volume=10.0,
                  modelGreeks=greeks, lastGreeks=None, bidGreeks=None, askGreeks=None)
    fields.update(overrides)
    return NS(**fields)


def test_option_row_has_greeks_iv_and_underlying():
    row = parsing.option_row("r", "SPY", _option_ticker(), 500.5, NOW)
    assert row["expiry"] == date(2025, 4, 18) and row["right"] == "C"
    assert row["implied_vol"] == 0.2 and row["delta"] == 0.5 and row["theta"] == -0.05
    assert row["underlying_price"] == 500.5 and row["con_id"] == 123
    assert row["multiplier"] == 100.0
    parsing.to_table("option_snapshots", [row])


def test_option_row_without_quotes_is_null_not_garbage():
    row = parsing.option_row("r", "SPY", _option_ticker(bid=-1.0, ask=math.nan,
                             last=UNSET_DOUBLE, modelGreeks=None), None, NOW)
    assert row["bid"] is None and row["ask"] is None and row["last"] is None
    assert row["delta"] is None and row["underlying_price"] is None


def test_futures_and_position_rows():
    contract = NS(lastTradeDateOrContractMonth="20250321", conId=9, exchange="CME",
                  multiplier="50", symbol="ES", secType="FUT")
    row = parsing.futures_row("r", "ES", NS(contract=contract, bid=5000.0, ask=5000.25,
                              last=5000.0, volume=1e5), NOW)
    assert row["contract_month"] == "202503" and row["expiry"] == date(2025, 3, 21)
    positions = [NS(account="DU1", contract=contract, position=2.0, avgCost=250000.0),
                 NS(account="DU2", contract=NS(symbol="SPY", secType="STK", conId=1),
                    position=5.0, avgCost=400.0)]
    assert len(parsing.position_rows("r", positions, NOW)) == 2
    assert [r["symbol"] for r in parsing.position_rows("r", positions, NOW, symbol="ES")] == ["ES"]
    assert parsing.position_rows("r", positions, NOW, account="DU2")[0]["account"] == "DU2"


def test_snapshot_price_prefers_mid_then_last():
    assert parsing.snapshot_price(NS(bid=1.0, ask=3.0, last=9.0)) == 2.0
    assert parsing.snapshot_price(NS(bid=math.nan, ask=math.nan, last=9.0)) == 9.0


def test_choose_expiries_by_dte_and_range():
    today = date(2025, 3, 3)
    exp = ["20250307", "20250321", "20250417", "20250620", "20250228"]
    assert planning.choose_expiries(exp, today, dte=45) == ["20250417"]
    assert planning.choose_expiries(exp, today, dte=0) == ["20250307"]
    assert planning.choose_expiries(exp, today, dte_min=1, dte_max=50) == [
        "20250307", "20250321", "20250417"]


def test_choose_strikes_per_side_of_spot():
    strikes = [float(s) for s in range(90, 111)]
    assert planning.choose_strikes(strikes, 100.4, 2) == [99.0, 100.0, 101.0, 102.0]
    assert len(planning.choose_strikes(strikes, None, 3)) == 6


def test_choose_future_front_month_or_given():
    months = [("20250321", "H5"), ("20250620", "M5"), ("20241220", "Z4")]
    assert planning.choose_future(months, date(2025, 3, 3), None) == "H5"
    assert planning.choose_future(months, date(2025, 3, 3), "202506") == "M5"
    assert planning.choose_future(months, date(2025, 3, 3), "202612") is None


def test_error_mapping_keeps_code_and_message():
    err = ib_errors.ib_error(200, "No security definition has been found for the request")
    assert not err.retryable
    assert str(err) == "IB error 200: No security definition has been found for the request"
    assert ib_errors.ib_error(162, "Historical Market Data Service error message:"
                              "API historical data query cancelled: pacing violation").retryable
    assert ib_errors.ib_error(1100, "Connectivity lost").retryable
    assert ib_errors.ib_error(366, "No historical data query found").retryable
    assert not ib_errors.ib_error(354, "Requested market data is not subscribed").retryable
    assert ib_errors.timeout_error("snapshot", 5).retryable
    # IB's "no data" answer is final: asking again gets the same answer.
    no_data = ("Historical Market Data Service error message:HMDS query returned no data: "
               "ESM3@CME Trades")
    assert ib_errors.is_no_data(162, no_data) and not ib_errors.ib_error(162, no_data).retryable
    assert not ib_errors.is_no_data(162, "Historical Market Data Service error message:"
                                    "Pacing violation")
    assert not ib_errors.is_no_data(200, "HMDS query returned no data")  # only as a 162
    again = pickle.loads(pickle.dumps(err))
    assert isinstance(again, IBRequestError) and again.code == 200 and not again.retryable
