"""IB's 50 messages/s, counted where IB counts it: at receipt.

The pacer's writes are checked against the simulator's own rule (``sim.limits``), fed with
receipt times that lag the writes by random, in-order delays, while the sender's event
loop runs every timer late by random amounts: the jitter under which limits break.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import FakeClock
from v6ray.gateway.config import GatewayConfig
from v6ray.gateway.permits import PermitGate
from v6ray.pacing import ib_limits
from v6ray.pacing.pacer import HistoricalCall, Pacer, PacingLimits, SlidingWindow, WireRate
from v6ray.sim.limits import MessageRateLimiter, RateVerdict, ReceiptWindow


def production_pacer(**changes) -> tuple[Pacer, FakeClock]:
    clock = FakeClock(1000.0)
    return Pacer(PacingLimits.from_config(GatewayConfig(**changes)), clock=clock), clock


def receipts_of(sends: list[float], lags: list[float]) -> list[float]:
    """TCP delivers in order: a message is read no earlier than the one before it."""
    out: list[float] = []
    for sent, lag in zip(sends, lags, strict=False):
        out.append(max(out[-1] if out else sent, sent + lag))
    return out


def peak_at_receipt(receipts: list[float], window: float) -> int:
    counter = ReceiptWindow(window)
    for at in receipts:
        counter.observe(at)
    return counter.peak


def test_production_budget_leaves_ten_percent_of_ibs_limit_and_states_its_margin():
    limits = PacingLimits.from_config(GatewayConfig())
    assert limits.messages == 45 < ib_limits.MAX_MESSAGES_PER_SECOND
    assert limits.message_window == 1.0
    assert limits.receipt_jitter == 0.05
    # 45 writes per 1.05 s: ~42.9 messages/s sustained, >= 0.85 of IB's 50.
    assert limits.message_send_window == pytest.approx(1.05)
    assert limits.messages / limits.message_send_window >= 0.85 * 50
    assert limits.message_min_gap == pytest.approx(1.05 / 45 * 0.75)


def test_writes_are_counted_when_they_happen_so_a_late_burst_earns_no_second_burst():
    wire = WireRate(limit=3, window=1.0, min_gap=0.1)
    for at in (0.0, 0.1, 0.2):
        assert wire.delay(at) == 0.0
        wire.record(at)
    assert wire.delay(0.2) == pytest.approx(0.8, abs=1e-5)  # the window is full until 1.0
    wire.record(1.5)  # the loop was busy: the next write left 0.5 s late ...
    # ... the gap holds the one after it, the window the rest: no catch-up burst.
    assert wire.delay(1.5) == pytest.approx(0.1)
    wire.record(1.6)
    wire.record(1.7)
    # three writes in (1.5, 1.7]: the next waits until 2.5
    assert wire.delay(1.7) == pytest.approx(0.8, abs=1e-5)
    wire.record(1.0)  # a clock going backwards does not move the last write earlier
    assert wire.delay(1.75) > 0


def test_unused_budget_is_the_time_the_rules_allowed_a_write_nobody_made():
    wire = WireRate(limit=10, window=1.0, min_gap=0.05)
    assert wire.unused(5.0) == 0.0  # nothing written yet: nothing to measure from
    wire.record(1.0)
    assert wire.unused(1.03) == 0.0
    assert wire.unused(1.25) == pytest.approx(0.2)


def test_a_sender_side_window_breaks_ibs_rule_when_a_burst_leaves_late():
    """Why the budget is a spacing, not "N per window at the sender": the old pacer's rule
    (40 per 1.12 s) let a late burst be followed by the next window's burst on time."""
    window = SlidingWindow(40, 1.12)
    sends: list[float] = []
    for _ in range(40):
        window.record(0.0)
        sends.append(0.3)  # granted at 0.0, written at 0.3 by a busy event loop
    at = 0.0 + window.delay(0.0)
    for _ in range(40):
        window.record(at)
        sends.append(at)
    assert peak_at_receipt(sends, 1.0) > ib_limits.MAX_MESSAGES_PER_SECOND


@settings(max_examples=300, deadline=None)
@given(
    loop_lateness=st.lists(
        st.one_of(st.floats(0, 0.002), st.floats(0, 0.05), st.floats(0, 0.8)),
        min_size=60, max_size=400,
    ),
    receipt_lags=st.lists(st.floats(0, 0.05), min_size=1, max_size=50),
    base_latency=st.floats(0, 0.5),
)
def test_receipt_windows_never_exceed_the_budget_whatever_the_delays(
    loop_lateness, receipt_lags, base_latency
):
    pacer, clock = production_pacer()
    sends = []
    for late in loop_lateness:
        clock.now += pacer.wire_delay()  # the pump's timer was set for this instant ...
        clock.now += late  # ... and the busy loop ran it this much later
        pacer.message_written()
        sends.append(clock.now)
    lags = [base_latency + receipt_lags[i % len(receipt_lags)] for i in range(len(sends))]
    receipts = receipts_of(sends, lags)
    limits = pacer.limits
    assert peak_at_receipt(receipts, 1.0) <= limits.messages
    # The simulator's own limiter (IB's rule) never answers error 100.
    ib = MessageRateLimiter(ib_limits.MAX_MESSAGES_PER_SECOND, 1.0, 3)
    assert all(ib.admit(at) is RateVerdict.ACCEPT for at in receipts)
    # The pacer's own view agrees with what a receiver with no lag would count.
    assert pacer.peak_messages_per_window == peak_at_receipt(sends, limits.message_window)


