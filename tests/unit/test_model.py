"""Submit-time validation: every bad input is an ``InvalidRequest`` naming its field."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from v6ray import constants
from v6ray.errors import InvalidRequest
from v6ray.pacing import ib_limits
from v6ray.requests.model import (
    MAX_SUBMIT_MANY,
    RESULT_TABLES,
    IBRequest,
    Priority,
    RequestType,
    Status,
    new_request,
    request_from_submission,
    requests_from_submissions,
)
from v6ray.requests.registry import SPECS
from v6ray.requests.rules import MAX_BAR_CHUNKS

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


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


# ---------------------------------------------------------------- accepted before, but wrong


def reason_of(call) -> tuple[str, str]:
    with pytest.raises(InvalidRequest) as info:
        call()
    return info.value.field, info.value.reason


ONE_SEC_MAX = ib_limits.max_duration_seconds("1 secs")  # IB caps 1-second bars hard


@pytest.mark.parametrize(
    "rtype, symbol, parameters, field, reason",
    [
        # raised OverflowError (an offset carries the stamp out of datetime's range)
        ("market_bars", "SPY", {"end": "0001-01-01T00:00:00+01:00"}, "parameters.end",
         "ISO datetime"),
        ("market_bars", "SPY", {"end": "9999-12-31T23:00:00-05:00"}, "parameters.end",
         "ISO datetime"),
        ("market_bars", "SPY", {"end": "2026-12-03T12:00:01Z"}, "parameters.end",
         "more than a day in the future"),
        ("market_bars", "SPY", {"end": "1979-12-31T23:59:59Z"}, "parameters.end", "before 1980"),
        ("market_bars", "SPY", {"what_to_show": "ADJUSTED_LAST", "end": "2026-11-27T21:00:00Z"},
         "parameters.end", "ADJUSTED_LAST"),
        ("market_bars", "ES", {"sec_type": "FUT"}, "parameters.contract_month",
         "required with sec_type FUT"),
        ("market_bars", "SPY", {"bar_size": "1 secs", "duration": f"{51 * ONE_SEC_MAX} S"},
         "parameters.duration", f"needs 51 IB requests (limit {MAX_BAR_CHUNKS})"),
        ("market_bars", "SPY", {"bar_size": "1 secs", "duration": "5 D"}, "parameters.duration",
         f"needs {-(-5 * 86_400 // ONE_SEC_MAX)} IB requests"),
        ("futures_snapshot", "ES", {"contract_month": "000012"}, "parameters.contract_month",
         "not a contract month IB lists"),
        ("futures_snapshot", "ES", {"contract_month": 219912}, "parameters.contract_month",
         "not a contract month IB lists"),
        ("futures_snapshot", "ES", {"contract_month": "２０２６１２"},  # fullwidth digits
         "parameters.contract_month", "ASCII"),
        ("futures_snapshot", "ES", {"contract_month": "202613"}, "parameters.contract_month",
         "YYYYMM"),
        # Unicode case mapping turns these into valid ASCII names
        ("market_bars", "SPY", {"exchange": "ﬀ"}, "parameters.exchange", "ASCII"),
        ("market_bars", "SPY", {"what_to_show": "TRADEſ"}, "parameters.what_to_show", "ASCII"),
        ("market_bars", "SPY", {"bar_size": "1 wee\u212a"}, "parameters.bar_size", "ASCII"),
        ("market_bars", "SPY", {"duration": "５ D"}, "parameters.duration", "ASCII"),
        # raised UnicodeEncodeError / RecursionError
        ("position_update", "*", {"account": "\ud800"}, "parameters", "lone surrogate"),
        ("position_update", "*", '{"account": "\\udfff"}', "parameters", "lone surrogate"),
        ("position_update", "*", "[" * 5000 + "]" * 5000, "parameters", "nests deeper"),
        # duplicate keys: JSON would silently keep the last
        ("market_bars", "SPY", '{"duration": "5 D", "duration": "1 D"}', "parameters",
         "'duration' appears more than once"),
    ],
)
def test_accepted_before_but_wrong(rtype, symbol, parameters, field, reason):
    got_field, got_reason = reason_of(
        lambda: new_request(rtype, symbol, parameters=parameters, now=NOW))
    assert got_field == field
    assert reason in got_reason


def test_deep_nesting_of_any_shape_is_refused():
    nested: list = []
    for _ in range(5000):
        nested = [nested]
    cyclic: dict = {}
    cyclic["self"] = cyclic
    for value in (nested, {"a": {"b": {"c": [nested]}}}, cyclic):
        parameters = value if isinstance(value, dict) else {"duration": value}
        assert reason_of(lambda p=parameters: new_request("market_bars", "SPY", parameters=p))[0] \
            == "parameters"


@pytest.mark.parametrize("symbol", ["ﬀ", "ıwm", "SPY\u00a0", "ES\u3000", "\ud800"])
def test_symbols_that_unicode_would_change_are_refused(symbol):
    assert reason_of(lambda: new_request("market_bars", symbol))[0] == "symbol"


def test_names_that_unicode_would_change_are_refused():
    assert reason_of(lambda: new_request("mar\u212aet_bars", "SPY"))[0] == "request_type"
    assert reason_of(lambda: new_request("market_bars", "SPY", priority="ımmedıate"))[0] \
        == "priority"


def test_edges_that_stay_valid():
    request = new_request("market_bars", "SPY", now=NOW, parameters={
        "end": "2026-12-03T11:59:59+00:00", "bar_size": "1 secs",
        "duration": f"{MAX_BAR_CHUNKS * ONE_SEC_MAX} S"})
    assert request.parameters["end"] == "2026-12-03T11:59:59+00:00"
    assert new_request("market_bars", "ES", parameters={
        "sec_type": "FUT", "contract_month": 202703}).parameters["contract_month"] == "202703"
    assert new_request("market_bars", "ES", parameters={"sec_type": "CONTFUT"}).symbol == "ES"
    assert new_request("market_bars", "SPY", now=NOW, parameters={
        "what_to_show": "ADJUSTED_LAST", "bar_size": "1 day"}).parameters["what_to_show"] \
        == "ADJUSTED_LAST"
    assert new_request("market_bars", "SPY", now=NOW, parameters={
        "end": "1980-01-01T00:00:00Z"}).parameters["end"] == "1980-01-01T00:00:00+00:00"


def test_submit_many_has_a_cap_and_names_the_first_bad_item():
    item = {"request_type": "futures_snapshot", "symbol": "ES"}
    assert len(requests_from_submissions([item] * MAX_SUBMIT_MANY)) == MAX_SUBMIT_MANY
    field, reason = reason_of(lambda: requests_from_submissions([item] * (MAX_SUBMIT_MANY + 1)))
    assert field == "items" and f"at most {MAX_SUBMIT_MANY}" in reason
    bad = {"request_type": "futures_snapshot", "symbol": "ES", "parameters": {"colour": 1}}
    assert reason_of(lambda: requests_from_submissions([item, bad, {}]))[0] \
        == "items[1].parameters.colour"
    assert reason_of(lambda: requests_from_submissions({"a": item}))[0] == "items"


def test_odd_field_names_are_not_put_into_messages_raw():
    field, reason = reason_of(lambda: request_from_submission(
        {"request_type": "futures_snapshot", "symbol": "ES", "\ud800x": 1}))
    assert field == "request" and "\\ud800" in reason  # escaped, printable
    field, _ = reason_of(lambda: new_request("position_update", "*",
                                             parameters={"a.b c": 1}))
    assert field == "parameters"


# ---------------------------------------------------------------- garbage never gets through

# Text that once escaped validation: lone surrogates, letters Unicode maps to ASCII, datetimes
# whose offset leaves datetime's range, digits of other scripts.
nasty_text = st.one_of(
    st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3),
    st.sampled_from(["ﬀ", "ıwm", "TRADEſ", "1 wee\u212a", "２０２６１２", "SPY\u00a0",
                     "0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00",
                     "2090-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "00000000", "21991",
                     '{"a": 1, "a": 2}', "[" * 1200]),
)
json_leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
                        nasty_text)


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


deep = st.one_of(
    st.recursive(json_leaves, lambda inner: st.lists(inner, max_size=2), max_leaves=20),
    st.integers(min_value=10, max_value=3000).map(nested),
)
garbage = st.one_of(
    json_leaves,
    st.binary(max_size=20),
    st.lists(json_leaves, max_size=4),
    st.dictionaries(st.text(max_size=10), json_leaves, max_size=4),
    st.builds(object),
    deep,
)
request_types = st.one_of(st.sampled_from([t.value for t in RequestType]), garbage)
symbols = st.one_of(st.sampled_from(["SPY", "es", "*", "BRK.B", "ES 2612"]), garbage)
priorities = st.one_of(st.sampled_from([1, 2, 3, "NORMAL"]), garbage)
parameter_keys = st.sampled_from(sorted({k for spec in SPECS.values() for k in spec.rules}))
flat_values = st.one_of(
    json_leaves,
    st.sampled_from(["5 D", "1 hour", "1 min", "TRADES", "BID_ASK", "ADJUSTED_LAST", "202612",
                     "C", "both", "FUT", "CONTFUT", "2026-11-27T21:00:00Z", 10, 45, 0, True]),
)
parameter_values = st.one_of(flat_values, deep)
parameters = st.one_of(
    garbage,
    st.dictionaries(parameter_keys, parameter_values, max_size=4),
    st.dictionaries(parameter_keys, flat_values, max_size=3).map(json.dumps),
)
tables = st.one_of(st.none(), st.sampled_from(sorted(set(RESULT_TABLES.values()))), garbage)
_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9.\-/ ]*$")


def assert_well_formed(request: IBRequest) -> None:
    assert isinstance(request.request_type, RequestType)
    assert request.symbol == "*" and request.request_type is RequestType.POSITION_UPDATE \
        or _SYMBOL.match(request.symbol)
    assert len(request.symbol) <= constants.MAX_SYMBOL_LENGTH
    assert isinstance(request.priority, Priority)
    assert set(request.parameters) <= set(SPECS[request.request_type].rules)
    assert len(json.dumps(request.parameters).encode()) <= constants.MAX_PARAMETERS_BYTES
    assert request.result_table == RESULT_TABLES[request.request_type]
    assert request.status is Status.PENDING
    assert request.symbol.isascii()
    json.dumps(request.parameters).encode("utf-8")  # no lone surrogate got through
    # Checking a checked request again changes nothing (the client checks, then the queue).
    again = request_from_submission(request.as_submission(), now=request.created_at)
    assert again.parameters == request.parameters and again.dedup_key == request.dedup_key


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request_types, symbols, priorities, parameters, tables)
def test_new_request_raises_only_invalid_request(rtype, symbol, priority, params, table):
    try:
        request = new_request(rtype, symbol, priority=priority, parameters=params,
                              result_table=table)
    except InvalidRequest as exc:
        assert exc.field and exc.reason
        assert not exc.reason.startswith("could not be checked"), exc  # a rule covers it
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
        assert not exc.reason.startswith("could not be checked"), exc
        return
    assert_well_formed(request)
