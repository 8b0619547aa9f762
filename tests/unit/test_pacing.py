"""The pacer keeps every one of IB's rules, over a fake clock."""

from __future__ import annotations

import math
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import FakeClock
from v6ray.gateway.config import GatewayConfig
from v6ray.pacing import ib_limits
from v6ray.pacing.costs import Cost
from v6ray.pacing.pacer import HistoricalCall, Pacer, PacingLimits, SlidingWindow
from v6ray.requests.model import new_request


def make_pacer(**changes) -> tuple[Pacer, FakeClock]:
    clock = FakeClock(1000.0)
    config = GatewayConfig(window_margin=0.0, window_margin_seconds=0.0, **changes)
    return Pacer(PacingLimits.from_config(config), clock=clock), clock


def call(symbol="SPY", what="TRADES", bar="5 secs", end="", duration="1800 S") -> HistoricalCall:
    return HistoricalCall(symbol, "STK", "SMART", what, bar, duration, end, True)


def test_sliding_window_delays_until_oldest_expires():
    window = SlidingWindow(limit=3, seconds=10.0)
    for t in (0.0, 1.0, 2.0):
        assert window.delay(t) == 0.0
        window.record(t)
    assert window.delay(3.0) == pytest.approx(7.0, abs=1e-3)
    assert window.delay(10.0 + 1e-6) == 0.0
    assert window.available(10.5) == 1


def test_sliding_window_weight_above_limit_fits_an_empty_window():
    window = SlidingWindow(limit=2, seconds=1.0)
    assert window.delay(0.0, weight=5) == 0.0
    window.record(0.0, 5)
    assert window.delay(0.5) > 0


def test_small_bars_sixty_per_ten_minutes():
    pacer, clock = make_pacer()
    for i in range(60):
        c = call(symbol=f"S{i}")
        assert pacer.historical_delay(c) == 0.0
        pacer.take_historical(c)
        pacer.historical_finished()
        clock.advance(0.2)  # stay clear of the message and per-contract rules
    delay = pacer.historical_delay(call(symbol="NEW"))
    assert delay == pytest.approx(600 - 60 * 0.2, abs=1e-3)


def test_window_is_anchored_at_the_answer_when_the_receiver_was_late():
    """IB counts a request on receipt; an answer that arrives late proves a late receipt."""
    pacer, clock = make_pacer()
    first = call(symbol="S0")
    pacer.take_historical(first)
    clock.advance(30.0)  # the answer took 30 s: IB may have received it only now
    pacer.historical_finished(first)
    for i in range(1, 60):
        c = call(symbol=f"S{i}")
        clock.advance(0.2)
        assert pacer.historical_delay(c) == 0.0
        pacer.take_historical(c)
        pacer.historical_finished(c)
    # The 61st waits for the first request's window counted from its answer, not its send.
    delay = pacer.historical_delay(call(symbol="NEW"))
    assert delay == pytest.approx(600 - 59 * 0.2, abs=1e-3)
    # The identical-request rule is re-anchored the same way.
    pacer2, clock2 = make_pacer()
    pacer2.take_historical(first)
    clock2.advance(10.0)
    pacer2.historical_finished(first)
    assert pacer2.historical_delay(first) == pytest.approx(15.0, abs=1e-3)


def test_restamp_keeps_events_in_time_order():
    window = SlidingWindow(limit=2, seconds=10.0)
    early = window.record(0.0)
    window.record(1.0)
    window.restamp(early, 5.0)  # now the later of the two
    assert window.delay(2.0) == pytest.approx(9.0, abs=1e-3)  # 1.0 expires first
    window.restamp(early, 4.0)  # never moves earlier
    assert window.used(11.5) == 1 and window.used(15.5) == 0


def test_large_bars_do_not_use_the_small_bar_window():
    pacer, clock = make_pacer()
    for i in range(60):
        pacer.take_historical(call(symbol=f"S{i}"))
        pacer.historical_finished()
        clock.advance(0.1)
    assert pacer.historical_delay(call(symbol="X", bar="1 hour", duration="1 M")) == 0.0


