"""How long one historical request may be: IB's hard limits (errors) apart from the size it
serves reliably (what chunks use), and how slowly the simulator answers large requests."""

from __future__ import annotations

import pytest

from v6ray.gateway.config import GatewayConfig
from v6ray.pacing import ib_limits
from v6ray.pacing.ib_limits import DurationProblem
from v6ray.requests.markets import SessionKind, session_seconds
from v6ray.sim.config import SimConfig
from v6ray.sim.historical import answer_latency

INTRADAY = [b for b, s in ib_limits.BAR_SIZE_SECONDS.items() if 30 < s < 86_400]
SECONDS_BARS = [b for b, s in ib_limits.BAR_SIZE_SECONDS.items() if s <= 30]


@pytest.mark.parametrize(
    ("duration", "bar_size"),
    [("60 D", "1 hour"), ("5 D", "1 min"), ("1 M", "1 min"), ("1 Y", "5 mins"),
     ("2000 S", "1 secs"), ("10000 S", "5 secs"), ("365 D", "1 min"), ("86400 S", "1 min"),
     ("20 Y", "1 day")],
)
def test_ib_serves_more_than_its_step_size_table(duration, bar_size):
    assert ib_limits.duration_problem(duration, bar_size) is None
    assert ib_limits.duration_allowed(duration, bar_size)


@pytest.mark.parametrize(
    ("duration", "bar_size", "problem"),
    [("2001 S", "1 secs", DurationProblem.TOO_LONG),  # 162 "Time length exceed max."
     ("1 D", "5 secs", DurationProblem.TOO_LONG),
     ("21 Y", "1 day", DurationProblem.TOO_LONG),
     ("86401 S", "1 hour", DurationProblem.SECONDS_OVER_A_DAY),  # 321
     ("366 D", "1 day", DurationProblem.DAYS_OVER_A_YEAR)],  # 321
)
def test_what_ib_refuses(duration, bar_size, problem):
    assert ib_limits.duration_problem(duration, bar_size) is problem


def test_the_reliable_size_is_about_2000_bars():
    rth = session_seconds(SessionKind.EQUITY, True)
    assert ib_limits.chunk_sessions("1 min", rth) == 5  # "5 D": 1950 bars (ib_insync#268)
    assert ib_limits.chunk_sessions("5 mins", rth) == 25
    assert ib_limits.chunk_sessions("1 hour", rth) == 250
    assert ib_limits.chunk_sessions("1 min", session_seconds(SessionKind.FUTURE, False)) == 1
    assert ib_limits.chunk_seconds("1 secs") == 2000
    assert ib_limits.chunk_seconds("30 secs") == 60_000
    assert ib_limits.max_duration_seconds("1 min") == 7 * 86_400  # five sessions: a week


def test_answer_latency_follows_the_reported_timings():
    sim = SimConfig()
    # ib_insync#268: "1 D" of 1-min bars in 0.59 s, "5 D" in 8.31 s, "6 D" past 60 s.
    assert answer_latency(sim, "1 min", 390) == pytest.approx(0.6, abs=0.15)
    assert answer_latency(sim, "1 min", 1950) == pytest.approx(8.3, abs=0.5)
    assert answer_latency(sim, "1 min", 2340) > GatewayConfig().historical_timeout
    # Daily bars come from IB's daily store: 20 years without the intraday slowdown.
    assert answer_latency(sim, "1 day", 5040) < 3.0


@pytest.mark.parametrize("bar_size", INTRADAY + SECONDS_BARS)
@pytest.mark.parametrize("kind", list(SessionKind))
@pytest.mark.parametrize("use_rth", [True, False])
def test_the_largest_chunk_is_answered_well_within_the_gateways_timeout(bar_size, kind, use_rth):
    """A chunk as large as the chunker makes never runs into historical_timeout."""
    if bar_size in SECONDS_BARS:
        bars = ib_limits.chunk_seconds(bar_size) // ib_limits.bar_seconds(bar_size)
    else:
        session = session_seconds(kind, use_rth)
        bars = ib_limits.session_bars(bar_size, session) * ib_limits.chunk_sessions(bar_size,
                                                                                    session)
    assert bars <= ib_limits.RELIABLE_BARS
    assert answer_latency(SimConfig(), bar_size, bars) < GatewayConfig().historical_timeout / 5
