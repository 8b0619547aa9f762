"""Submit-time validation: every bad input is an ``InvalidRequest`` naming its field."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from v6ray import constants
from v6ray.errors import InvalidRequest
from v6ray.model import (
    RESULT_TABLES,
    IBRequest,
    Priority,
    RequestType,
    Status,
    new_request,
    request_from_submission,
)
from v6ray.parameters import RULES


def field_of(call) -> str:
    with pytest.raises(InvalidRequest) as info:
        call()
    return info.value.field


# ---------------------------------------------------------------- each bad input, its field


@pytest.mark.parametrize("request_type", ["bogus", "", None, 3, ["market_bars"], "market bars"])
def test_unknown_request_type(request_type):
    assert field_of(lambda: new_request(request_type, "SPY")) == "request_type"


@pytest.mark.parametrize("symbol", ["", "   ", None, 42, "SP Y!", "$SPY", "-SPY", "A" * 33,
                                    "*", "spy;drop table"])
def test_empty_or_odd_symbol(symbol):
    assert field_of(lambda: new_request("market_bars", symbol)) == "symbol"


@pytest.mark.parametrize("priority", [0, 4, -1, 2.0, "urgent", True, None, "1"])
def test_priority_outside_one_to_three(priority):
    assert field_of(lambda: new_request("market_bars", "SPY", priority=priority)) == "priority"


@pytest.mark.parametrize(
    "rtype, parameters, field",
    [
        ("market_bars", {"colour": "red"}, "parameters.colour"),
        ("market_bars", {"bar_size": 5}, "parameters.bar_size"),
        ("market_bars", {"bar_size": "7 min"}, "parameters.bar_size"),
        ("market_bars", {"use_rth": "yes"}, "parameters.use_rth"),
        ("market_bars", {"end": "yesterday"}, "parameters.end"),
        ("option_chain", {"strikes": "ten"}, "parameters.strikes"),
        ("option_chain", {"dte": True}, "parameters.dte"),
        ("option_chain", {"dte": 30, "dte_min": 10, "dte_max": 40}, "parameters.dte"),
        ("futures_snapshot", {"contract_month": "2026-12"}, "parameters.contract_month"),
        ("position_update", {"account": "../../x"}, "parameters.account"),
    ],
)
def test_unknown_or_mistyped_parameter(rtype, parameters, field):
    symbol = "*" if rtype == "position_update" else "SPY"
    assert field_of(lambda: new_request(rtype, symbol, parameters=parameters)) == field


@pytest.mark.parametrize("parameters", ["{not json", "[1, 2]", "42", b"\xff\xfe", [("a", 1)],
                                        {"duration": object()}, {1: "x"}, 3.5])
def test_parameters_that_are_not_a_json_object(parameters):
    assert field_of(lambda: new_request("market_bars", "SPY", parameters=parameters)) \
        == "parameters"


@pytest.mark.parametrize("table", ["nope", "../ib_requests", "/etc/passwd", 5, "market_bars"])
def test_result_table_not_registered_or_not_this_types(table):
    assert field_of(lambda: new_request("futures_snapshot", "ES", result_table=table)) \
        == "result_table"


def test_oversized_payload():
    huge = {"account": "A" * (constants.MAX_PARAMETERS_BYTES + 1)}
    assert field_of(lambda: new_request("position_update", "*", parameters=huge)) == "parameters"
    text = json.dumps(huge)
    assert field_of(lambda: new_request("position_update", "*", parameters=text)) == "parameters"


@pytest.mark.parametrize(
    "item, field",
    [
        ("market_bars SPY", "request"),
        ({"symbol": "SPY"}, "request_type"),
        ({"request_type": "market_bars"}, "symbol"),
        ({"request_type": "market_bars", "symbol": "SPY", "prio": 1}, "prio"),
    ],
)
def test_submission_items(item, field):
    assert field_of(lambda: request_from_submission(item)) == field


def test_a_valid_request_is_normalized_and_coalesces_with_its_equivalents():
    a = new_request("market_bars", " spy ", priority="background",
                    parameters='{"duration": "5 D", "bar_size": "1 hours"}')
    b = request_from_submission({"request_type": "MARKET_BARS", "symbol": "SPY",
                                 "priority": 3, "parameters": {"bar_size": "1 hour"}})
    assert a.symbol == "SPY" and a.priority is Priority.BACKGROUND
    assert a.status is Status.PENDING and a.attempts == 0
    assert a.result_table == "market_bars"
    assert a.parameters == b.parameters
    assert a.dedup_key == b.dedup_key
    assert a.request_id != b.request_id


# ---------------------------------------------------------------- garbage never gets through

json_leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
garbage = st.one_of(
    json_leaves,
    st.binary(max_size=20),
    st.lists(json_leaves, max_size=4),
    st.dictionaries(st.text(max_size=10), json_leaves, max_size=4),
    st.builds(object),
)
request_types = st.one_of(st.sampled_from([t.value for t in RequestType]), garbage)
symbols = st.one_of(st.sampled_from(["SPY", "es", "*", "BRK.B", "ES 2612"]), garbage)
priorities = st.one_of(st.sampled_from([1, 2, 3, "NORMAL"]), garbage)
parameter_keys = st.sampled_from(sorted({k for rules in RULES.values() for k in rules}))
parameter_values = st.one_of(
    json_leaves,
    st.sampled_from(["5 D", "1 hour", "1 min", "TRADES", "BID_ASK", "202612", "C", "both",
                     "2026-11-27T21:00:00Z", 10, 45, 0, True]),
)
parameters = st.one_of(
    garbage,
    st.dictionaries(parameter_keys, parameter_values, max_size=4),
    st.dictionaries(parameter_keys, parameter_values, max_size=3).map(json.dumps),
)
tables = st.one_of(st.none(), st.sampled_from(sorted(set(RESULT_TABLES.values()))), garbage)
_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9.\-/ ]*$")


def assert_well_formed(request: IBRequest) -> None:
    assert isinstance(request.request_type, RequestType)
    assert request.symbol == "*" and request.request_type is RequestType.POSITION_UPDATE \
        or _SYMBOL.match(request.symbol)
    assert len(request.symbol) <= constants.MAX_SYMBOL_LENGTH
    assert isinstance(request.priority, Priority)
    assert set(request.parameters) <= set(RULES[request.request_type])
    assert len(json.dumps(request.parameters).encode()) <= constants.MAX_PARAMETERS_BYTES
    assert request.result_table == RESULT_TABLES[request.request_type]
    assert request.status is Status.PENDING


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request_types, symbols, priorities, parameters, tables)
def test_new_request_raises_only_invalid_request(rtype, symbol, priority, params, table):
    try:
        request = new_request(rtype, symbol, priority=priority, parameters=params,
                              result_table=table)
    except InvalidRequest as exc:
        assert exc.field and exc.reason
        assert exc.field.split(".")[0] in {"request_type", "symbol", "priority", "parameters",
                                           "result_table"}
        return
    assert_well_formed(request)


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    garbage,
    st.fixed_dictionaries(
        {"request_type": request_types, "symbol": symbols},
        optional={"priority": priorities, "parameters": parameters, "result_table": tables,
                  "extra": garbage},
    ),
))
def test_request_from_submission_raises_only_invalid_request(item):
    try:
        request = request_from_submission(item)
    except InvalidRequest as exc:
        assert exc.field
        return
    assert_well_formed(request)
