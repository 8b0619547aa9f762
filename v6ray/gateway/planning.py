"""Pure planning for handlers: bar chunks, option expiries and strikes, the front month.

Kept apart from the handlers (which talk to IB) so every choice is unit-tested.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from v6ray import ib_limits

_DAY = 86_400


@dataclass(frozen=True)
class BarChunk:
    end: datetime  # UTC
    duration: str  # an IB duration string within the bar size's limit


def bar_chunks(duration: str, bar_size: str, end: datetime) -> list[BarChunk]:
    """Split ``duration`` ending at ``end`` into IB-sized requests, newest first.

    One chunk when IB serves it in one request (the duration string is kept as given);
    otherwise chunks of the bar size's longest duration, the oldest one trimmed.
    """
    total = ib_limits.parse_duration(duration).seconds
    longest = ib_limits.max_duration_seconds(bar_size)
    if total <= longest:
        return [BarChunk(end, duration)]
    chunks = []
    covered = 0
    while covered < total:
        span = min(longest, total - covered)
        chunks.append(BarChunk(end - timedelta(seconds=covered), _duration_text(span)))
        covered += span
    return chunks


def _duration_text(seconds: int) -> str:
    """Seconds as an IB duration: "N S" up to a day, whole days beyond (rounded up)."""
    if seconds <= _DAY:
        return f"{seconds} S"
    return f"{-(-seconds // _DAY)} D"


def parse_end(text: str | None, now: datetime) -> datetime:
    if not text:
        return now
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def _as_date(text: str) -> date | None:
    text = text.strip()[:8]
    if len(text) == 8 and text.isdigit():
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    return None


def choose_expiries(
    expirations: Iterable[str],
    today: date,
    *,
    dte: int | None = None,
    dte_min: int | None = None,
    dte_max: int | None = None,
) -> list[str]:
    """``dte``: the one expiry nearest to it (the later on a tie); else all in [min, max]."""
    dated = sorted(
        (d, text) for text in set(expirations) if (d := _as_date(text)) is not None and d >= today
    )
    if dte is not None:
        if not dated:
            return []
        def distance(item: tuple[date, str]) -> tuple[int, int]:
            return (abs((item[0] - today).days - dte), -item[0].toordinal())

        return [min(dated, key=distance)[1]]
    low = dte_min if dte_min is not None else 0
    high = dte_max if dte_max is not None else 10**6
    return [text for d, text in dated if low <= (d - today).days <= high]


def choose_strikes(strikes: Iterable[float], spot: float | None, per_side: int) -> list[float]:
    """``per_side`` strikes at or below spot and ``per_side`` above, ascending.

    Without a spot (no quote), the middle of the listed strikes stands in for it.
    """
    ordered = sorted(set(float(s) for s in strikes if s and s > 0))
    if not ordered:
        return []
    if spot is None:
        spot = ordered[len(ordered) // 2]
    below = [s for s in ordered if s <= spot][-per_side:]
    above = [s for s in ordered if s > spot][:per_side]
    return below + above


def choose_rights(rights: str) -> list[str]:
    return ["C", "P"] if rights == "both" else [rights]


def choose_future(
    months: Sequence[tuple[str, object]], today: date, contract_month: str | None
) -> object | None:
    """Pick from (lastTradeDateOrContractMonth, item) pairs: the given YYYYMM, or the front
    month (the nearest not yet expired)."""
    if contract_month:
        for text, item in months:
            if text.startswith(contract_month):
                return item
        return None
    live = []
    for text, item in months:
        expiry = _as_date(text)
        if expiry is None and len(text) >= 6 and text[:6].isdigit():
            expiry = date(int(text[:4]), int(text[4:6]), 28)  # a bare month: assume late month
        if expiry is not None and expiry >= today:
            live.append((expiry, item))
    return min(live, key=lambda pair: pair[0])[1] if live else None