@settings(max_examples=100, deadline=None)
@given(budget=st.integers(1, 49), jitter=st.floats(0, 0.2), window=st.floats(0.05, 2.0),
       lateness=st.lists(st.floats(0, 0.5), min_size=1, max_size=30),
       lags=st.lists(st.floats(0, 1), min_size=1, max_size=30))
def test_any_budget_holds_at_receipt_for_any_window_and_jitter(
    budget, jitter, window, lateness, lags
):
    wire = WireRate(budget, window + jitter, (window + jitter) / budget / 2)
    now, sends = 0.0, []
    for i in range(200):
        now += wire.delay(now) + lateness[i % len(lateness)] * (i % 3 == 0)
        wire.record(now)
        sends.append(now)
    receipts = receipts_of(sends, [lags[i % len(lags)] * jitter for i in range(200)])
    assert peak_at_receipt(receipts, window) <= budget


# --- the gate: every write, ours and ib_async's own, through one paced door ---------------
def fast_gate(**changes) -> PermitGate:
    config = GatewayConfig(time_scale=0.01, message_window_floor=0.1, receipt_jitter=0.0,
                           **changes)
    return PermitGate(Pacer(PacingLimits.from_config(config)))


def sender(gate: PermitGate, wire: list, name: str):
    """A request's send, as ib_async makes it: one message through the gate's write."""
    return lambda: gate.write(lambda: wire.append((name, time.monotonic())))


def test_unsolicited_writes_are_paced_and_go_before_waiting_requests():
    async def scenario() -> tuple[list[tuple[str, float]], float]:
        gate = fast_gate()
        wire: list[tuple[str, float]] = []
        for i in range(5):  # ib_async's own traffic, e.g. cancels after timeouts
            sender(gate, wire, f"cancel{i}")()
        requests = [gate.message(sender(gate, wire, f"req{i}")) for i in range(5)]
        await asyncio.wait_for(asyncio.gather(*requests), 5)
        return wire, gate.pacer.limits.message_min_gap

    wire, gap = asyncio.run(scenario())
    assert [name for name, _ in wire] == [f"cancel{i}" for i in range(5)] + [
        f"req{i}" for i in range(5)]
    gaps = [b - a for (_, a), (_, b) in zip(wire, wire[1:], strict=False)]
    assert min(gaps) >= gap * 0.99


def test_higher_priority_requests_overtake_a_backlog_of_every_kind():
    async def scenario() -> list[str]:
        gate = fast_gate()
        wire: list[tuple[str, float]] = []
        call = HistoricalCall("SPY", "STK", "SMART", "TRADES", "1 hour", "1 D", "", True)
        background = [gate.message(sender(gate, wire, f"bg{i}"), priority=3) for i in range(6)]

        async def historical() -> None:
            async with gate.historical(call, sender(gate, wire, "hist"), priority=2):
                pass

        async def line() -> None:
            async with gate.line(sender(gate, wire, "line"), priority=1):
                pass

        tasks = [asyncio.ensure_future(c) for c in background]
        await asyncio.sleep(0)  # the first background message is written at once
        await asyncio.gather(historical(), line(), *tasks)
        return [name for name, _ in wire]

    order = asyncio.run(scenario())
    assert order[0] == "bg0"
    assert order[1:3] == ["line", "hist"]


def test_a_failed_send_returns_its_line_and_the_gate_keeps_going():
    async def scenario() -> tuple[int, int]:
        gate = fast_gate()

        def broken() -> None:
            raise ConnectionError("Not connected")

        with pytest.raises(ConnectionError):
            async with gate.line(broken):
                pass
        async with gate.line(lambda: None):
            held = gate.pacer.lines_in_use
        return held, gate.pacer.lines_in_use

    assert asyncio.run(scenario()) == (1, 0)


def test_a_closed_socket_drops_its_backlog():
    async def scenario() -> list[int]:
        gate = fast_gate()
        wire: list[int] = []
        for i in range(4):
            gate.write(lambda i=i: wire.append(i))
        gate.drop_backlog()  # the connection closed before they left
        await asyncio.sleep(gate.pacer.limits.message_min_gap * 6)
        return wire

    assert asyncio.run(scenario()) == [0]


# --- failures of a batch of snapshots read as one error ----------------------------------
def test_snapshot_failures_become_one_readable_error():
    from ib_async import Option

    from v6ray.errors import GatewayUnavailable, IBRequestError
    from v6ray.gateway.handlers.base import snapshot_failure
    from v6ray.gateway.handlers.option_chain import describe_option

    call_ = Option("SPY", "20270115", 450.0, "C", "SMART")
    put = Option("SPY", "20270115", 440.0, "P", "SMART")
    denied = IBRequestError(354, "Requested market data is not subscribed.", retryable=False)
    late = IBRequestError(-1, "SPY 20270115 440 P option: no answer within 20 s",
                          retryable=True)
    error = snapshot_failure([(call_, denied), (put, late)], 40, describe_option)
    assert isinstance(error, IBRequestError) and not isinstance(error, BaseExceptionGroup)
    assert str(error) == ("IB error 354: SPY 20270115 450 C option: Requested market data is "
                          "not subscribed.; 1 more of 40 failed")
    assert error.retryable  # a timeout among them: another attempt may get through
    alone = snapshot_failure([(put, late)], 40, describe_option)
    assert str(alone) == "IB error -1: SPY 20270115 440 P option: no answer within 20 s"
    lost = GatewayUnavailable("connection lost")
    assert snapshot_failure([(call_, denied), (put, lost)], 40, describe_option) is lost
