"""Metrics from the gateway's stats, the writer and scheduler hooks, the catalog, and the
recorder's switch (pure: MemoryRecorder, no Ray)."""

from __future__ import annotations

import pytest

from v6ray.observability import hooks
from v6ray.observability.catalog import METRICS, Kind, exported_names
from v6ray.observability.gateway import GatewayMetrics, pacing_use
from v6ray.observability.metrics import (
    CounterFromTotals,
    MemoryRecorder,
    NullRecorder,
    RayRecorder,
    enabled,
    recorder,
    use_recorder,
)

PACING = {
    "messages_per_window": 50, "messages_available": 38, "messages_sent": 120,
    "small_bar_limit": 60, "small_bar_available": 55,
    "historical_open": 4, "historical_open_limit": 50,
    "lines_in_use": 7, "line_budget": 95,
}


def gateway_stats(**changes):
    stats = {"state": "connected", "circuit": "closed", "in_flight": 3,
             "pacing": dict(PACING), "ib_errors": {"2104": 1, "162": 2},
             "counters": {"reconnects": 0}}
    stats.update(changes)
    return stats


@pytest.fixture
def rec():
    memory = MemoryRecorder()
    use_recorder(memory)
    yield memory
    use_recorder(None)


def test_each_pacing_budget_is_its_use_against_its_limit():
    assert pacing_use(PACING) == {
        "messages": (12, 50), "small_bar": (5, 60), "historical_open": (4, 50),
        "lines": (7, 95),
    }


def test_gateway_stats_become_gauges_and_counters():
    rec = MemoryRecorder()
    metrics = GatewayMetrics(rec)
    metrics.record(gateway_stats())
    assert rec.gauge("v6ray_pacing_used", budget="lines") == 7
    assert rec.gauge("v6ray_pacing_limit", budget="messages") == 50
    assert rec.gauge("v6ray_gateway_connection", state="connected") == 1
    assert rec.gauge("v6ray_gateway_connection", state="disconnected") == 0
    assert rec.gauge("v6ray_gateway_circuit", state="closed") == 1
    assert rec.gauge("v6ray_gateway_in_flight") == 3
    assert rec.counter("v6ray_ib_messages_sent") == 120
    assert rec.counter("v6ray_ib_errors", code="162") == 2
    # The next round adds only what is new, and a state change flips the one-hot series.
    later = gateway_stats(state="disconnected", circuit="open",
                          ib_errors={"2104": 1, "162": 5, "1100": 1})
    later["pacing"]["messages_sent"] = 150
    metrics.record(later)
    assert rec.counter("v6ray_ib_messages_sent") == 150
    assert rec.counter("v6ray_ib_errors", code="162") == 5
    assert rec.counter("v6ray_ib_errors", code="1100") == 1
    assert rec.gauge("v6ray_gateway_connection", state="connected") == 0
    assert rec.gauge("v6ray_gateway_circuit", state="open") == 1


def test_a_gateway_not_started_yet_records_what_it_has():
    rec = MemoryRecorder()
    GatewayMetrics(rec).record({"state": "connecting", "circuit": "closed", "pacing": {},
                                "ib_errors": {}, "counters": {}})
    assert rec.gauge("v6ray_gateway_connection", state="connecting") == 1
    assert rec.gauge("v6ray_pacing_used", budget="lines") is None


def test_counter_from_totals_counts_growth_and_a_restart_from_zero():
    rec = MemoryRecorder()
    counter = CounterFromTotals("v6ray_ib_messages_sent")
    for total in (10, 25, 25, 4):  # 4: the gateway restarted and counts from 0 again
        counter.update(total, to=rec)
    assert rec.counter("v6ray_ib_messages_sent") == 29


def test_writer_and_scheduler_hooks(rec):
    hooks.writer_committed("market_bars", 120, 0.08, 2)
    hooks.writer_committed("market_bars", 0, 0.01, 0)
    assert rec.counter("v6ray_writer_rows", table="market_bars") == 120
    assert rec.counter("v6ray_writer_conflicts", table="market_bars") == 2
    assert rec.observed("v6ray_writer_commit_seconds", table="market_bars") == [0.08, 0.01]
    hooks.scheduler_job("futures", skipped=True)
    hooks.scheduler_job("futures")
    hooks.scheduler_job("futures")
    assert rec.counter("v6ray_scheduler_jobs_run", job="futures") == 2
    assert rec.counter("v6ray_scheduler_jobs_skipped", job="futures") == 1


def test_the_writer_records_a_real_merge(rec, tmp_path):
    import pyarrow as pa

    from v6ray.storage.writer import merge_rows

    rows = pa.table({"request_id": ["r1"], "symbol": ["ES"], "contract_month": ["202606"],
                     "bid": [1.0], "ask": [1.25], "last": [1.0], "volume": [3.0]})
    merge_rows(str(tmp_path), "futures_snapshots", rows)
    assert rec.counter("v6ray_writer_rows", table="futures_snapshots") == 1
    assert len(rec.observed("v6ray_writer_commit_seconds", table="futures_snapshots")) == 1


def test_recorder_rejects_unknown_names_wrong_kinds_and_wrong_tags():
    rec = MemoryRecorder()
    with pytest.raises(KeyError):
        rec.inc("v6ray_no_such_metric")
    with pytest.raises(TypeError):
        rec.set("v6ray_requests_submitted", 1, {"request_type": "x", "priority": "1"})
    with pytest.raises(ValueError, match="takes tags"):
        rec.inc("v6ray_writer_rows", 1, {"tbl": "x"})


def test_metrics_can_be_switched_off():
    assert enabled({}) and enabled({"V6RAY_METRICS": "1"})
    assert not enabled({"V6RAY_METRICS": "0"}) and not enabled({"V6RAY_METRICS": "off"})


def test_the_default_recorder_follows_the_switch(monkeypatch):
    use_recorder(None)
    monkeypatch.setenv("V6RAY_METRICS", "0")
    try:
        assert isinstance(recorder(), NullRecorder)
        use_recorder(None)
        monkeypatch.setenv("V6RAY_METRICS", "1")
        assert isinstance(recorder(), RayRecorder)
    finally:
        use_recorder(None)


def test_catalog_names_and_their_prometheus_series():
    for spec in METRICS.values():
        assert spec.name.startswith("v6ray_"), spec.name
        assert spec.description
        if spec.kind is Kind.HISTOGRAM:
            assert list(spec.buckets) == sorted(spec.buckets)
    names = exported_names()
    assert "ray_v6ray_requests_submitted_total" in names
    assert "ray_v6ray_queue_depth" in names
    assert "ray_v6ray_writer_commit_seconds_bucket" in names