def test_identical_request_waits_fifteen_seconds():
    pacer, clock = make_pacer()
    first = call()
    pacer.take_historical(first)
    pacer.historical_finished()
    clock.advance(1.0)
    assert pacer.historical_delay(first) == pytest.approx(14.0, abs=1e-3)
    assert pacer.historical_delay(call(end="2025-01-02T00:00:00+00:00")) < 14.0


def test_same_contract_at_most_five_per_two_seconds_and_bid_ask_counts_twice():
    pacer, clock = make_pacer()
    for i in range(5):
        c = call(end=f"e{i}")
        assert pacer.historical_delay(c) == 0.0
        pacer.take_historical(c)
        clock.advance(0.01)
    assert pacer.historical_delay(call(end="e9")) > 1.9
    assert pacer.historical_delay(call(symbol="QQQ")) == 0.0

    pacer, clock = make_pacer()
    for i in range(2):
        pacer.take_historical(call(what="BID_ASK", end=f"e{i}"))
        clock.advance(0.01)
    assert pacer.historical_delay(call(what="BID_ASK", end="e3")) > 1.9  # 2 + 2 + 2 > 5


def test_open_historical_cap_frees_on_finish_not_with_time():
    pacer, clock = make_pacer(hist_max_open=3, large_bar_requests=1000)
    for i in range(3):
        pacer.take_historical(call(symbol=f"S{i}", bar="1 hour"))
    assert math.isinf(pacer.historical_delay(call(symbol="Z", bar="1 hour")))
    clock.advance(10_000)
    assert math.isinf(pacer.historical_delay(call(symbol="Z", bar="1 hour")))
    pacer.historical_finished()
    assert pacer.historical_delay(call(symbol="Z", bar="1 hour")) == 0.0


def test_lines_budget_and_peak():
    pacer, _ = make_pacer(market_data_lines=10, line_reserve=2)
    for _ in range(8):
        assert pacer.line_delay() == 0.0
        pacer.take_lines()
    assert math.isinf(pacer.line_delay())
    pacer.return_lines()
    assert pacer.line_delay() == 0.0
    assert pacer.budgets()["peak_lines"] == 8


def test_windows_scale_with_time_scale():
    limits = PacingLimits.from_config(
        GatewayConfig(time_scale=0.01, window_margin=0.0, window_margin_seconds=0.0)
    )
    assert limits.small_bar_window == pytest.approx(6.0)
    assert limits.identical_window == pytest.approx(0.15)
    assert limits.same_contract_window == pytest.approx(0.02)


def test_admission_skips_what_does_not_fit_and_keeps_cheaper_ones():
    pacer, _ = make_pacer(pipeline_depth=0)
    for i in range(59):
        pacer.take_historical(call(symbol=f"S{i}"))
        pacer.historical_finished()
    admit = pacer.budget(Cost(), in_flight=0).admission()
    bid_ask = new_request("market_bars", "SPY", parameters={"bar_size": "5 secs",
                          "duration": "1800 S", "what_to_show": "BID_ASK"})
    trades = new_request("market_bars", "SPY", parameters={"bar_size": "5 secs",
                         "duration": "1800 S"})
    future = new_request("futures_snapshot", "ES")
    assert admit(bid_ask) is False  # needs 2 slots, 1 left
    assert admit(future) is True  # not blocked behind it
    assert admit(trades) is True
    assert admit(trades) is False
    assert admit.small_bar == 0
    # What the queue receives is plain numbers: it runs its own predicate over them.
    budget = pacer.budget(Cost(), in_flight=0)
    assert pickle.loads(pickle.dumps(budget)) == budget


