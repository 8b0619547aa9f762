"""Parameter rules per request type (pure).

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
from datetime import UTC, datetime, timedelta
from typing import Any

from v6ray import ib_limits
from v6ray.errors import InvalidRequest
from v6ray.model import RequestType, utc_now
from v6ray.payload import field_name, shown
from v6ray.requests import durations

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

_REQUIRED = object()
_ABSENT = object()


@dataclass(frozen=True)
class Rule:
    """How one parameter is checked and normalized; ``check`` raises ``ValueError``."""

    check: Callable[[Any], Any]
    default: Any = _ABSENT


def _integer(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be a whole number, got {type(value).__name__}")
        if not low <= value <= high:
            raise ValueError(f"must be within {low}..{high}, got {shown(value)}")
        return int(value)  # a plain int, not a subclass such as an IntEnum

    return check


def _text(value: Any) -> str:
    """ASCII text, as a plain ``str`` (stripped; see the module doc for why ASCII)."""
    if not isinstance(value, str):
        raise ValueError(f"must be text, got {type(value).__name__}")
    if not value.isascii():
        raise ValueError(f"must be ASCII text, got {shown(value)}")
    return str.__str__(value).strip()


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def _exchange(value: Any) -> str:
    text = _text(value).upper()
    if not _NAME_RE.match(text):
        raise ValueError(f"{shown(value)} is not an exchange name")
    return text


def _account(value: Any) -> str:
    text = _text(value)
    if not _NAME_RE.match(text):
        raise ValueError(f"{shown(value)} is not an account id")
    return text


def _contract_month(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(int(value))
    text = _text(value) if isinstance(value, str) else ""
    match = _MONTH_RE.match(text)
    if not match:
        raise ValueError(f"must be YYYYMM (a month 01-12), got {shown(value)}")
    if not EARLIEST_YEAR <= int(match.group(1)) <= LATEST_CONTRACT_YEAR:
        raise ValueError(
            f"{text} is not a contract month IB lists (years {EARLIEST_YEAR}-"
            f"{LATEST_CONTRACT_YEAR})"
        )
    return text


def _rights(value: Any) -> str:
    text = _text(value).upper()
    if text in ("C", "CALL", "CALLS"):
        return "C"
    if text in ("P", "PUT", "PUTS"):
        return "P"
    if text in ("BOTH", "CP", "C,P", "ALL"):
        return "both"
    raise ValueError(f"must be C, P or both, got {shown(value)}")


def _duration(value: Any) -> str:
    return durations.normalize_duration(_text(value))


def _bar_size(value: Any) -> str:
    return durations.normalize_bar_size(_text(value))


def _what_to_show(value: Any) -> str:
    text = _text(value).upper()
    if text not in ib_limits.WHAT_TO_SHOW:
        raise ValueError(f"must be one of {', '.join(sorted(ib_limits.WHAT_TO_SHOW))}")
    return text


def _instant(value: Any) -> str:
    """An ISO datetime; naive means UTC. Normalized to ``YYYY-MM-DDTHH:MM:SS+00:00``."""
    return durations.normalize_end(_text(value)).isoformat()


def _sec_type(value: Any) -> str:
    text = _text(value).upper()
    if text not in FUTURES_SEC_TYPES:
        raise ValueError(f"must be one of {', '.join(sorted(FUTURES_SEC_TYPES))}")
    return text


RULES: dict[RequestType, dict[str, Rule]] = {
    RequestType.OPTION_CHAIN: {
        "dte": Rule(_integer(0, MAX_DTE)),
        "dte_min": Rule(_integer(0, MAX_DTE)),
        "dte_max": Rule(_integer(0, MAX_DTE)),
        "strikes": Rule(_integer(1, MAX_STRIKES_PER_SIDE), default=10),
        "rights": Rule(_rights, default="both"),
        "exchange": Rule(_exchange, default="SMART"),
    },
    RequestType.FUTURES_SNAPSHOT: {
        "contract_month": Rule(_contract_month),
        "exchange": Rule(_exchange, default="CME"),
    },
    RequestType.MARKET_BARS: {
        "duration": Rule(_duration, default="5 D"),
        "bar_size": Rule(_bar_size, default="1 hour"),
        "what_to_show": Rule(_what_to_show, default="TRADES"),
        "use_rth": Rule(_boolean, default=True),
        "end": Rule(_instant),
        "sec_type": Rule(_sec_type),
        "exchange": Rule(_exchange),
        "contract_month": Rule(_contract_month),
    },
    RequestType.POSITION_UPDATE: {
        "account": Rule(_account),
    },
}


def normalize_parameters(
    request_type: RequestType,
    symbol: str,
    parameters: dict[str, Any],
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Check every parameter of ``request_type``; return them normalized, defaults filled.

    ``now`` (default: the clock) is what ``end`` is checked against.
    """
    rules = RULES[request_type]
    for key in parameters:
        if key not in rules:
            allowed = ", ".join(rules) or "none"
            raise InvalidRequest(
                field_name("parameters", key),
                f"unknown parameter {shown(key)}; allowed: {allowed}",
            )
    out: dict[str, Any] = {}
    for key, rule in rules.items():
        if key in parameters:
            try:
                out[key] = rule.check(parameters[key])
            except ValueError as exc:
                raise InvalidRequest(f"parameters.{key}", str(exc)) from None
        elif rule.default is not _ABSENT:
            out[key] = rule.default
    _CROSS_CHECKS[request_type](out, parameters, now or utc_now())
    return out


