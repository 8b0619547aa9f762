"""The queue's state changes become one log line each and the queue's metrics (pure:
a real QueueCore with a fake clock, a MemoryRecorder, no Ray)."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from tests.helpers import FakeClock
from v6ray.observability.metrics import MemoryRecorder
from v6ray.observability.requests import RequestObserver, ib_error_code
from v6ray.queue.config import QueueConfig
from v6ray.queue.core import QueueCore
from v6ray.requests.model import new_request

T0 = 1_800_000_000.0


@pytest.fixture
def setup():
    clock = FakeClock(T0)
    core = QueueCore(QueueConfig(backoff_base=0.1, backoff_cap=0.2, max_attempts=2),
                     clock=clock, rng=random.Random(1))
    rec = MemoryRecorder()
    return core, RequestObserver(rec, clock=clock), rec, clock


def submit(core, symbol="ES", priority=2, rtype="futures_snapshot"):
    request = new_request(rtype, symbol, priority=priority, now=core.creation_stamp())
    return core.submit(request)[0]


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "v6ray.requests"]


def test_every_state_change_is_one_line_with_id_type_symbol_attempt_and_code(setup, caplog):
    core, observer, rec, clock = setup
    caplog.set_level(logging.INFO, logger="v6ray.requests")
    rid = submit(core, "ES", priority=1)
    observer.journaled(core.drain_changes())
    core.claim(1, "gw")
    observer.journaled(core.drain_changes())
    core.renew([rid], "gw")  # not a state change: no line
    observer.journaled(core.drain_changes())
    core.fail(rid, "gw", "IB error 162: Historical data request pacing violation", True)
    observer.journaled(core.drain_changes())
    clock.now += 1
    core.claim(1, "gw")
    observer.journaled(core.drain_changes())
    core.complete(rid, "gw", {"rows": 1})
    observer.journaled(core.drain_changes())
    got = lines(caplog)
    assert len(got) == 5, got
    assert got[0] == f"request {rid} futures_snapshot ES NEW->PENDING attempt=0 priority=1"
    assert got[1].endswith("PENDING->PROCESSING attempt=1 priority=1")
    assert "PROCESSING->PENDING attempt=1" in got[2] and "code=162" in got[2]
    assert "pacing violation" in got[2]
    assert got[3].endswith("PENDING->PROCESSING attempt=2 priority=1")
    assert got[4].endswith("PROCESSING->SUCCESS attempt=2 priority=1")
    for line in got:
        assert line.startswith(f"request {rid} futures_snapshot ES ")


def test_counters_and_latencies(setup):
    core, observer, rec, clock = setup
    a = submit(core, "ES", priority=1)
    b = submit(core, "NQ", priority=3, rtype="market_bars")
    submit(core, "ES", priority=1)  # coalesces into a: not a new submit
    observer.journaled(core.drain_changes())
    assert rec.counter("v6ray_requests_submitted", request_type="futures_snapshot",
                       priority="1") == 1
    assert rec.counter("v6ray_requests_submitted", request_type="market_bars",
                       priority="3") == 1
    core.claim(2, "gw")
    observer.journaled(core.drain_changes())
    clock.now += 2.5
    core.complete(a, "gw", {"rows": 3})
    core.fail(b, "gw", "IB error 200: No security definition has been found", False)
    observer.journaled(core.drain_changes())
    assert rec.counter("v6ray_requests_finished", request_type="futures_snapshot",
                       status="SUCCESS") == 1
    assert rec.counter("v6ray_requests_finished", request_type="market_bars",
                       status="FAILED") == 1
    assert rec.counter("v6ray_request_failures", request_type="market_bars", code="200") == 1
    assert rec.observed("v6ray_request_latency_seconds", request_type="futures_snapshot",
                        status="SUCCESS") == [pytest.approx(2.5)]


def test_a_released_request_is_not_a_failure(setup):
    core, observer, rec, clock = setup
    rid = submit(core)
    core.claim(1, "gw")
    core.fail(rid, "gw", "IB error 366: No historical data query found", True)
    observer.journaled(core.drain_changes())
    clock.now += 1
    core.claim(1, "gw")
    observer.journaled(core.drain_changes())
    core.release([rid], "gw")  # keeps the earlier error text, but IB was merely away
    observer.journaled(core.drain_changes())
    assert rec.counter("v6ray_request_failures", request_type="futures_snapshot",
                       code="366") == 1


def test_submit_to_durable_is_observed_when_the_commit_lands(setup):
    core, observer, rec, clock = setup

    async def scenario() -> None:
        durable = asyncio.get_running_loop().create_future()
        submit(core)
        observer.journaled(core.drain_changes(), durable)
        assert rec.observed("v6ray_submit_durable_seconds") == []
        clock.now += 0.04
        durable.set_result(None)
        await asyncio.sleep(0)

    asyncio.run(scenario())
    assert rec.observed("v6ray_submit_durable_seconds") == [pytest.approx(0.04)]


def test_queue_gauges_cover_every_status_and_priority(setup):
    core, observer, rec, clock = setup
    submit(core, "ES", priority=1)
    submit(core, "NQ", priority=3)
    submit(core, "RTY", priority=3)
    core.claim(1, "gw")  # ES (priority 1) is claimed first
    clock.now += 7
    observer.publish(core)
    assert rec.gauge("v6ray_queue_depth", status="PROCESSING", priority="1") == 1
    assert rec.gauge("v6ray_queue_depth", status="PENDING", priority="3") == 2
    assert rec.gauge("v6ray_queue_depth", status="SUCCESS", priority="2") == 0
    assert rec.gauge("v6ray_queue_in_flight") == 1
    assert rec.gauge("v6ray_queue_oldest_pending_age_seconds") == pytest.approx(7, abs=0.01)


def test_a_broken_recorder_never_breaks_the_queue(setup, caplog):
    core, _, _, _ = setup

    class Broken(MemoryRecorder):
        def inc(self, *args, **kwargs):
            raise RuntimeError("metrics agent gone")

    submit(core)
    RequestObserver(Broken()).journaled(core.drain_changes())  # logs, does not raise
    assert "recording request changes failed" in caplog.text


@pytest.mark.parametrize(("message", "code"), [
    ("IB error 162: pacing violation", "162"),
    ("IB error -1: no answer within 10 s", "-1"),
    ("GatewayUnavailable: paused", "none"),
    (None, "none"),
])
def test_ib_error_code(message, code):
    assert ib_error_code(message) == code