def test_admission_looks_ahead_by_the_horizon():
    pacer, clock = make_pacer(pipeline_depth=0)
    for i in range(60):
        pacer.take_historical(call(symbol=f"S{i}"))
        pacer.historical_finished()
        clock.advance(1.0)
    small = new_request("market_bars", "SPY", parameters={"bar_size": "5 secs",
                        "duration": "1800 S"})
    assert pacer.budget(Cost(), in_flight=0).admission()(small) is False
    # the first send (t=0) leaves the window at t=600, 540 s after the loop ends (t=60)
    assert pacer.budget(Cost(), in_flight=0, horizon=539.5).admission()(small) is False
    assert pacer.budget(Cost(), in_flight=0, horizon=540.5).admission()(small) is True


def test_admission_counts_reserved_and_in_flight():
    pacer, _ = make_pacer(pipeline_depth=2, max_in_flight=5)
    admit = pacer.budget(Cost(small_bar=61), in_flight=0).admission()
    small = new_request("market_bars", "SPY", parameters={"bar_size": "5 secs",
                        "duration": "1800 S"})
    assert admit(small) is True and admit(small) is False
    admit = pacer.budget(Cost(), in_flight=5).admission()
    assert admit(new_request("position_update", "*")) is False


def test_cost_of_long_small_bar_backfill_is_capped():
    ten_chunks = f"{10 * ib_limits.max_duration_seconds('5 secs')} S"
    long = new_request("market_bars", "SPY", parameters={"bar_size": "5 secs",
                       "duration": ten_chunks})
    assert long.cost.small_bar == 4
    chain = new_request("option_chain", "SPY", parameters={"strikes": 10})
    assert chain.cost.lines == 41


@settings(max_examples=60, deadline=None)
@given(
    arrivals=st.lists(
        st.tuples(
            st.sampled_from(["SPY", "QQQ", "IWM"]),
            st.sampled_from(["TRADES", "BID_ASK", "MIDPOINT"]),
            st.sampled_from(["e0", "e1", "e2", "e3"]),
            st.floats(min_value=0.0, max_value=0.5),
        ),
        min_size=1,
        max_size=150,
    ),
    scale=st.sampled_from([0.01, 0.05]),
)
def test_any_simulated_schedule_keeps_every_window(arrivals, scale):
    pacer, clock = make_pacer(time_scale=scale, hist_max_open=10)
    pending = []
    sent: list[tuple[float, HistoricalCall]] = []
    open_until: list[float] = []
    for symbol, what, end, gap in arrivals:
        pending.append(call(symbol=symbol, what=what, end=end))
        clock.advance(gap * scale)
        for _ in range(500):  # bounded: drain as far as the pacer allows right now
            for until in [t for t in open_until if t <= clock.now]:
                open_until.remove(until)
                pacer.historical_finished()
            ready = [c for c in pending if pacer.historical_delay(c) == 0.0]
            if not ready:
                break
            pacer.take_historical(ready[0])
            pending.remove(ready[0])
            sent.append((clock.now, ready[0]))
            open_until.append(clock.now + 0.3 * scale)
    _assert_ib_rules(sent, scale)


def _assert_ib_rules(sent, scale):
    small_window = ib_limits.HIST_SMALL_BAR_WINDOW_SECONDS * scale
    same_window = ib_limits.HIST_SAME_CONTRACT_WINDOW_SECONDS * scale
    identical_window = ib_limits.HIST_IDENTICAL_WINDOW_SECONDS * scale
    for i, (t, c) in enumerate(sent):
        earlier = [(s, d) for s, d in sent[: i + 1] if s > t - small_window]
        assert sum(d.weight for _, d in earlier) <= 60
        same = [d for s, d in earlier if s > t - same_window and d.contract_key == c.contract_key]
        assert sum(d.weight for d in same) <= ib_limits.HIST_SAME_CONTRACT_MAX
        twins = [s for s, d in sent[:i] if d == c and s > t - identical_window]
        assert not twins
        msgs = [s for s, _ in sent[: i + 1] if s > t - 1.0 * scale]
        assert len(msgs) <= 40
