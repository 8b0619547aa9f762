"""IB's limits as pure state machines, driven by a fake clock."""

from __future__ import annotations

from v6ray.pacing import ib_limits
from v6ray.sim.limits import (
    HistoricalPacing,
    HistoricalQuery,
    MarketDataLines,
    MessageRateLimiter,
    PacingRules,
    RateVerdict,
)

IB_RULES = PacingRules(
    max_open=ib_limits.HIST_MAX_OPEN_REQUESTS,
    window_requests=ib_limits.HIST_SMALL_BAR_REQUESTS_PER_WINDOW,
    window=ib_limits.HIST_SMALL_BAR_WINDOW_SECONDS,
    identical_window=ib_limits.HIST_IDENTICAL_WINDOW_SECONDS,
    same_contract_window=ib_limits.HIST_SAME_CONTRACT_WINDOW_SECONDS,
    same_contract_max=ib_limits.HIST_SAME_CONTRACT_MAX,
)


def query(contract="SPY", what="TRADES", duration="60 S", bar="1 secs", end="") -> HistoricalQuery:
    return HistoricalQuery(contract, "SMART", what, bar, duration, end, True,
                           ib_limits.is_small_bar(bar), ib_limits.historical_weight(what))


def test_fifty_messages_a_second_pass_the_fifty_first_is_rejected():
    limiter = MessageRateLimiter(50, 1.0, 3)
    verdicts = [limiter.admit(0.001 * i) for i in range(51)]
    assert verdicts[:50] == [RateVerdict.ACCEPT] * 50
    assert verdicts[50] is RateVerdict.REJECT
    assert limiter.admit(1.0) is RateVerdict.ACCEPT  # the first message left the window


def test_third_breach_disconnects():
    limiter = MessageRateLimiter(5, 1.0, 3)
    outcomes = []
    for burst in range(3):
        start = burst * 2.0
        outcomes.append([limiter.admit(start + 0.001 * i) for i in range(7)][-1])
    assert outcomes == [RateVerdict.REJECT, RateVerdict.REJECT, RateVerdict.DISCONNECT]
    assert limiter.breaches == 3


def test_one_long_burst_is_one_breach():
    limiter = MessageRateLimiter(5, 1.0, 3)
    verdicts = [limiter.admit(0.0) for _ in range(20)]
    assert verdicts.count(RateVerdict.REJECT) == 15
    assert limiter.breaches == 1


def test_market_data_lines_cap_and_release():
    lines = MarketDataLines(2)
    assert lines.acquire("a") and lines.acquire("b")
    assert not lines.acquire("c")
    lines.release("a")
    assert lines.acquire("c")
    assert (lines.in_use, lines.peak) == (2, 2)
    assert lines.acquire("d", enforce=False) and lines.peak == 3


def test_identical_small_bar_request_within_15_s_violates():
    pacing = HistoricalPacing(IB_RULES)
    assert pacing.check(query(), 0.0) is None
    assert "identical" in pacing.check(query(), 14.9)
    assert pacing.check(query(), 15.0) is None


def test_sixth_request_for_one_contract_within_2_s_violates():
    pacing = HistoricalPacing(IB_RULES)
    for i in range(5):
        assert pacing.check(query(duration=f"{60 + i} S"), 0.1 * i) is None
    assert "same contract" in pacing.check(query(duration="99 S"), 0.5)
    assert pacing.check(query(contract="QQQ"), 0.5) is None  # another contract is fine
    assert pacing.check(query(duration="98 S"), 2.01) is None


def test_sixty_small_bar_requests_per_ten_minutes_and_bid_ask_counts_double():
    pacing = HistoricalPacing(IB_RULES)
    for i in range(30):
        assert pacing.check(query(contract=f"C{i}", what="BID_ASK"), i * 1.0) is None
    assert "more than 60" in pacing.check(query(contract="X"), 31.0)
    assert pacing.check(query(contract="X"), 600.5) is None  # the first has left the window


def test_large_bars_skip_pacing_but_count_toward_fifty_open():
    pacing = HistoricalPacing(IB_RULES)
    for _ in range(50):
        assert pacing.check(query(bar="1 hour", duration="1 D"), 0.0) is None
        pacing.opened()
    assert pacing.check(query(bar="1 hour"), 0.0) == "open"
    pacing.closed()
    assert pacing.check(query(bar="1 hour"), 0.0) is None
    assert pacing.peak_open == 50
