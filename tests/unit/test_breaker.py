from __future__ import annotations

import pytest

from tests.helpers import FakeClock
from v6ray.gateway.breaker import CircuitBreaker, CircuitState


def test_opens_after_threshold_then_half_open_probe_closes_on_success():
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, open_seconds=10.0, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    assert not breaker.allow()
    assert breaker.retry_after() == pytest.approx(10.0)
    clock.now = 10.0
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.allow()  # the one probe
    assert not breaker.allow()  # nobody else while it runs
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.consecutive_failures == 0


def test_failed_probe_reopens_for_a_full_period():
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, open_seconds=5.0, clock=clock)
    breaker.record_failure()
    clock.now = 5.0
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    assert breaker.times_opened == 2
    clock.now = 9.9
    assert not breaker.allow()
    clock.now = 10.0
    assert breaker.allow()


def test_success_resets_the_count():
    breaker = CircuitBreaker(failure_threshold=2, open_seconds=1.0, clock=FakeClock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is CircuitState.CLOSED


def test_rejects_nonsense_settings():
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)