def _check_option_chain(out: dict[str, Any], given: dict[str, Any], now: datetime) -> None:
    has_range = "dte_min" in given or "dte_max" in given
    if "dte" in given and has_range:
        raise InvalidRequest("parameters.dte", "give dte or dte_min/dte_max, not both")
    if has_range:
        for key in ("dte_min", "dte_max"):
            if key not in given:
                raise InvalidRequest(f"parameters.{key}", "dte_min and dte_max go together")
        if out["dte_min"] > out["dte_max"]:
            raise InvalidRequest("parameters.dte_min", "is greater than dte_max")
    else:
        out.setdefault("dte", 45)


def _check_market_bars(out: dict[str, Any], given: dict[str, Any], now: datetime) -> None:
    if "end" in out:
        _check_end(out, now)
    if out.get("sec_type") == "FUT" and "contract_month" not in out:
        raise InvalidRequest(
            "parameters.contract_month",
            "is required with sec_type FUT (which contract?); CONTFUT is the continuous series",
        )
    total = ib_limits.parse_duration(out["duration"]).seconds
    per_bar = ib_limits.bar_seconds(out["bar_size"])
    if total < per_bar:
        raise InvalidRequest(
            "parameters.duration", f"{out['duration']} is shorter than one {out['bar_size']} bar"
        )
    # For the request's own hours, as the pacer counts it (``durations.chunk_count``).
    chunks = durations.chunk_count(out["duration"], out["bar_size"], out["use_rth"])
    if chunks > MAX_BAR_CHUNKS:
        raise InvalidRequest(
            "parameters.duration",
            f"{out['duration']} of {out['bar_size']} bars needs {chunks} IB requests "
            f"(limit {MAX_BAR_CHUNKS}); use a larger bar size or v6ray load-history",
        )


def _check_end(out: dict[str, Any], now: datetime) -> None:
    end = durations.normalize_end(out["end"])
    if out["what_to_show"] == "ADJUSTED_LAST":
        # IB serves dividend-adjusted bars only up to now: it refuses an end date with
        # error 321 "End date not supported with adjusted last" (TWS API, Historical Bar
        # Data: https://interactivebrokers.github.io/tws-api/historical_bars.html).
        raise InvalidRequest(
            "parameters.end", "must be left out with what_to_show ADJUSTED_LAST (IB serves "
            "adjusted bars only up to now)"
        )
    if end.year < EARLIEST_YEAR:
        raise InvalidRequest(
            "parameters.end", f"{out['end']} is before {EARLIEST_YEAR}: IB has no bars that old"
        )
    latest = now.astimezone(UTC) + MAX_END_AHEAD
    if end > latest:
        raise InvalidRequest(
            "parameters.end",
            f"{out['end']} is more than a day in the future (latest {latest.isoformat()})",
        )


def _no_cross_check(out: dict[str, Any], given: dict[str, Any], now: datetime) -> None:
    return None


_CROSS_CHECKS: dict[
    RequestType, Callable[[dict[str, Any], dict[str, Any], datetime], None]
] = {
    RequestType.OPTION_CHAIN: _check_option_chain,
    RequestType.FUTURES_SNAPSHOT: _no_cross_check,
    RequestType.MARKET_BARS: _check_market_bars,
    RequestType.POSITION_UPDATE: _no_cross_check,
}
