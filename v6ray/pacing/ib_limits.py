"""IB's published limits and request vocabulary: the single source of truth.

The simulator enforces these numbers and the gateway's pacer stays inside them, so
both import them from here. Every window is in *unscaled* seconds; callers multiply
by their ``time_scale`` (1.0 in production, small in tests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

# --- message rate -----------------------------------------------------------------
MAX_MESSAGES_PER_SECOND = 50  # error 100 above this
MESSAGE_BREACHES_BEFORE_DISCONNECT = 3  # IB closes the session on the third breach

# --- market-data lines ------------------------------------------------------------
DEFAULT_MARKET_DATA_LINES = 100  # error 101 "Max number of tickers has been reached"
SNAPSHOT_MAX_SECONDS = 11.0  # IB holds a snapshot's line until tickSnapshotEnd, ~11 s at worst

# --- historical data pacing -------------------------------------------------------
SMALL_BAR_MAX_SECONDS = 30  # the strict rules below apply to bars of 30 s or less
HIST_SMALL_BAR_REQUESTS_PER_WINDOW = 60
HIST_SMALL_BAR_WINDOW_SECONDS = 600.0  # 60 requests in any 10 minutes
HIST_IDENTICAL_WINDOW_SECONDS = 15.0  # no identical request within 15 s
HIST_SAME_CONTRACT_WINDOW_SECONDS = 2.0
HIST_SAME_CONTRACT_MAX = 5  # a 6th request for one contract+exchange+tick type within 2 s violates
HIST_MAX_OPEN_REQUESTS = 50  # error 322, every bar size
BID_ASK_WEIGHT = 2  # BID_ASK counts twice

# --- error codes (grouped by meaning, as the gateway treats them) ------------------
ERR_MAX_RATE = 100
ERR_MAX_TICKERS = 101
ERR_HIST_PACING = 162
ERR_NO_SECURITY = 200
ERR_CANT_FIND_REQUEST = 300
ERR_HIST_MAX_OPEN = 322
ERR_CLIENT_ID_IN_USE = 326
ERR_NO_SUBSCRIPTION = 354
ERR_NO_HIST_QUERY = 366
ERR_CONNECTIVITY_LOST = 1100
ERR_RESTORED_DATA_LOST = 1101
ERR_RESTORED_DATA_KEPT = 1102
INFO_CODES = frozenset({2104, 2106, 2107, 2108, 2119, 2158})  # farm status: informational
CONNECTIVITY_LOST_CODES = frozenset({ERR_CONNECTIVITY_LOST})
CONNECTIVITY_RESTORED_CODES = frozenset({ERR_RESTORED_DATA_LOST, ERR_RESTORED_DATA_KEPT})
PACING_CODES = frozenset({ERR_MAX_RATE, ERR_MAX_TICKERS, ERR_HIST_PACING, ERR_HIST_MAX_OPEN})

# --- bar sizes ----------------------------------------------------------------------
_UNIT_SECONDS = {"S": 1, "D": 86_400, "W": 7 * 86_400, "M": 30 * 86_400, "Y": 365 * 86_400}
_DAY = 86_400

BAR_SIZE_SECONDS: dict[str, int] = {
    "1 secs": 1,
    "5 secs": 5,
    "10 secs": 10,
    "15 secs": 15,
    "30 secs": 30,
    "1 min": 60,
    "2 mins": 120,
    "3 mins": 180,
    "5 mins": 300,
    "10 mins": 600,
    "15 mins": 900,
    "20 mins": 1200,
    "30 mins": 1800,
    "1 hour": 3600,
    "2 hours": 7200,
    "3 hours": 10_800,
    "4 hours": 14_400,
    "8 hours": 28_800,
    "1 day": 86_400,
    "1 week": 7 * 86_400,
    "1 month": 30 * 86_400,
}

# --- how much one historical request may ask for ------------------------------------
# Two different limits. IB's "valid duration and bar size settings" (its "step size" table,
# tws-api/historical_limitations.html#step-sizes) is neither: IB calls it guidance ("Please
# note that these are only guidelines", API users' guide, historical_data_limitations.htm)
# and serves far more, e.g. "60 D" of "1 hour" (ib_insync's notebooks/bar_data.ipynb) and
# "5 D" of "1 min" (erdewit/ib_insync#268).
#
# 1. The hard limit: asking for more is an error.
#    - Bars of 30 s or less over more than 2000 bars: 162 "Time length exceed max."
#      (1 secs: 2000 S, erdewit/ib_insync#16 citing the jtwsdump limits table; the users'
#      guide: "no more than 2000 bars per request").
#    - "N S" longer than a day: 321 "... greater than 86400 seconds" (wboayue/rust-ibapi#837,
#      checked on a paper gateway); "N D" longer than 365 days: 321 "Historical data requests
#      for durations longer than 365 days must be made in years." (ib-api-reloaded/ib_async#229).
#    - Daily and longer bars: 20 years, as far back as IB keeps them.
#    Minute to 8-hour bars have no hard limit beyond the units': a huge request is slow.
# 2. The reliable size: what IB answers well within a client's timeout. The answer time grows
#    with the bars asked for, slowly and then steeply: 390 1-min bars ("1 D") in 0.6 s, 1950
#    ("5 D") in 8.3 s, while "6 D" and "10 D" were not answered within ib_insync's 60 s
#    timeout (erdewit/ib_insync#268); "10 Y" of "1 hour" did not come within 30 s
#    (stoqey/ib#154). Chunkers therefore ask for at most RELIABLE_BARS bars per request.
MAX_SECONDS_DURATION = _DAY
MAX_DAYS_DURATION = 365
SMALL_BAR_MAX_BARS = 2000
LONG_BAR_MAX_SECONDS = 20 * _UNIT_SECONDS["Y"]
RELIABLE_BARS = 2000
REGULAR_SESSION_SECONDS = 23_400  # 09:30-16:00 ET, IB's regular (liquid) hours
FULL_DAY_SESSION_SECONDS = _DAY  # outside RTH: at most a whole day (futures trade 23 h)

# IB's slow answers, fitted to erdewit/ib_insync#268 (the base latency is the simulator's
# own, 0.3 s + 0.5 ms per bar): no extra time up to FAST_ANSWER_BARS; then SLOW_BAR_SECONDS
# per bar up to RELIABLE_BARS (1950 bars: ~8.3 s in all); beyond it STALLED_BAR_SECONDS per
# bar (2340 bars, "6 D" of "1 min": ~77 s, past a 60 s timeout). Intraday bars only: every
# report of slow answers is about them.
FAST_ANSWER_BARS = 400
SLOW_BAR_SECONDS = 0.0045
STALLED_BAR_SECONDS = 0.2


class DurationProblem(StrEnum):
    """Why IB refuses a duration for a bar size (None from ``duration_problem``: it serves it)."""

    TOO_LONG = "too_long"  # 162 "Time length exceed max."
    SECONDS_OVER_A_DAY = "seconds_over_a_day"  # 321: "N S" above 86400
    DAYS_OVER_A_YEAR = "days_over_a_year"  # 321: "N D" above 365

WHAT_TO_SHOW = frozenset(
    {
        "TRADES",
        "MIDPOINT",
        "BID",
        "ASK",
        "BID_ASK",
        "ADJUSTED_LAST",
        "HISTORICAL_VOLATILITY",
        "OPTION_IMPLIED_VOLATILITY",
    }
)

_DURATION_RE = re.compile(r"^\s*(\d{1,6})\s+([SDWMY])\s*$")


@dataclass(frozen=True)
class Duration:
    """An IB duration string such as ``"5 D"``, parsed."""

    count: int
    unit: str

    @property
    def seconds(self) -> int:
        return self.count * _UNIT_SECONDS[self.unit]

    def __str__(self) -> str:
        return f"{self.count} {self.unit}"


def parse_duration(text: str) -> Duration:
    """Parse ``"<n> <S|D|W|M|Y>"``; raises ``ValueError`` on anything else."""
    match = _DURATION_RE.match(text) if isinstance(text, str) else None
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"duration must look like '5 D' (units S, D, W, M, Y), got {text!r}")
    return Duration(int(match.group(1)), match.group(2))


def bar_seconds(bar_size: str) -> int:
    """Seconds per bar; raises ``ValueError`` for a bar size IB does not know."""
    try:
        return BAR_SIZE_SECONDS[bar_size]
    except KeyError:
        raise ValueError(f"unknown bar size {bar_size!r}") from None


def is_small_bar(bar_size: str) -> bool:
    """Bars of 30 s or less fall under IB's strict historical pacing rules."""
    return bar_seconds(bar_size) <= SMALL_BAR_MAX_SECONDS


