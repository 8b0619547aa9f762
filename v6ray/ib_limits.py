"""IB's published limits and request vocabulary: the single source of truth.

The simulator enforces these numbers and the gateway's pacer stays inside them, so
both import them from here. Every window is in *unscaled* seconds; callers multiply
by their ``time_scale`` (1.0 in production, small in tests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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

# --- bar sizes and the longest duration IB serves per request ----------------------
# IB's "valid duration and bar size settings" table, read as: for each bar size, the
# longest duration one reqHistoricalData may ask for.
_UNIT_SECONDS = {"S": 1, "D": 86_400, "W": 7 * 86_400, "M": 30 * 86_400, "Y": 365 * 86_400}

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

MAX_DURATION_BY_BAR_SIZE: dict[str, str] = {
    "1 secs": "1800 S",
    "5 secs": "3600 S",
    "10 secs": "14400 S",
    "15 secs": "14400 S",
    "30 secs": "28800 S",
    "1 min": "1 D",
    "2 mins": "2 D",
    "3 mins": "1 W",
    "5 mins": "1 W",
    "10 mins": "1 W",
    "15 mins": "1 W",
    "20 mins": "1 W",
    "30 mins": "1 M",
    "1 hour": "1 M",
    "2 hours": "1 M",
    "3 hours": "1 M",
    "4 hours": "1 M",
    "8 hours": "1 M",
    "1 day": "20 Y",
    "1 week": "20 Y",
    "1 month": "20 Y",
}

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


def max_duration_seconds(bar_size: str) -> int:
    return parse_duration(MAX_DURATION_BY_BAR_SIZE[bar_size]).seconds


def duration_allowed(duration: str, bar_size: str) -> bool:
    """True when IB serves ``duration`` of ``bar_size`` bars in one request."""
    return parse_duration(duration).seconds <= max_duration_seconds(bar_size)


def historical_weight(what_to_show: str) -> int:
    """How many pacing slots one historical request uses (BID_ASK counts twice)."""
    return BID_ASK_WEIGHT if what_to_show.upper() == "BID_ASK" else 1
