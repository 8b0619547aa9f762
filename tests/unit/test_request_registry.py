"""The request-type registry: every type whole at import, a half-added one refused."""

from __future__ import annotations

import pickle
from dataclasses import replace

import pytest

from v6ray.errors import IncompleteRequestType
from v6ray.requests.model import RESULT_TABLES, new_request
from v6ray.requests.registry import SPECS, RequestType, check_spec, spec_for
from v6ray.requests.rules import Rule, integer
from v6ray.storage.schemas import TABLES


def test_every_spec_module_is_a_request_type_with_its_table_registered():
    assert {t.value for t in RequestType} == {spec.name for spec in SPECS.values()}
    for rtype, spec in SPECS.items():
        assert RESULT_TABLES[rtype] == spec.result_table
        assert TABLES[spec.result_table] is spec.table
        assert new_request(rtype, "*" if spec.all_symbols else "SPY").result_table == (
            spec.result_table
        )


def test_request_types_survive_pickling_as_ray_ships_them():
    for rtype in RequestType:
        assert pickle.loads(pickle.dumps(rtype)) is rtype
    request = new_request("option_chain", "SPY")
    assert pickle.loads(pickle.dumps(request)) == request


def test_a_spec_without_a_handler_module_is_refused():
    orphan = replace(spec_for("futures_snapshot"), name="quotes")
    with pytest.raises(IncompleteRequestType, match="quotes.*no handler module"):
        check_spec(orphan)


def test_a_spec_named_apart_from_its_module_is_refused():
    with pytest.raises(IncompleteRequestType, match="its module is named 'quotes'"):
        check_spec(spec_for("futures_snapshot"), "quotes")


def test_the_import_time_check_compares_each_spec_with_its_module_name():
    from v6ray.requests.registry import _checked

    with pytest.raises(IncompleteRequestType, match="its module is named 'quotes'"):
        _checked([("quotes", spec_for("futures_snapshot"))])


def test_a_default_that_fails_its_own_rule_is_refused():
    spec = spec_for("option_chain")
    broken = replace(spec, rules={**spec.rules, "strikes": Rule(integer(1, 5), default=10)})
    with pytest.raises(IncompleteRequestType, match="default of 'strikes'"):
        check_spec(broken)


def test_a_result_table_that_is_not_a_result_table_is_refused():
    spec = spec_for("position_update")
    journal = replace(spec, table=replace(spec.table, name="ib_requests"))
    with pytest.raises(IncompleteRequestType, match="not a result table"):
        check_spec(journal)


def test_a_default_job_of_another_type_is_refused():
    spec = spec_for("position_update")
    wrong = replace(spec, default_jobs=({"name": "x", "type": "market_bars"},))
    with pytest.raises(IncompleteRequestType, match="default job 'x' is of another type"):
        check_spec(wrong)


def test_every_type_has_a_cost_from_its_spec():
    chain = new_request("option_chain", "SPY", parameters={"strikes": 10})
    assert chain.cost.lines == 41  # 10 strikes x 2 sides x 2 rights + underlying
    bars = new_request("market_bars", "SPY", parameters={"duration": "1 D", "bar_size": "1 min"})
    assert bars.cost.historical == 1
    assert new_request("position_update", "*").cost.lines == 0


def test_a_request_loaded_from_the_journal_carries_its_cost_for_the_claim():
    from v6ray.pacing.costs import NO_COST
    from v6ray.queue.journal import request_from_row, requests_to_arrow
    from v6ray.requests.model import Status

    chain = new_request("option_chain", "SPY", parameters={"strikes": 10})
    done = replace(chain, request_id="done", status=Status.SUCCESS)
    pending_row, done_row = requests_to_arrow([chain, done], first_seq=1).to_pylist()
    assert request_from_row(pending_row).cost == chain.cost != NO_COST
    assert request_from_row(done_row).cost == NO_COST  # never claimed again: not computed