def duration_problem(duration: str | Duration, bar_size: str) -> DurationProblem | None:
    """What IB answers with an error, or None when it serves ``duration`` of ``bar_size``."""
    parsed = duration if isinstance(duration, Duration) else parse_duration(duration)
    if parsed.unit == "S" and parsed.count > MAX_SECONDS_DURATION:
        return DurationProblem.SECONDS_OVER_A_DAY
    if parsed.unit == "D" and parsed.count > MAX_DAYS_DURATION:
        return DurationProblem.DAYS_OVER_A_YEAR
    limit = hard_max_seconds(bar_size)
    if limit is not None and parsed.seconds > limit:
        return DurationProblem.TOO_LONG
    return None


def duration_allowed(duration: str, bar_size: str) -> bool:
    """True when IB serves ``duration`` of ``bar_size`` bars in one request (slowly or not)."""
    return duration_problem(duration, bar_size) is None


def hard_max_seconds(bar_size: str) -> int | None:
    """The longest duration IB accepts for ``bar_size``; None: no limit but the units'."""
    bar = bar_seconds(bar_size)
    if bar <= SMALL_BAR_MAX_SECONDS:
        return SMALL_BAR_MAX_BARS * bar
    if bar >= _DAY:
        return LONG_BAR_MAX_SECONDS
    return None


