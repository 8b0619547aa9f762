"""The parameter checks request types are built from (pure): each request type's spec
(``v6ray.requests.types``) names its parameters and the rule of each.

Each rule checks one parameter's type and range and returns its normalized value, so that
two submissions that ask IB the same question end up with equal parameters (and coalesce).
Defaults that do not depend on the clock are filled in for the same reason; ``end`` of
``market_bars`` is left out when absent, meaning "now at execution time".

Text is matched only when it is ASCII: Unicode case mapping turns other characters into
ASCII ones ("ﬀ" upper-cases to "FF"), which would let them pass for a valid name.
Normalizing an already normalized set of parameters changes nothing (the client checks a
submission, the queue checks it again).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from v6ray.pacing import ib_limits
from v6ray.requests import durations
from v6ray.requests.payload import shown

MAX_DTE = 1100  # about three years: IB lists no listed option expiring later
MAX_STRIKES_PER_SIDE = 50
# A market_bars request may exceed IB's per-request duration (the gateway splits it into
# chunks run one after another under one lease) but not by much: a request is retried
# as a whole, so a failure in its last chunk repeats all of them, and 50 chunks of small
# bars already take IB's whole small-bar budget (60 per 10 minutes) for most of 10
# minutes. Longer histories are many requests (``v6ray load-history`` splits them).
MAX_BAR_CHUNKS = 50
FUTURES_SEC_TYPES = frozenset({"STK", "IND", "FUT", "CONTFUT", "CASH"})
# IB's electronic history starts in the 1980s at the earliest; futures list up to ~10
# years out. A date outside these is a typo, not a request.
EARLIEST_YEAR = 1980
LATEST_CONTRACT_YEAR = 2099
# ``end`` may lie a little ahead (clock skew, a session that closes later today) but not
# beyond: IB has no bars from the future, and the request would wait for nothing.
MAX_END_AHEAD = timedelta(days=1)
_MONTH_RE = re.compile(r"^([0-9]{4})(0[1-9]|1[0-2])$", re.ASCII)
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$", re.ASCII)

ABSENT = object()  # a parameter without a default


@dataclass(frozen=True)
class Rule:
    """How one parameter is checked and normalized; ``check`` raises ``ValueError``."""

    check: Callable[[Any], Any]
    default: Any = ABSENT


def integer(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be a whole number, got {type(value).__name__}")
        if not low <= value <= high:
            raise ValueError(f"must be within {low}..{high}, got {shown(value)}")
        return int(value)  # a plain int, not a subclass such as an IntEnum

    return check


def ascii_text(value: Any) -> str:
    """ASCII text, as a plain ``str`` (stripped; see the module doc for why ASCII)."""
    if not isinstance(value, str):
        raise ValueError(f"must be text, got {type(value).__name__}")
    if not value.isascii():
        raise ValueError(f"must be ASCII text, got {shown(value)}")
    return str.__str__(value).strip()


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def exchange(value: Any) -> str:
    text = ascii_text(value).upper()
    if not _NAME_RE.match(text):
        raise ValueError(f"{shown(value)} is not an exchange name")
    return text


def account(value: Any) -> str:
    text = ascii_text(value)
    if not _NAME_RE.match(text):
        raise ValueError(f"{shown(value)} is not an account id")
    return text


def contract_month(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(int(value))
    text = ascii_text(value) if isinstance(value, str) else ""
    match = _MONTH_RE.match(text)
    if not match:
        raise ValueError(f"must be YYYYMM (a month 01-12), got {shown(value)}")
    if not EARLIEST_YEAR <= int(match.group(1)) <= LATEST_CONTRACT_YEAR:
        raise ValueError(
            f"{text} is not a contract month IB lists (years {EARLIEST_YEAR}-"
            f"{LATEST_CONTRACT_YEAR})"
        )
    return text


def rights(value: Any) -> str:
    text = ascii_text(value).upper()
    if text in ("C", "CALL", "CALLS"):
        return "C"
    if text in ("P", "PUT", "PUTS"):
        return "P"
    if text in ("BOTH", "CP", "C,P", "ALL"):
        return "both"
    raise ValueError(f"must be C, P or both, got {shown(value)}")


def duration(value: Any) -> str:
    return durations.normalize_duration(ascii_text(value))


def bar_size(value: Any) -> str:
    return durations.normalize_bar_size(ascii_text(value))


def what_to_show(value: Any) -> str:
    text = ascii_text(value).upper()
    if text not in ib_limits.WHAT_TO_SHOW:
        raise ValueError(f"must be one of {', '.join(sorted(ib_limits.WHAT_TO_SHOW))}")
    return text


def instant(value: Any) -> str:
    """An ISO datetime; naive means UTC. Normalized to ``YYYY-MM-DDTHH:MM:SS+00:00``."""
    return durations.normalize_end(ascii_text(value)).isoformat()


def sec_type(value: Any) -> str:
    text = ascii_text(value).upper()
    if text not in FUTURES_SEC_TYPES:
        raise ValueError(f"must be one of {', '.join(sorted(FUTURES_SEC_TYPES))}")
    return text