def session_bars(bar_size: str, session_seconds: int) -> int:
    """At most how many bars one session of ``session_seconds`` holds. Bars sit on the clock's
    grid, so a session opening between two grid points starts (and may end) with a short bar
    (09:30-16:00: 09:30-10:00, 10:00-11:00, ..., 15:00-16:00); one more bar than the session
    spans whole is the bound."""
    return -(-session_seconds // bar_seconds(bar_size)) + 1


def chunk_sessions(bar_size: str, session_seconds: int) -> int:
    """How many whole sessions one reliable request of minute-to-hours bars may span."""
    fits = RELIABLE_BARS // session_bars(bar_size, session_seconds)
    return max(1, min(fits, MAX_DAYS_DURATION))


def chunk_seconds(bar_size: str) -> int:
    """The longest clock window one request of seconds bars may span ("N S")."""
    return min(SMALL_BAR_MAX_BARS * bar_seconds(bar_size), MAX_SECONDS_DURATION)


def max_duration_seconds(bar_size: str, use_rth: bool = True) -> int:
    """The clock span of one reliable request, for estimates (how many requests a range
    takes): seconds bars their window; minute-to-hours bars the calendar days their sessions
    span (5 sessions: a week); daily and longer bars what IB keeps."""
    bar = bar_seconds(bar_size)
    if bar <= SMALL_BAR_MAX_SECONDS:
        return chunk_seconds(bar_size)
    if bar >= _DAY:
        return LONG_BAR_MAX_SECONDS
    session = REGULAR_SESSION_SECONDS if use_rth else FULL_DAY_SESSION_SECONDS
    days = -(-chunk_sessions(bar_size, session) * 7 // 5)
    return min(days, MAX_DAYS_DURATION) * _DAY


def slow_answer_seconds(bar_size: str, bars: int) -> float:
    """How much longer than its base latency IB takes to answer ``bars`` bars of ``bar_size``."""
    if bar_seconds(bar_size) >= _DAY or bars <= FAST_ANSWER_BARS:
        return 0.0
    slow = min(bars, RELIABLE_BARS) - FAST_ANSWER_BARS
    return slow * SLOW_BAR_SECONDS + max(0, bars - RELIABLE_BARS) * STALLED_BAR_SECONDS


def historical_weight(what_to_show: str) -> int:
    """How many pacing slots one historical request uses (BID_ASK counts twice)."""
    return BID_ASK_WEIGHT if what_to_show.upper() == "BID_ASK" else 1
